"""The original project's Hogwild! API, working as its README describes.

    from costtrain.train.legacy import train_model, log_elapsed_time, chart_losses

(``from costtrain.hogwild import ...``, the original project's import, works too.)

What changed underneath (each a fix, the signatures are the original's):

* every process gets ``cores // processes`` threads (the original let each take every core);
* worker log lines and the test accuracy are printed by the calling process, so they appear
  in a notebook cell instead of the kernel's terminal;
* ``train_model`` logs set-up, training and testing times apart (the original's elapsed time
  mixed process start-up and testing into "training"), set-up as every costtrain trainer
  reports it: what a one-off run pays (worker start-up included, even when this process's
  warm workers were reused), and what a re-run in the same process pays;
* the returned losses are one mean per ``log_interval`` batches of each worker, merged in time
  order, not interleaved single-batch log values.

The original took no test data: ``train_model`` evaluates on ``test_dataloader=`` when given,
else on the matching test split of a torchvision dataset (e.g. FashionMNIST(train=True) ->
FashionMNIST(train=False)); otherwise it says it has no test set.
"""
from __future__ import annotations

import inspect
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, IterableDataset, RandomSampler, Subset, TensorDataset

from ..data.models import model_name
from ..measure import LoadWatch, finish, preload
from ..result import RunResult
from ..run import procs, shared
from ..run.guards import (check_device, check_optimizer, check_plan, check_shareable,
                          check_shared_memory)
from ..utils import CosttrainError
from .engine import sgd
from .hogwild import Job, Source, share, train_source

__all__ = ["train_model", "log_elapsed_time", "chart_losses", "OptimizerSpec"]


class OptimizerSpec:
    """Rebuilds an optimizer like `opt` (class, param groups, hyper-parameters) in each worker."""

    def __init__(self, opt: torch.optim.Optimizer, model: nn.Module) -> None:
        index = {id(p): i for i, p in enumerate(model.parameters())}
        self.groups = []
        for g in opt.param_groups:
            if any(id(p) not in index for p in g["params"]):
                raise CosttrainError(
                    "the optimizer was built on parameters that are not the model's; build it "
                    "with e.g. torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5).")
            self.groups.append(({k: v for k, v in g.items() if k != "params"},
                                [index[id(p)] for p in g["params"]]))
        accepted = inspect.signature(type(opt)).parameters
        self.defaults = {k: v for k, v in opt.defaults.items() if k in accepted}
        self.cls, self.label = type(opt), type(opt).__name__

    def __call__(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        groups = [dict(hyper, params=[params[i] for i in idx]) for hyper, idx in self.groups]
        return self.cls(groups, **self.defaults)


def optimizer_factory(optimizer: Any, model: nn.Module) -> Callable:
    """An optimizer instance (original API), a factory, or None (SGD lr=0.01, momentum=0.5)."""
    if optimizer is None:
        return sgd(0.01, 0.5)
    if isinstance(optimizer, torch.optim.Optimizer):
        return OptimizerSpec(optimizer, model)
    if callable(optimizer):
        return optimizer
    raise CosttrainError("optimizer must be a torch.optim.Optimizer built on model.parameters(), "
                         f"a factory params -> Optimizer, or None; got {type(optimizer).__name__}.")


def source_from_loader(loader: DataLoader, what: str = "train_dataloader") -> Source:
    """What each worker needs to rebuild `loader`'s batches (in-memory tensors when possible)."""
    if not isinstance(loader, DataLoader):
        raise CosttrainError(f"{what} must be a torch.utils.data.DataLoader, "
                             f"got {type(loader).__name__}.")
    if isinstance(loader.dataset, IterableDataset) or not hasattr(loader.dataset, "__len__"):
        raise CosttrainError(
            f"{what} reads a {type(loader.dataset).__name__}, a dataset without a length that "
            "can only be read in order (an IterableDataset or a stream). Hogwild! workers draw "
            "their own shuffled batches by index, so they need a map-style dataset with "
            "__len__ and __getitem__: e.g. collect the samples into a "
            "torch.utils.data.TensorDataset(x, y).")
    if loader.batch_size is None:
        raise CosttrainError(f"{what} uses a custom batch_sampler; give it a batch_size instead.")
    if len(loader.dataset) == 0:  # type: ignore[arg-type]
        raise CosttrainError(f"{what} has an empty dataset.")
    if loader.num_workers > 0:
        warnings.warn(
            f"{what} has num_workers={loader.num_workers}; Hogwild! workers load their own "
            "batches with num_workers=0 (they are daemonic processes, which may not start "
            "DataLoader workers, and each of them is already a parallel consumer).",
            UserWarning, stacklevel=3)
    shuffle = isinstance(loader.sampler, RandomSampler)
    ds = loader.dataset
    if isinstance(ds, TensorDataset) and len(ds.tensors) == 2:
        return Source(ds.tensors[0], ds.tensors[1], shuffle=shuffle, drop_last=loader.drop_last)
    return Source(dataset=ds, shuffle=shuffle, drop_last=loader.drop_last,
                  collate_fn=loader.collate_fn)


def _matching_test_loader(loader: DataLoader) -> DataLoader | None:
    """The test split of a torchvision dataset given for training, if it is one.

    A ``Subset`` (or nested Subsets) of such a dataset counts too: the test split of the
    dataset underneath is used, whole.
    """
    ds = loader.dataset
    while isinstance(ds, Subset):
        ds = ds.dataset
    if getattr(ds, "train", None) is not True or not hasattr(ds, "root"):
        return None
    try:
        test = type(ds)(ds.root, train=False, transform=getattr(ds, "transform", None),
                        target_transform=getattr(ds, "target_transform", None))
    except Exception:  # not a torchvision-style class, or its files are missing
        return None
    return DataLoader(test, batch_size=1000)


@torch.no_grad()
def _evaluate_loader(model: nn.Module, loader: DataLoader, dev: torch.device) -> tuple[float, float]:
    was_training, total_loss, correct, n = model.training, 0.0, 0, 0
    model.eval()
    for xb, yb in loader:
        out = model(xb.to(dev))
        yb = yb.to(dev)
        total_loss += torch.nn.functional.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(1) == yb).sum().item()
        n += len(yb)
    model.train(was_training)
    return total_loss / max(1, n), correct / max(1, n)


