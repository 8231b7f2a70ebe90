"""Pieces every training loop shares: set-up, mini-batches, evaluation, loss logging, throughput.

The trainers (:mod:`~costtrain.train.baseline`, :mod:`~costtrain.hogwild`,
:mod:`~costtrain.train.parameter_server`) import these by their public names; none of them imports
another trainer.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.datasets import Dataset, load_dataset, stratified_subset
from ..data.models import build_model
from ..result import Curve, RunResult, new_curve
from ..run.guards import mark_diverged  # noqa: F401 (the divergence rule lives with the guards)
from ..run.guards import DIVERGED, check_data_and_model, diverged, diverged_message  # noqa: F401
from ..run.guards import DIVERGENCE_FACTOR, judge, loss_exploded, loss_floor  # noqa: F401
from ..errors import ResourceError, gist
from ..utils import CosttrainError, momentum_fraction, positive, whole

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
EVAL_SLICE = 2000  # test samples each intermediate evaluation reads (see eval_slice)
EVAL_SLICE_SEED = 0  # the same slice for every trainer, run and seed
PIPELINES = ("memory", "classic")  # in-memory tensors, or the classic per-sample DataLoader
OPTIMIZERS = ("sgd", "adam")


def sgd(lr: float = 0.01, momentum: float = 0.5) -> OptimizerFactory:
    """The classic example's optimizer as a picklable factory: ``SGD(params, lr, momentum)``."""
    return functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)


def make_optimizer(name: str = "sgd", lr: float = 0.01, momentum: float = 0.5) -> OptimizerFactory:
    """A picklable optimizer factory by name: ``sgd`` (with momentum) or ``adam`` (momentum unused)."""
    if name == "sgd":
        return sgd(lr, momentum)
    if name == "adam":
        return functools.partial(torch.optim.Adam, lr=lr)
    raise CosttrainError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}.")


def optimizer_label(factory: Callable) -> str:
    """A factory's optimizer name for results: ``SGD``, ``Adam`` or the factory's own label."""
    if isinstance(factory, functools.partial):
        return getattr(factory.func, "__name__", str(factory.func))
    return getattr(factory, "label", getattr(factory, "__name__", type(factory).__name__))


def get_dataset(data: Dataset | str, *, seed: int = 0, subset: int | None = None,
                data_root: str | None = None) -> Dataset:
    """`data` itself when it is a loaded Dataset, else the dataset of that name (loaded)."""
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, str):
        kind = ("a stream (an IterableDataset or a generator)"
                if isinstance(data, torch.utils.data.IterableDataset) or hasattr(data, "__next__")
                else f"a {type(data).__name__}")
        raise CosttrainError(
            f"data must be a dataset name ('fashion-mnist', 'mnist', 'cifar10', "
            f"'sparse-synthetic') or a costtrain.data.datasets.Dataset of tensors, got {kind}. The "
            "trainers index whole tensors, shuffled, from every process; collect your samples "
            "into tensors and pass costtrain.data.datasets.Dataset(name, train_x, train_y, test_x, "
            "test_y, classes, mean, std), or use costtrain.train.legacy.train_model with a "
            "map-style DataLoader.")
    return load_dataset(data, data_root, subset=subset, seed=seed)


def prepare(net: nn.Module | str, data: Dataset | str, *, seed: int, subset: int | None = None,
            data_root: str | None = None) -> tuple[nn.Module, Dataset]:
    """Load the data and build the net (each by name or as given), seeded; then dry-run them.

    The dry run (:func:`~costtrain.run.guards.check_data_and_model`) refuses, before any process
    starts, a dataset without training samples, labels outside the classes and a net whose
    output does not give one score per class.
    """
    ds = get_dataset(data, seed=seed, subset=subset, data_root=data_root)
    torch.manual_seed(seed)
    model = build_model(net, ds.input_shape, ds.num_classes) if isinstance(net, str) else net
    if not isinstance(model, nn.Module):
        raise CosttrainError(f"net must be a model name or a torch.nn.Module, got {type(net).__name__}.")
    check_data_and_model(model, ds)
    return model, ds


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar (auto: notebook or terminal) or a silent stand-in.

    In a notebook a finished bar stays (a closed notebook bar leaves an empty line behind);
    in a terminal it is cleared.
    """
    import sys

    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="samples", unit_scale=True, disable=not enabled,
                leave="ipykernel" in sys.modules)


def shard_indices(n: int, rank: int, parts: int, seed: int) -> torch.Tensor:
    """Shard `rank` (0-based) of `parts` disjoint shards of ``range(n)``: a seeded split.

    Shard sizes differ by at most one; Hogwild! (``sharding='shard'``) and the parameter
    server's workers use the same split.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm.tensor_split(parts)[rank]


