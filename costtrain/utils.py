"""Small shared helpers: cores, threads, seeds, devices and timers.

Importing this module does not import torch (the CLI and :mod:`costtrain.run.guards` use it first).
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import time
from typing import TYPE_CHECKING, Iterator

from .errors import CosttrainError

if TYPE_CHECKING:
    import torch

__all__ = ["CosttrainError", "num_cores", "threads_per_process", "num_threads", "seed_everything",
           "resolve_device", "hardware_info", "Stopwatch", "whole", "positive"]


def whole(value: object, name: str, lowest: int = 1) -> int:
    """`value` when it is an integer >= `lowest`, else a :class:`CosttrainError` naming `name`.

    ``True`` and ``False`` are not numbers here (``isinstance(True, int)`` is true in Python).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise CosttrainError(f"{name} must be an integer >= {lowest}, got {value!r}.")
    return value


def positive(value: object, name: str, unit: str = "") -> float:
    """`value` when it is a finite number > 0, else a :class:`CosttrainError` naming `name`
    (`unit`, e.g. ``"seconds"``, completes the sentence)."""
    import math
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not (value > 0 and math.isfinite(value))):
        kind = f"a positive, finite number of {unit}" if unit else "a positive, finite number"
        raise CosttrainError(f"{name} must be {kind}, got {value!r}.")
    return float(value)


MOMENTUM_MESSAGE = ("momentum {value!r} is >= 1: SGD's velocity then never decays, every step "
                    "adds to it, and training diverges with every method; use a momentum below 1, "
                    "e.g. 0.9 (the image nets' default is 0.5)")


def momentum_fraction(value: object, name: str = "momentum") -> float:
    """`value` when it is a number in [0, 1), else a :class:`CosttrainError` saying why: a
    momentum of 1 or more makes SGD diverge, whatever the method (refused before training)."""
    import math
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise CosttrainError(f"{name} must be a number in [0, 1), got {value!r}.")
    if value >= 1:
        raise CosttrainError(MOMENTUM_MESSAGE.format(value=value).replace("momentum", name, 1)
                             + ".")
    return float(value)


def num_cores() -> int:
    """CPU cores this process may run on (respects affinity masks and containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_per_process(processes: int, cores: int | None = None,
                        threads: int | None = None) -> int:
    """Intra-op threads for each of `processes` processes sharing the cores: `threads` when the
    caller chose it (checked), else the budget that keeps them from oversubscribing the cores,
    ``cores // processes`` (at least 1). Every method's ``threads=None`` default is this one."""
    if threads is not None:
        return whole(threads, "threads")
    return max(1, (cores or num_cores()) // max(1, processes))


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[int]:
    """Run a block with `torch.set_num_threads(n)`, restoring the old value afterwards."""
    import torch
    old = torch.get_num_threads()
    n = old if n is None else whole(n, "threads")
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python and torch; return a CPU generator for data order."""
    import torch
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    """Return a usable torch.device or raise a clear error when it is absent."""
    import torch
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise CosttrainError(f"unknown device {str(device)!r}; use 'cpu', 'cuda' or 'mps'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CosttrainError(
            f"device {str(device)!r} was requested but CUDA is not available "
            "(no NVIDIA GPU or a CPU-only torch build); use device='cpu'.")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CosttrainError(
            f"device {str(device)!r} was requested but Apple MPS is not available; use device='cpu'.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise CosttrainError(f"unsupported device {str(device)!r}; use 'cpu', 'cuda' or 'mps'.")
    return dev


def hardware_info() -> dict:
    """A short description of the machine, stored with every result."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": num_cores(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


class Stopwatch:
    """Accumulates wall time over several `with watch:` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> "Stopwatch":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds += time.perf_counter() - self._t0
