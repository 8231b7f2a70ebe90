"""The Hogwild! paper's own setting: a sparse problem where each step touches a few rows.

* :func:`make_sparse_synthetic` generates the ``sparse-synthetic`` dataset from a seed: every
  sample is a bag of ``k`` feature ids out of ``features`` (d), drawn with a Zipf-like
  frequency (a few features are common, most are rare, as words are in text), and labelled by a
  planted linear model with label noise.
* :class:`SparseLinear` (``sparse-linear``) is logistic regression whose forward is one
  ``nn.EmbeddingBag(d + 1, classes, mode='sum', sparse=True)`` (the last row pads short bags):
  a step reads and writes only the rows of the features in its batch, so plain SGD
  (momentum 0) keeps the update sparse. It also fits ``wordnet-supersense``, real text
  (:mod:`costtrain.data.wordnet`).
* :class:`Collisions` measures, for Hogwild!, how often another worker wrote one of a step's
  rows while that step was computing (the conflicts the paper bounds);
  :func:`expected_row_overlap` predicts it from the data's feature frequencies alone.

Niu, Recht, Ré, Wright, "Hogwild!: A Lock-Free Approach to Parallelizing Stochastic Gradient
Descent", NIPS 2011, https://arxiv.org/abs/1106.5730
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn

from ..utils import CosttrainError, whole

# Defaults of the generator (``load_dataset('sparse-synthetic', **keywords)`` overrides them).
SPARSE_DEFAULTS = dict(train=100_000, test=10_000, features=2 ** 18, k=16, classes=2,
                       zipf=1.0, noise=0.05)
# What suits SparseLinear: plain SGD (momentum would touch every row ever updated, each step).
SPARSE_LR = 0.5


def make_sparse_synthetic(*, train: int = 100_000, test: int = 10_000, features: int = 2 ** 18,
                          k: int = 16, classes: int = 2, zipf: float = 1.0, noise: float = 0.05,
                          seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Feature ids (N, k) int64 and labels (N,) of a planted sparse linear problem, seeded.

    The generator: planted weights ``W ~ N(0, 1)`` of shape (features, classes); feature ``j``
    (after a seeded shuffle of the ids, so common features are spread over the table) has
    probability proportional to ``1 / rank(j) ** zipf`` (``zipf=0``: uniform); a sample is
    ``k`` ids drawn independently (repeats allowed, as a word can repeat); its label is
    ``argmax_c sum_i W[x_i, c]``, replaced by a uniformly random class with probability
    ``noise``. Returns ``(train_x, train_y, test_x, test_y)``.
    """
    _check_sparse(train=train, test=test, features=features, k=k, classes=classes, zipf=zipf,
                  noise=noise)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(features, classes, generator=g)
    ids = torch.randperm(features, generator=g)
    p = torch.arange(1, features + 1, dtype=torch.float64).pow(-zipf)
    n = train + test
    x = ids[torch.multinomial(p / p.sum(), n * k, replacement=True, generator=g)].view(n, k)
    y = w[x].sum(1).argmax(1)
    flip = torch.rand(n, generator=g) < noise
    y[flip] = torch.randint(classes, (int(flip.sum()),), generator=g)
    return x[:train].contiguous(), y[:train].contiguous(), x[train:].contiguous(), y[train:]


def planted_weights(features: int, classes: int, seed: int = 0) -> torch.Tensor:
    """The planted model ``W`` (features, classes) behind ``make_sparse_synthetic(seed=seed)``."""
    return torch.randn(features, classes, generator=torch.Generator().manual_seed(seed))


def _check_sparse(**kw) -> None:
    for name in ("train", "test", "features", "k"):
        whole(kw[name], f"sparse-synthetic: {name}")
    whole(kw["classes"], "sparse-synthetic: classes", lowest=2)
    if not 0 <= kw["noise"] <= 1:
        raise CosttrainError(f"sparse-synthetic: noise is a probability, got {kw['noise']!r}.")
    if not kw["zipf"] >= 0:
        raise CosttrainError(f"sparse-synthetic: zipf must be >= 0 (0 = uniform), "
                             f"got {kw['zipf']!r}.")