def linear_scaled_lr(lr: float, batch_size: int, base_batch: int) -> float:
    """The linear scaling rule (Goyal et al. 2017): a batch k times larger takes a k times larger
    step. The parameter server's sync mode and local SGD scale by their workers the same way."""
    return lr * batch_size / base_batch


def check_base_batch(base_batch: int | None, optimizer: object = None) -> None:
    """``base_batch`` is a whole number >= 1 and scales the default SGD only."""
    if base_batch is None:
        return
    whole(base_batch, "base_batch")
    if optimizer is not None:
        raise CosttrainError("base_batch scales the default SGD's learning rate; with your own "
                             "optimizer factory, set its learning rate yourself.")


def check_hparams(*, epochs: int = 1, batch_size: int = 1, lr: float = 1.0,
                  eval_every: int | None = None, momentum: float | None = None) -> None:
    """Raise a clear error for values no trainer can use (a momentum of 1 or more included:
    every method diverges with it)."""
    whole(epochs, "epochs")
    whole(batch_size, "batch size")
    positive(lr, "learning rate")
    if momentum is not None:
        momentum_fraction(momentum)
    if eval_every is not None:
        whole(eval_every, "eval_every (samples)")


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator,
            indices: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches of (x, y), optionally restricted to `indices` (a shard)."""
    idx = torch.arange(len(y)) if indices is None else indices
    order = idx[torch.randperm(len(idx), generator=generator)]
    for i in range(0, len(order), batch_size):
        j = order[i:i + batch_size]
        yield x[j], y[j]


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; equal to NLL for nets that end in log_softmax (log_softmax is idempotent)."""
    return F.cross_entropy(output, target)


EVAL_BATCH = 1000  # test samples per forward pass of an evaluation
EVAL_MIN_BATCH = 32  # ... down to this many when memory runs short (see evaluate)


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH,
             device: torch.device | str = "cpu") -> tuple[float, float]:
    """Mean loss and accuracy (0..1) of `net` on (x, y); restores the net's train/eval mode.

    When the system runs out of memory for a batch (an address-space limit, a container's
    memory limit: :meth:`~costtrain.errors.ResourceError.describe` recognises it), the
    evaluation starts again with batches a quarter of the size, down to
    :data:`EVAL_MIN_BATCH`; only then is the error raised.
    """
    while True:
        try:
            return _evaluate(net, x, y, batch_size, device)
        except (RuntimeError, MemoryError) as exc:
            if batch_size <= EVAL_MIN_BATCH or ResourceError.describe(exc, "evaluating") is None:
                raise
            batch_size = max(EVAL_MIN_BATCH, batch_size // 4)


@torch.no_grad()
def _evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
              device: torch.device | str) -> tuple[float, float]:
    was_training = net.training
    net.eval()
    total_loss, correct = 0.0, 0
    try:
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            out = net(xb)
            total_loss += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    finally:
        net.train(was_training)
    return total_loss / max(1, len(y)), correct / max(1, len(y))


def failure(exc: BaseException, who: str, doing: str) -> str:
    """One sentence for an exception a rank raised itself (not a lost peer): the system's
    paragraph when it ran out of something (memory: the limit named), else its type and gist."""
    exhausted = ResourceError.describe(exc, f"{who} was {doing}")
    if exhausted is not None:
        return str(exhausted)
    return f"{who} raised {type(exc).__name__} while {doing}: {gist(exc)}"


class LossLog:
    """Mean training loss every `every` batches, indexed by samples seen and seconds of training.

    ``diverged`` turns true at the first loss that is not a finite number
    (:func:`costtrain.run.guards.diverged`), or at the first logged mean more than 10x the
    start (:func:`costtrain.run.guards.loss_exploded`; `classes` gives the start's floor,
    ln(classes)); ``reason`` then says which, with its numbers. Every training loop checks
    ``diverged`` after each step and stops.
    """

    def __init__(self, every: int = 10, classes: int | None = None) -> None:
        self.every = max(1, every)
        self.classes = classes
        self.curve: Curve = new_curve("samples", "seconds", "loss")
        self.samples = 0
        self.diverged = False
        self.reason: str | None = None
        self.first: float | None = None  # the first logged mean: the start of the run
        self._sum, self._n = 0.0, 0

    def add(self, loss: float, batch: int, seconds: float) -> None:
        if diverged(loss):
            self.diverged = True
        self.samples += batch
        self._sum += loss
        self._n += 1
        if self._n >= self.every:
            self.flush(seconds)

    def flush(self, seconds: float) -> None:
        if self._n:
            mean = self._sum / self._n
            self.curve["samples"].append(self.samples)
            self.curve["seconds"].append(round(seconds, 4))
            self.curve["loss"].append(mean)
            self._sum, self._n = 0.0, 0
            if self.first is None:
                self.first = mean if math.isfinite(mean) else None
            elif not self.diverged and loss_exploded(mean, self.first, self.classes):
                self.diverged = True
                self.reason = (f"the training loss rose to {mean:,.4g}, more than "
                               f"{DIVERGENCE_FACTOR}x its start "
                               f"({max(self.first, loss_floor(self.classes)):.3g}), after "
                               f"{self.samples:,} samples")


