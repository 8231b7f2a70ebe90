"""costtrain: train PyTorch models faster and cheaper on the machine you already own.

Architecture, in layers; a module imports only from layers above it in this list (arrows
point down, never into the CLI), and never another module's ``_private`` names:

1. records and processes: ``utils`` (errors, cores, threads), ``result`` (RunResult, JSON),
   ``procs`` (spawned workers, supervised), ``pool`` (warm workers kept across runs),
   ``args`` (command-line options, no torch);
2. data, models, engine: ``data`` (datasets as tensors), ``models`` (the nets), ``checks``
   (what must hold before a process starts), ``engine`` (what every loop shares: set-up,
   batches, evaluation, loss logs);
3. trainers, one loop each: ``baseline`` (one process), ``hogwild`` (``worker``: lock-free
   shared memory), ``ps_ranks`` (``serve`` and ``work``) driven by ``parameter_server``,
   ``legacy`` (the original project's ``train_model`` API on top of Hogwild!);
4. measuring and advice: ``noise`` (repeats, medians, ranges), ``energy``, ``cost``,
   ``report``, ``plots``, ``compare``,
   ``predict``, ``advise``;
5. front ends: ``cli`` (``costtrain ...``), ``notebooks`` (papermill runner), ``widgets``.

``tests/test_architecture.py`` walks the imports and fails on a circle, an import into the CLI
or a private name taken from another module.
"""
from __future__ import annotations

import importlib

# Public names and the module each lives in: imported on first use (PEP 562), so that
# `import costtrain.<module>` -- a spawned worker, the command line -- loads only what it needs.
_EXPORTS = {
    "recommend": "advise", "attach_cost": "cost", "price_basis": "cost",
    "EnergyMeter": "energy", "train_baseline": "baseline", "train_hogwild": "hogwild",
    "train_parameter_server": "parameter_server", "Dataset": "data", "load_dataset": "data",
    "MLP": "models", "SimpleNN": "models", "SmallCNN": "models", "build_model": "models",
    "RunResult": "result", "load_results": "result", "save_results": "result",
    "CosttrainError": "utils", "num_cores": "utils",
}

__version__ = "0.1.0"
__all__ = ["recommend", "attach_cost", "price_basis", "EnergyMeter",
           "train_baseline", "train_hogwild", "train_parameter_server",
           "Dataset", "load_dataset", "MLP", "SimpleNN",
           "SmallCNN", "build_model", "RunResult", "load_results", "save_results", "CosttrainError",
           "num_cores"]


def __getattr__(name: str):
    # Lazy on purpose: `python -m costtrain.parameter_server` (torchrun) must not find that
    # module already imported by the package (runpy warns and runs a second copy), and a
    # worker or `costtrain --help` should not pay for torch and every module at import.
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'costtrain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
