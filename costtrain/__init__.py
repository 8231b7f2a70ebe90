"""costtrain: train PyTorch models faster and cheaper on the machine you already own.

Architecture, in layers. A module imports only from its own layer and the layers above it in
this list (arrows point down, never into a front end), with no circles, lazy imports and
``importlib`` names included, and never another module's ``_private`` names. A sub-package is
one layer; its docstring says what lives in it.

1. records, at the top of the package (no torch at import): ``errors`` (CosttrainError,
   ResourceError), ``utils`` (cores, threads, seeds, devices, checked numbers), ``methods``
   (the method registry: one row per training method naming its trainer, its torchrun rank
   and what the warm pool preloads, as strings), ``result`` (RunResult, JSON, output paths),
   ``measure`` (one definition of every figure a run reports, the machine's load during a
   run), ``args`` (command-line options);
2. ``run``: process machinery (spawn, supervise, warm pool, shared data, guards, joining a
   gloo group); no training;
3. ``data``: datasets as tensors, WordNet, sparse problems, the nets;
4. ``train``: the trainers, one loop each (baseline, Hogwild!, parameter server, local SGD),
   what the loops share, the levers, the launcher of distributed runs, the original API;
5. ``advice``: many runs measured, predicted and advised (noise, prose, cost, energy,
   reports, plots, compare, network, predict, payoff, advise, decision);
6. ``course``: notebook support (the façade the notebooks import from, widgets, exercises,
   claims, scoreboard, the arc, handout, classroom, diagrams, the papermill runner);
7. front ends: ``cli`` (``costtrain ...``), ``torchrun`` (one rank of a torchrun launch),
   ``parameter_server`` and ``local_sgd`` (``python -m costtrain.parameter_server``: torchrun's
   entry points), ``hogwild`` (the original project's import, ``from costtrain.hogwild import
   train_model``).

``tests/test_architecture.py`` reads this list and walks every import: it fails on an import
into a lower layer, a circle, a private name taken from another module, a module or
sub-package missing from the list, or a comparison with a method's name outside ``methods``.
"""
HELD_SIGNALS: list[int] = []  # stop signals received while the command line started


def _hold_stop_signals_if_command_line() -> None:
    """When this process is the command line (``costtrain ...``, ``python -m costtrain ...``):
    hold SIGTERM, SIGHUP and Ctrl-C from its first line of costtrain on, in
    :data:`HELD_SIGNALS`; :func:`costtrain.cli.main` installs its own handlers and answers them
    (143, 129, 130), instead of Python's traceback from the middle of an import. Importing the
    package anywhere else changes no signal handler."""
    import os
    import signal
    import sys
    argv = list(getattr(sys, "orig_argv", []))
    as_module = "-m" in argv and argv[argv.index("-m") + 1:argv.index("-m") + 2] == ["costtrain"]
    if not (as_module or os.path.basename(sys.argv[0] if sys.argv else "") == "costtrain"):
        return
    try:
        for name in ("SIGTERM", "SIGHUP", "SIGINT"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                signal.signal(sig, lambda signum, frame: HELD_SIGNALS.append(signum))
    except ValueError:  # not the main thread: nothing to hold
        pass


_hold_stop_signals_if_command_line()

from .errors import CosttrainError  # noqa: E402  (after the handlers: these take a moment)
from .methods import METHODS  # noqa: E402

__version__ = "0.1.0"
# Public name -> module. Imported on first use (PEP 562): `costtrain run --bad-option` is
# answered before torch loads, and `python -m costtrain.parameter_server` (torchrun) does not
# find that module already imported by the package (runpy would warn and run a second copy).
# The trainers (train_baseline, train_hogwild, ...) come from the method registry's rows.
_EXPORTS = {**{m.trainer.split(":")[1]: m.trainer.split(":")[0] for m in METHODS.values()},
            "recommend": "costtrain.advice.advise", "attach_cost": "costtrain.advice.cost",
            "price_basis": "costtrain.advice.cost", "EnergyMeter": "costtrain.advice.energy",
            "Dataset": "costtrain.data.datasets", "load_dataset": "costtrain.data.datasets",
            "MLP": "costtrain.data.models", "SimpleNN": "costtrain.data.models",
            "SmallCNN": "costtrain.data.models", "build_model": "costtrain.data.models",
            "RunResult": "costtrain.result", "load_results": "costtrain.result",
            "save_results": "costtrain.result", "num_cores": "costtrain.utils"}
__all__ = [*_EXPORTS, "CosttrainError", "HELD_SIGNALS"]


def __getattr__(name: str):
    import importlib
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if not name.startswith("__"):  # `costtrain.hogwild` after a plain `import costtrain`
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'costtrain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