def eval_slice(y: torch.Tensor, size: int = EVAL_SLICE) -> torch.Tensor:
    """Indices (sorted) of the fixed, stratified slice of a test set that intermediate
    evaluations read: `size` samples with the class proportions of `y`, chosen by
    :data:`EVAL_SLICE_SEED` (the whole set when it is no larger).

    Why 2,000: near 70 % accuracy the standard error of an accuracy read on n images is
    sqrt(0.7 x 0.3 / n), 1.0 point at 2,000 (0.46 on all 10,000) at a fifth of the cost; every
    trainer reads the same images, so the slice's own luck moves every curve alike. The final
    accuracy is read on the whole test set.
    """
    whole(size, "eval slice size")
    return stratified_subset(y, size, EVAL_SLICE_SEED).sort().values


def slice_of(x: torch.Tensor, y: torch.Tensor, size: int = EVAL_SLICE
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` restricted to :func:`eval_slice` (the tensors themselves when it is all)."""
    if len(y) <= size:
        return x, y
    idx = eval_slice(y, size)
    return x[idx], y[idx]


def slice_record(test_samples: int, size: int = EVAL_SLICE) -> dict[str, int]:
    """What a result records of its intermediate evaluations' slice (``extra['eval_slice']``)."""
    return {"samples": min(size, test_samples), "of": test_samples, "seed": EVAL_SLICE_SEED}


class Evaluator:
    """Held-out evaluation every `every` samples on the fixed slice of the test set
    (:func:`slice_of`); its time is kept out of the training clock."""

    def __init__(self, x: torch.Tensor | None, y: torch.Tensor | None, every: int | None,
                 device: torch.device | str = "cpu") -> None:
        if x is not None and y is not None:
            x, y = slice_of(x, y)
        self.x, self.y, self.every, self.device = x, y, every, device
        self.curve: Curve = new_curve("samples", "seconds", "accuracy", "loss")
        self.seconds = 0.0
        self.spans: list[tuple[float, float]] = []  # (start, end) perf_counter of each evaluation
        self._next = every or 0

    def due(self, samples: int) -> bool:
        return bool(self.every) and samples >= self._next

    def seconds_since(self, t: float) -> float:
        """Seconds of evaluation after the moment `t` (``perf_counter``; a span running at
        `t` counts from `t`): what a peer that started waiting at `t` waited through."""
        total = 0.0
        for start, end in reversed(self.spans):
            if end <= t:
                break
            total += end - max(start, t)
        return total

    def __call__(self, net: nn.Module, samples: int, train_seconds: float) -> tuple[float, float]:
        t0 = time.perf_counter()
        loss, acc = evaluate(net, self.x, self.y, device=self.device)
        t1 = time.perf_counter()
        self.seconds += t1 - t0
        self.spans.append((t0, t1))
        self.curve["samples"].append(samples)
        self.curve["seconds"].append(round(train_seconds, 4))
        self.curve["accuracy"].append(acc)
        self.curve["loss"].append(loss)
        if self.every:
            while self._next <= samples:
                self._next += self.every
        return loss, acc


def close_eval_curve(r: RunResult, test_samples: int | None = None) -> None:
    """Make the final test point (the whole test set) the last point of ``r.eval_curve``,
    replacing an intermediate one (read on the slice) at the same sample count; with
    `test_samples`, record the slice the intermediate points were read on
    (``extra['eval_slice']``, :func:`slice_record`)."""
    c = r.eval_curve
    if test_samples is not None and c["samples"]:
        r.extra["eval_slice"] = slice_record(test_samples)
    if r.test_accuracy != r.test_accuracy:
        return
    if c["samples"] and c["samples"][-1] == r.samples:
        for key in ("samples", "seconds", "accuracy", "loss"):
            c[key].pop()
    for key, val in zip(("samples", "seconds", "accuracy", "loss"),
                        (r.samples, round(r.train_seconds, 4), r.test_accuracy, r.test_loss)):
        c[key].append(val)