def _log_line(per_epoch: int) -> Callable:
    def show(rank: int, _delta: int, epoch: int, samples: int, loss: float) -> None:
        seen = samples - (epoch - 1) * per_epoch
        print(f"process {rank}  epoch {epoch}  [{seen}/{per_epoch} ({100 * seen / per_epoch:.0f}%)]"
              f"  loss {loss:.6f}", flush=True)
    return show


def train_model(model: nn.Module, train_dataloader: DataLoader, num_processes: int,
                epochs_per_process: int, optimizer: Any = None, device: str = "cpu",
                log_interval: int = 10, loss_tracker: list | None = None, seed: int = 42, *,
                test_dataloader: DataLoader | None = None, threads: int | None = None,
                sharding: str = "full", timeout: float | None = None,
                progress: bool = False, results: list | None = None) -> list[float]:
    """Train `model` in place with Hogwild!, log test accuracy, return the training losses.

    Args:
        model: the net (shared between processes; its class must be importable).
        train_dataloader: its dataset, batch size, shuffle and drop_last are rebuilt in every
            process (in-memory TensorDatasets take a fast shared-memory path).
        num_processes: Hogwild! processes; epochs_per_process: passes each one makes.
        optimizer: an optimizer built on ``model.parameters()`` (rebuilt in every process from
            its class and hyper-parameters), a factory ``params -> Optimizer``, or None (SGD).
        log_interval: batches between log lines and loss values; -1 for no log lines.
        loss_tracker: a list the losses are appended to (and returned).
        seed: process ``r`` uses ``seed + r``.
        test_dataloader: test data for the accuracy (see the module docstring for the default).
        threads: per process, default ``cores // num_processes``.
        sharding: ``full`` (each process sees all data each epoch, as the original) or ``shard``.
        progress: a progress bar over the samples all processes train (tqdm).
        results: a list the run's :class:`~costtrain.result.RunResult` is appended to (the
            set-up, training and testing times the log line prints, throughput, losses).

    Returns:
        One mean training loss per ``log_interval`` batches of a process, in time order.
    """
    preload()  # what every trainer's clock leaves out (costtrain.measure)
    t_setup = time.perf_counter()
    threads = check_plan(num_processes, epochs_per_process, threads)
    dev = check_device(device)
    check_shareable(model)
    source = source_from_loader(train_dataloader)
    factory = optimizer_factory(optimizer, model)
    check_optimizer(factory, model)
    if sharding not in ("full", "shard"):
        raise CosttrainError(f"sharding must be 'full' or 'shard', got {sharding!r}.")
    if test_dataloader is not None and not isinstance(test_dataloader, DataLoader):
        raise CosttrainError("test_dataloader must be a torch.utils.data.DataLoader, "
                             f"got {type(test_dataloader).__name__}.")
    test_loader = (test_dataloader if test_dataloader is not None
                   else _matching_test_loader(train_dataloader))
    if dev.type == "cpu":  # the model goes to /dev/shm, in-memory data outside it
        check_shared_memory(model, data_bytes=0 if shared.AVAILABLE or source.x is None else
                            sum(t.numel() * t.element_size() for t in (source.x, source.y)))
    with procs.resource_errors("sharing the model and the data with the workers"):
        share(model, dev)
        if source.x is not None:
            source.x, source.y = (shared.share(t.to(dev)) if dev.type == "cpu"
                                  else t.to(dev).share_memory_() for t in (source.x, source.y))
    test = None
    if test_loader is not None and isinstance(test_loader.dataset, TensorDataset):
        test = tuple(t.to(dev) for t in test_loader.dataset.tensors[:2])
    every = log_interval if log_interval and log_interval > 0 else 10
    per_epoch = len(source) if sharding == "full" else -(-len(source) // num_processes)
    job = Job(processes=num_processes, epochs=epochs_per_process,
              batch_size=train_dataloader.batch_size, optimizer=factory, threads=threads,
              device=str(dev), seed=seed, sharding=sharding, log_every=every)
    with LoadWatch() as watch:  # other work on the machine meanwhile, as every trainer records
        result = train_source(model, source, job, test=test,  # type: ignore[arg-type]
                              timeout=timeout, progress=progress,
                              on_progress=_log_line(per_epoch) if log_interval and log_interval > 0
                              else None, config=dict(model=model_name(model), api="train_model",
                                                     train_samples=len(source)),
                              t_setup=t_setup)
        if test is None and test_loader is not None:
            t0 = time.perf_counter()
            result.test_loss, result.test_accuracy = _evaluate_loader(model, test_loader, dev)
            result.eval_seconds += time.perf_counter() - t0
    # one-off and warm set-up, and the load, as every trainer reports them
    finish(result, time.perf_counter() - t_setup, watch.reading)
    print(f"{num_processes} process(es) x {epochs_per_process} epoch(s): set-up "
          f"{result.setup_seconds:.2f} s one-off (data, process start-up; "
          f"{result.warm_setup_seconds:.2f} s when re-run warm), training "
          f"{result.train_seconds:.2f} s ({result.samples:,} samples, "
          f"{result.samples_per_second:,.0f}/s), testing {result.eval_seconds:.2f} s", flush=True)
    if test_loader is None:
        print("no test set: the training data is not a torchvision dataset with a test split "
              "(train=True), nor a Subset of one, or that split's files are missing; pass "
              "test_dataloader=... to log the test accuracy", flush=True)
    else:
        n = len(test_loader.dataset)  # type: ignore[arg-type]
        print(f"Test set: Average loss: {result.test_loss:.4f}, Accuracy: "
              f"{round(result.test_accuracy * n)}/{n} ({100 * result.test_accuracy:.1f}%)",
              flush=True)
    if results is not None:
        results.append(result)
    losses = list(result.loss_curve["loss"])
    if loss_tracker is None:
        return losses
    loss_tracker.extend(losses)
    return loss_tracker


def log_elapsed_time(num_processes: int, epochs_per_process: int, start: float,
                     end: float) -> float:
    """Print how long a configuration took (``end - start`` seconds) and return it."""
    seconds = end - start
    print(f"{num_processes} process(es) x {epochs_per_process} epoch(s) per process: "
          f"{seconds:.2f} s elapsed (wall clock: set-up, training and testing)", flush=True)
    return seconds


def chart_losses(losses_dict: dict, title: str = "Comparing Training Losses Across Configurations",
                 path: str | Path | None = None):
    """The original API's chart: one line per label (e.g. '4 processes x 1 epoch NN').

    Values are lists of losses (plotted by log point) or loss curves / RunResults (plotted
    against samples seen). Returns the Figure, or the saved path when `path` is given.
    """
    from matplotlib.figure import \
        Figure  # no backend or pyplot state (as in costtrain.advice.plots)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    by_samples = False
    for label, losses in losses_dict.items():
        curve = losses.loss_curve if isinstance(losses, RunResult) else losses
        if isinstance(curve, dict):
            ax.plot(curve["samples"], curve["loss"], label=label, lw=1.2)
            by_samples = True
        else:
            ax.plot(range(1, len(curve) + 1), list(curve), label=label, lw=1.2)
    ax.set_xlabel("samples seen" if by_samples else "log point (every log_interval batches)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.figure.legend(fontsize=8, loc="outside right upper")  # beside the axes, never over data
    if not path:
        return fig
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return Path(path)
