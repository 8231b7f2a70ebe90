"""Checks made in the parent before any worker process starts (spawn safety, plans, devices).

Spawned workers receive the model and the optimizer factory by pickling; a model class defined
in a notebook, a lambda, a non-leaf tensor attribute or an MPS device fails deep inside torch
otherwise. Hogwild!, the original API and the parameter server all call these; every trainer
(through :func:`costtrain.engine.prepare`) runs :func:`check_data_and_model`, a one-batch dry
run, and every multi-process method calls :func:`check_processes` (cores and free memory).
"""
from __future__ import annotations

import io
import os
import pickle
import sys
import warnings
from typing import Any, Callable

import psutil
import torch
import torch.nn as nn

from .utils import CosttrainError, num_cores, resolve_device, threads_per_process

MAX_PROCESSES_PER_CORE = 4
MEMORY_SHARE = 0.8  # plan worker processes to use at most this share of the free memory


class CosttrainWarning(UserWarning):
    """A setting that works but costs time (e.g. more threads than cores)."""


def warn(message: str, stacklevel: int = 3) -> None:
    """Warn the user (the CLI prints these as one line, without a line of source code)."""
    warnings.warn(message, CosttrainWarning, stacklevel=stacklevel)


def check_threads(processes: int, threads: int, *, stacklevel: int = 3) -> None:
    """Warn when `processes` x `threads` intra-op threads oversubscribe the cores."""
    cores = num_cores()
    if processes * threads > cores:
        what = (f"{threads} thread(s)" if processes == 1
                else f"{processes} processes x {threads} thread(s) = {processes * threads} threads")
        warn(f"{what} on {cores} core(s): the threads will fight over the cores and training "
             f"slows down (often many times); use threads <= {max(1, cores // processes)} "
             "(the default).", stacklevel=stacklevel + 1)


def worker_footprint() -> int:
    """Bytes one worker process will need, measured as this process's own memory (USS).

    This process holds what a worker holds (torch, the model, the data), so it is an upper
    bound: the data itself is shared with the workers.
    """
    proc = psutil.Process()
    try:
        return int(proc.memory_full_info().uss)
    except (psutil.AccessDenied, AttributeError):
        return int(proc.memory_info().rss)


def check_processes(processes: int, what: str = "processes", *,
                    footprint: int | None = None) -> None:
    """Refuse more worker processes than the cores (x4) or the free memory can carry."""
    cores = num_cores()
    if processes > MAX_PROCESSES_PER_CORE * cores:
        raise CosttrainError(
            f"{processes} {what} on {cores} core(s) is more than is sensible: each process "
            f"only adds start-up time and memory; use at most {MAX_PROCESSES_PER_CORE * cores} "
            f"(ideally <= {cores}).")
    footprint = worker_footprint() if footprint is None else footprint
    free = psutil.virtual_memory().available
    fit = int(free * MEMORY_SHARE // max(1, footprint))
    if processes > fit:
        raise CosttrainError(
            f"{processes} {what} would need about {processes * footprint / 2**30:.1f} GiB "
            f"({footprint / 2**20:.0f} MiB each, measured on this process) but "
            f"{free / 2**30:.1f} GiB is free: at most {fit} fit; use fewer.")


def check_data_and_model(model: nn.Module, ds: Any) -> None:
    """Before any training: samples exist, labels lie in [0, classes), and a one-batch dry run
    of `model` (in the parent, no gradient, train/eval mode restored) gives one score per class.
    """
    if len(ds.train_y) == 0:
        raise CosttrainError(f"dataset {ds.name!r} has no training samples: nothing to train "
                             "on. Check the data folder and --subset.")
    k = ds.num_classes
    for split, y in (("training", ds.train_y), ("test", ds.test_y)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
            raise CosttrainError(
                f"{split} labels of {ds.name!r} lie in [{int(y.min())}, {int(y.max())}] but the "
                f"dataset has {k} classes: labels must be 0..{k - 1}. Fix the labels or the "
                "class list.")
    param = next(model.parameters(), None)
    x = ds.train_x[:2].to(param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:  # a shape mismatch raises one of many types
        raise CosttrainError(
            f"{type(model).__name__} cannot take a batch of {ds.name!r} inputs of shape "
            f"{tuple(x.shape[1:])}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
    if not (isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] == k):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CosttrainError(
            f"{type(model).__name__} outputs {shape} for a batch of {len(x)}, but {ds.name!r} "
            f"has {k} classes: the last layer must give ({len(x)}, {k}), one score per class.")


def check_plan(processes: int, epochs: int, threads: int | None, *, stacklevel: int = 3) -> int:
    """Validate processes/epochs/threads; return threads per process; warn on oversubscription."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise CosttrainError(f"processes must be an integer >= 1, got {processes!r}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise CosttrainError(f"epochs per process must be an integer >= 1, got {epochs!r}.")
    check_processes(processes)
    threads = threads_per_process(processes) if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise CosttrainError(f"threads per process must be an integer >= 1, got {threads!r}.")
    check_threads(processes, threads, stacklevel=stacklevel + 1)
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
