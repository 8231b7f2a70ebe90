"""costtrain: train PyTorch models faster and cheaper on the machine you already own."""
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
           "train_baseline", "train_hogwild", "train_parameter_server",
           "Dataset", "load_dataset", "MLP", "SimpleNN",
           "SmallCNN", "build_model", "RunResult", "load_results", "save_results", "CosttrainError",
           "num_cores"]


def __getattr__(name: str):
    # Imported on first use, so that `python -m costtrain.parameter_server` (torchrun) does not
    # find the module already imported by the package.
    if name == "train_parameter_server":
        from .parameter_server import train_parameter_server
        return train_parameter_server
    raise AttributeError(f"module 'costtrain' has no attribute {name!r}")
