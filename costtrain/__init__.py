"""costtrain: train PyTorch models faster and cheaper on the machine you already own.

Architecture, in layers; a module imports only from layers above it in this list (arrows
point down, never into the CLI), and never another module's ``_private`` names:

1. records and processes: ``utils`` (errors, cores, threads), ``result`` (RunResult, JSON),
   ``procs`` (spawned workers, supervised), ``args`` (command-line options, no torch);
2. data, models, engine: ``data`` (datasets as tensors), ``models`` (the nets), ``checks``
   (what must hold before a process starts), ``engine`` (what every loop shares: set-up,
   batches, evaluation, loss logs);
3. trainers, one loop each: ``baseline`` (one process), ``hogwild`` (``worker``: lock-free
   shared memory), ``ps_ranks`` (``serve`` and ``work``) driven by ``parameter_server``,
   ``local_sgd`` (``train_rank``: workers average their models every H steps), ``legacy`` (the
   original project's ``train_model`` API on top of Hogwild!); ``gloo`` (joining a process
   group) and ``comm`` (communication counters) serve the distributed ones;
4. measuring and advice: ``energy``, ``cost``, ``report``, ``plots``, ``compare``,
   ``network`` (predicted time on a network of N machines), ``predict``, ``advise``;
5. front ends: ``cli`` (``costtrain ...``), ``notebooks`` (papermill runner), ``widgets``.

``tests/test_architecture.py`` walks the imports and fails on a circle, an import into the CLI
or a private name taken from another module.
"""
from .advise import recommend
from .baseline import train_baseline
from .cost import attach_cost, price_basis
from .data import Dataset, load_dataset
from .energy import EnergyMeter
from .hogwild import train_hogwild
from .models import MLP, SimpleNN, SmallCNN, build_model
from .result import RunResult, load_results, save_results
from .utils import CosttrainError, num_cores

__version__ = "0.1.0"
__all__ = ["recommend", "attach_cost", "price_basis", "EnergyMeter",
           "train_baseline", "train_hogwild", "train_parameter_server", "train_local_sgd",
           "Dataset", "load_dataset", "MLP", "SimpleNN",
           "SmallCNN", "build_model", "RunResult", "load_results", "save_results", "CosttrainError",
           "num_cores"]


def __getattr__(name: str):
    # Lazy on purpose: `python -m costtrain.parameter_server` (torchrun) must not find that
    # module already imported by the package (runpy warns and runs a second copy).
    if name == "train_parameter_server":
        from .parameter_server import train_parameter_server
        return train_parameter_server
    if name == "train_local_sgd":  # the same for `python -m costtrain.local_sgd`
        from .local_sgd import train_local_sgd
        return train_local_sgd
    raise AttributeError(f"module 'costtrain' has no attribute {name!r}")
