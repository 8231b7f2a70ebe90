"""costtrain: train PyTorch models faster and cheaper on the machine you already own.

Architecture, in layers; a module imports only from its own layer and the layers above it in
this list (arrows point down, never into the CLI), with no circles, lazy imports included, and
never another module's ``_private`` names:

1. records and processes: ``errors`` (CosttrainError, ResourceError, no torch), ``utils``
   (cores, threads, no torch at import), ``methods`` (the method registry: one row per training
   method naming its trainer as a string, its options, probes, comparison and network model;
   no torch), ``result`` (RunResult, JSON, output paths), ``procs`` (spawned workers,
   supervised, no torch at import), ``pool`` (warm workers kept across runs),
   ``measure`` (one definition of every time figure, the machine's load during a run), ``args``
   (command-line options, no torch);
2. data, models, engine: ``shared`` (read-only tensors shared outside ``/dev/shm``),
   ``wordnet`` (WordNet's nouns as sparse text), ``data`` (datasets as tensors), ``models``
   (the nets), ``sparse`` (sparse problems, collisions between Hogwild! workers), ``checks``
   (the guards every method applies: what must hold before a process starts, memory and cgroup
   limits, divergence; no torch at import), ``engine`` (what every loop shares: set-up,
   batches, evaluation, loss logs), ``levers`` (compile, mixed precision, channels_last:
   checked against the hardware, applied inside a loop);
3. trainers, one loop each: ``baseline`` (one process), ``hogwild_loop`` (``worker``:
   lock-free shared memory), ``ps_ranks`` (``serve`` and ``work``) driven by
   ``parameter_server``, ``local_sgd`` (``train_rank``: workers average their models every H
   steps), ``legacy`` (the original project's ``train_model`` API on top of Hogwild!),
   ``hogwild`` (Hogwild!'s public names, the loop's and the original API's); ``gloo`` (joining
   a process group) and ``comm`` (communication counters) serve the distributed ones;
4. measuring and advice: ``noise`` (repeats, medians, ranges), ``prose`` (sentences from
   runs), ``energy``, ``cost``, ``report``, ``plots``, ``compare``, ``network`` (predicted time
   on a network of N machines), ``predict``, ``payoff`` (whether a lever pays), ``advise``,
   ``decision`` (the decision card of notebook 06), ``scoreboard`` (the course's runs in one
   table);
5. front ends: ``cli`` (``costtrain ...``), ``notebooks`` (papermill runner), ``widgets``,
   ``course`` (the notebooks' arc: objectives, reference times, takeaways, links),
   ``exercises`` (the notebooks' exercise checks), ``handout`` (the teacher's kit as HTML),
   ``diagrams`` (the SVG diagrams), ``classroom`` (``costtrain class collect``: the class's
   hardware table), ``_testing`` (worker functions for the tests).

``tests/test_architecture.py`` reads this list and walks every import, inside functions too:
it fails on an import into a lower layer, a circle, an import into the CLI, a private name
taken from another module, a module missing from the list, or a comparison with a method's
name outside ``methods``.
"""
from .errors import CosttrainError
from .methods import METHODS

__version__ = "0.1.0"
# Public name -> module. Imported on first use (PEP 562): `costtrain run --bad-option` is
# answered before torch loads, and `python -m costtrain.parameter_server` (torchrun) does not
# find that module already imported by the package (runpy would warn and run a second copy).
# The trainers (train_baseline, train_hogwild, ...) come from the method registry's rows.
_EXPORTS = {**{m.trainer.split(":")[1]: m.trainer.split(":")[0].rpartition(".")[2]
               for m in METHODS.values()},
            "recommend": "advise", "attach_cost": "cost", "price_basis": "cost",
            "EnergyMeter": "energy", "Dataset": "data",
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
