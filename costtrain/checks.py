"""Checks made in the parent before any worker process starts (spawn safety, plans, devices).

Spawned workers receive the model and the optimizer factory by pickling; a model class defined
in a notebook, a lambda, a non-leaf tensor attribute or an MPS device fails deep inside torch
otherwise. Hogwild!, the original API and the parameter server all call these.
"""
from __future__ import annotations

import io
import os
import pickle
import sys
import warnings
from typing import Any, Callable

import torch
import torch.nn as nn

from .utils import CosttrainError, num_cores, resolve_device, threads_per_process

MAX_PROCESSES_PER_CORE = 4


def check_plan(processes: int, epochs: int, threads: int | None, *, stacklevel: int = 3) -> int:
    """Validate processes/epochs/threads; return threads per process; warn on oversubscription."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise CosttrainError(f"processes must be an integer >= 1, got {processes!r}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise CosttrainError(f"epochs per process must be an integer >= 1, got {epochs!r}.")
    cores = num_cores()
    if processes > MAX_PROCESSES_PER_CORE * cores:
        raise CosttrainError(
            f"{processes} processes on {cores} core(s) is more than is sensible: each process "
            f"only adds start-up time and memory; use at most {MAX_PROCESSES_PER_CORE * cores} "
            f"(ideally <= {cores}).")
    threads = threads_per_process(processes, cores) if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise CosttrainError(f"threads per process must be an integer >= 1, got {threads!r}.")
    if processes * threads > cores:
        warnings.warn(
            f"{processes} processes x {threads} thread(s) = {processes * threads} threads on "
            f"{cores} core(s): the processes will fight over the cores and training slows "
            f"down; use processes <= {cores} and threads <= {cores} // processes "
            f"(the default).", UserWarning, stacklevel=stacklevel)
    return threads


def check_device(device: str | torch.device) -> torch.device:
    """A device whose tensors can be shared between processes, or a clear error."""
    dev = torch.device(device) if str(device).startswith("mps") else resolve_device(device)
    if dev.type == "mps":
        raise CosttrainError(
            "Hogwild! cannot run on Apple MPS: MPS tensors cannot be shared between processes "
            "(torch raises '_share_filename_: only available on CPU'), and Hogwild! needs every "
            "process to write into the same parameters. Use device='cpu' (Hogwild! on the "
            "CPU cores) or train on MPS in one process with costtrain.train_baseline(device='mps').")
    if dev.type == "cuda" and sys.platform == "win32":
        raise CosttrainError("Hogwild! on CUDA needs CUDA IPC, which PyTorch does not support on "
                             "Windows; use device='cpu' or Linux.")
    return dev


class _NoTensorPickler(pickle.Pickler):
    """Pickles everything but tensors: a cheap probe of what spawn will have to send."""

    def reducer_override(self, obj: Any) -> Any:
        return (type(None), ()) if isinstance(obj, torch.Tensor) else NotImplemented


def _main_is_importable() -> bool:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)  # '<stdin>' for `python -`: not importable by spawn
    return bool(path and os.path.isfile(path)) or getattr(main, "__spec__", None) is not None


def check_shareable(model: nn.Module, what: str = "model") -> None:
    """Raise a clear error if `model` cannot be shared with spawned worker processes."""
    if not isinstance(model, nn.Module):
        raise CosttrainError(f"{what} must be a torch.nn.Module or a model name, "
                             f"got {type(model).__name__}.")
    if not any(p.requires_grad for p in model.parameters()):
        raise CosttrainError(f"{what} {type(model).__name__} has no trainable parameters.")
    for name, mod in model.named_modules():
        if type(mod).__module__ == "__main__" and not _main_is_importable():
            raise CosttrainError(
                f"{what} class {type(mod).__name__} is defined in this notebook or interactive "
                "session; worker processes are started with 'spawn' and cannot import it. Move "
                "the class into a .py file next to the notebook and import it from there, or "
                "use a built-in model name ('simple', 'mlp', 'cnn').")
        for attr, val in vars(mod).items():
            if isinstance(val, torch.Tensor) and val.requires_grad and not val.is_leaf:
                where = f"{name}.{attr}" if name else attr
                raise CosttrainError(
                    f"{what} attribute {where!r} is a tensor computed with autograd (non-leaf, "
                    "requires_grad); it cannot be sent to worker processes. Compute it in "
                    "forward(), or register it with .detach() as a buffer.")
    try:
        _NoTensorPickler(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(model)
    except Exception as exc:  # pickling raises many types
        raise CosttrainError(
            f"{what} {type(model).__name__} cannot be sent to worker processes (spawn pickles "
            f"it): {exc}. Remove unpicklable state such as lambdas, hooks, open files or "
            "locks, and define the class at module level in an importable .py file.") from exc


def check_optimizer(factory: Callable, model: nn.Module) -> None:
    """The factory must be picklable and build an Optimizer from the model's parameters."""
    try:
        pickle.dumps(factory)
    except Exception as exc:
        raise CosttrainError(
            f"the optimizer factory cannot be sent to worker processes ({exc}); use a "
            "module-level function or functools.partial(torch.optim.SGD, lr=0.01, momentum=0.5) "
            "instead of a lambda or a function defined in a notebook.") from exc
    opt = factory(list(model.parameters()))
    if not isinstance(opt, torch.optim.Optimizer):
        raise CosttrainError("optimizer must be a factory params -> torch.optim.Optimizer, "
                             f"but it returned {type(opt).__name__}.")