class SparseLinear(nn.Module):
    """Logistic regression on bags of feature ids: ``logits = sum_i W[x_i] + b``.

    ``W`` is an ``nn.EmbeddingBag(features + 1, classes, mode='sum', sparse=True)``: its
    gradient is a sparse tensor holding only the rows of the batch's features. Its last row,
    id ``features``, is padding (``padding_idx``): bags shorter than the batch's width are
    filled with it, and it is left out of the sum and of the gradient (never written).
    """

    sparse_lr = SPARSE_LR  # the learning rate the trainers use when none is given

    def __init__(self, features: int = 2 ** 18, num_classes: int = 2) -> None:
        super().__init__()
        self.features = features
        self.bag = nn.EmbeddingBag(features + 1, num_classes, mode="sum", sparse=True,
                                   padding_idx=features)
        self.bias = nn.Parameter(torch.zeros(num_classes))
        nn.init.zeros_(self.bag.weight)  # a convex problem: start from zero, as SGD texts do

    @property
    def weight(self) -> torch.Tensor:
        """The features' rows of the table (features, classes), without the padding row."""
        return self.bag.weight[:self.features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            raise CosttrainError("sparse-linear takes int64 feature ids (N, k), e.g. the "
                                 "sparse-synthetic or wordnet-supersense dataset, not images.")
        return self.bag(x) + self.bias


def sparse_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The parameters whose gradients are sparse (``Embedding``/``EmbeddingBag(sparse=True)``)."""
    return [m.weight for m in net.modules()
            if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse]


def has_sparse_grads(net: nn.Module) -> bool:
    """True if some parameter of `net` gets sparse gradients."""
    return bool(sparse_parameters(net))


def step_footprint(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """How many parameter values one SGD step on the batch (x, y) writes (no step is taken).

    A dense gradient writes its whole tensor; a sparse one only its rows.
    """
    net.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x), y).backward()
    written = total = 0
    for p in net.parameters():
        total += p.numel()
        if p.grad is not None and p.grad.is_sparse:
            written += len(p.grad.coalesce().indices()[0]) * p[0].numel()
        elif p.grad is not None:
            written += p.numel()
    net.zero_grad(set_to_none=True)
    return dict(written=written, total=total, fraction=written / max(1, total))


def batch_row_probability(x: torch.Tensor, features: int, batch_size: int) -> torch.Tensor:
    """For each row 0..features-1: the chance that a random batch of `batch_size` samples of
    `x` (N, k) writes it, ``1 - (1 - n_r / N) ** batch_size`` where ``n_r`` counts the samples
    holding feature ``r`` (ids >= `features` are padding and ignored)."""
    xs = x.sort(1).values
    first = torch.ones_like(xs, dtype=torch.bool)
    first[:, 1:] = xs[:, 1:] != xs[:, :-1]  # count a feature once per sample
    ids = xs[first & (xs < features)]
    share = torch.bincount(ids, minlength=features)[:features].double() / max(1, len(x))
    return 1 - (1 - share) ** batch_size


def expected_row_overlap(x: torch.Tensor, features: int, batch_size: int) -> float:
    """The share of a step's rows that one concurrent step of another worker also writes,
    expected from feature frequencies alone: ``sum p_r^2 / sum p_r`` with ``p`` from
    :func:`batch_row_probability`. Frequent features weigh in squared: they are in most
    steps' batches, so both workers write them."""
    p = batch_row_probability(x, features, batch_size)
    return float((p * p).sum() / p.sum().clamp_min(1e-12))


SLOT_NS = 20_000_000  # Collisions cut time into slots of 20 ms and measure one in `every`


class Collisions:
    """Hogwild! conflicts, sampled: did another worker write my rows while my step computed?

    A shared table per sparse parameter holds, for each row, the time of its last write and
    the writer (``monotonic_ns << 8 | rank``). Time is cut into slots of :data:`SLOT_NS`, and
    one slot in ``every`` is measured: the same slots for every worker, since the monotonic
    clock is the machine's. In a measured slot each step stamps the rows it wrote (one
    ``index_put``), and a step that began and ended inside the slot first checks its rows for
    stamps of *another* worker newer than the moment it began reading the parameters. Outside
    the measured slots a step costs two clock reads, so sampling stays cheap. Results:
    ``overlap_fraction`` = checked steps with at least one such row, ``row_overlap_fraction``
    = such rows / rows written, over the checked steps. Dense parameters (a bias, a dense net)
    are written by every step and left out: for a dense model every concurrent step overlaps.
    """

    def __init__(self, net: nn.Module, every: int = 10) -> None:
        self.every = max(1, every)
        self.tables = [torch.zeros(p.shape[0], dtype=torch.int64).share_memory_()
                       for p in sparse_parameters(net)]
        self.params: list[nn.Parameter] = []
        self.rank, self.t_read = 0, 0
        self.sampled = self.overlapped = self.rows = self.rows_overlapped = 0

    def bind(self, net: nn.Module, rank: int) -> None:
        """In the worker: watch this (shared) model's sparse parameters as worker `rank`."""
        self.params, self.rank = sparse_parameters(net), rank

    def begin(self) -> None:
        """Call before the forward pass: the step starts reading the parameters now."""
        self.t_read = time.monotonic_ns()

    def end(self) -> None:
        """Call after ``opt.step()``: in a measured slot, check (see above), then stamp my rows."""
        if not self.tables:
            return
        now = time.monotonic_ns()
        slot, first = now // SLOT_NS, self.t_read // SLOT_NS
        if slot % self.every and first % self.every:
            return  # neither end of the step lies in a measured slot
        check = slot == first  # the whole step inside one measured slot
        hit = False
        for p, table in zip(self.params, self.tables):
            if p.grad is None or not p.grad.is_sparse:
                continue
            rows = p.grad._indices()[0].cpu()
            if check:
                rows = rows.unique()
                seen = table[rows]
                other = (seen >> 8 >= self.t_read) & (seen & 255 != self.rank)
                n = int(other.sum())
                self.rows += len(rows)
                self.rows_overlapped += n
                hit = hit or n > 0
            table[rows] = (now << 8) | self.rank
        if check:
            self.sampled += 1
            self.overlapped += hit

    def counts(self) -> dict:
        """This worker's raw counts (summed over workers by :func:`collision_summary`)."""
        return dict(sampled_steps=self.sampled, overlapped_steps=self.overlapped,
                    rows_checked=self.rows, rows_overlapped=self.rows_overlapped)


def collision_summary(per_worker: list[dict], processes: int, sparse: bool,
                      every: int) -> dict:
    """The ``extra['collisions']`` record of a Hogwild! run, from the workers' counts."""
    if not sparse:
        return dict(measured=False, overlap_fraction=1.0 if processes > 1 else 0.0,
                    row_overlap_fraction=1.0 if processes > 1 else 0.0,
                    note="dense model: every step writes every parameter, so every step "
                         "overlaps the other workers' concurrent steps")
    tot = {key: sum(c.get(key, 0) for c in per_worker) for key in
           ("sampled_steps", "overlapped_steps", "rows_checked", "rows_overlapped")}
    sampled = processes > 1 and tot["sampled_steps"] > 0
    return dict(measured=sampled or processes == 1, sample_every=every, **tot,
                overlap_fraction=tot["overlapped_steps"] / max(1, tot["sampled_steps"]),
                row_overlap_fraction=tot["rows_overlapped"] / max(1, tot["rows_checked"]),
                note="sparse rows only; the bias is written by every step" if sampled or processes == 1
                else f"no step fell in a measured slot: the run was shorter than about "
                     f"{every * SLOT_NS / 1e9:g} s; use a smaller collision_every")
