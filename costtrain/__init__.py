"""costtrain: train PyTorch models faster and cheaper on the machine you already own.

Architecture, in layers; a module imports only from layers above it in this list (arrows
point down, never into the CLI), and never another module's ``_private`` names:

1. records and processes: ``errors`` (CosttrainError, ResourceError, no torch), ``utils``
   (cores, threads, no torch at import), ``result`` (RunResult, JSON, output paths), ``procs``
   (spawned workers, supervised, no torch at import), ``pool`` (warm Hogwild! workers kept
   across runs), ``measure`` (one definition of every time figure, the machine's load during a
   run), ``args`` (command-line options, no torch);
2. data, models, engine: ``shared`` (read-only tensors shared outside ``/dev/shm``), ``data``
   (datasets as tensors), ``models`` (the nets), ``checks`` (the guards every method applies:
   what must hold before a process starts, memory and cgroup limits, divergence; no torch at
   import), ``engine`` (what every loop shares: set-up, batches, evaluation, loss logs),
   ``levers`` (compile, mixed precision, channels_last: checked against the hardware, applied
   inside a loop);
3. trainers, one loop each: ``baseline`` (one process), ``hogwild`` (``worker``: lock-free
   shared memory), ``ps_ranks`` (``serve`` and ``work``) driven by ``parameter_server``,
   ``local_sgd`` (``train_rank``: workers average their models every H steps), ``legacy`` (the
   original project's ``train_model`` API on top of Hogwild!); ``gloo`` (joining a process
   group) and ``comm`` (communication counters) serve the distributed ones;
4. measuring and advice: ``energy``, ``cost``, ``report``, ``plots``, ``compare``,
   ``network`` (predicted time on a network of N machines), ``predict``, ``payoff`` (whether a lever pays), ``advise``,
   ``decision`` (the decision card of notebook 06), ``scoreboard`` (the course's runs in one
   table);
5. front ends: ``cli`` (``costtrain ...``), ``notebooks`` (papermill runner), ``widgets``,
   ``course`` (the notebooks' arc: objectives, reference times, takeaways, links), ``handout``
   (the teacher's kit as HTML), ``diagrams`` (the SVG diagrams), ``classroom`` (``costtrain
   class collect``: the class's hardware table).

``tests/test_architecture.py`` walks the imports and fails on a circle, an import into the CLI
or a private name taken from another module.
"""
from .errors import CosttrainError

__version__ = "0.1.0"
# Public name -> module. Imported on first use (PEP 562): `costtrain run --bad-option` is
# answered before torch loads, and `python -m costtrain.parameter_server` (torchrun) does not
# find that module already imported by the package (runpy would warn and run a second copy).
_EXPORTS = {"recommend": "advise", "attach_cost": "cost", "price_basis": "cost",
            "EnergyMeter": "energy", "train_baseline": "baseline", "train_hogwild": "hogwild",
            "train_parameter_server": "parameter_server",
            "train_local_sgd": "local_sgd", "Dataset": "data",
            "load_dataset": "data", "MLP": "models", "SimpleNN": "models", "SmallCNN": "models",
            "build_model": "models", "RunResult": "result", "load_results": "result",
            "save_results": "result", "num_cores": "utils"}
__all__ = [*_EXPORTS, "CosttrainError"]


def __getattr__(name: str):
    import importlib
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if not name.startswith("__"):  # `costtrain.hogwild` after a plain `import costtrain`
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'costtrain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
