"""Local SGD: K workers train alone and average their models every H steps (gloo all-reduce).

Each worker runs the ordinary training loop on its own shard of the data with its own SGD
optimizer; after every H-th step ``torch.distributed``'s own
:class:`~torch.distributed.algorithms.model_averaging.averagers.PeriodicModelAverager`
all-reduces the parameters and every worker continues from the average (Lin et al. 2020,
"Don't use large mini-batches, use local SGD", https://arxiv.org/abs/1808.07217; Stich 2019,
https://arxiv.org/abs/1805.09767; DiLoCo, Douillard et al. 2023, https://arxiv.org/abs/2311.08105,
is the same idea across data centres). H = 1 is synchronous data-parallel SGD; a larger H
communicates H times less.

* :func:`train_local_sgd` launches K worker processes on this machine (127.0.0.1, a free port).
* ``python -m costtrain.local_sgd ...`` is one rank of a run started by ``torchrun``, on one
  machine or several (rank 0 evaluates, prints the summary and writes ``--out``).

Communication is counted per rank in ``result.extra['comm']`` (:mod:`costtrain.train.comm`): the
all-reduce payload is the flat parameter vector; a ring all-reduce moves about
``2 (K-1) / K`` times the payload in and out of each rank, which is what is recorded (gloo picks
its own algorithm; the payload itself is exact). The transport is unauthenticated: loopback or
a trusted network only.
"""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.algorithms.model_averaging import utils as averaging
from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

from ..data.datasets import Dataset
from ..data.models import build_model, display_name, sgd_settings
from ..measure import merge_curves, timed
from ..result import RunResult, new_curve
from ..run import procs
from ..run.group import first_line, join_group, recv_json, send_json
from ..run.guards import diverged
from ..utils import Stopwatch, threads_per_process
from .comm import CommCounter, comm_record
from .engine import (LossLog, batches, evaluate, failure, loss_fn, progress_bar, shard_indices,
                     slice_of)
from .launch import (RankError, check_settings, launch, process_start, run_result, start,
                     torchrun_env, torchrun_rank, torchrun_threads)

__all__ = ["train_local_sgd", "run_under_torchrun", "LocalSGDError", "LocalSGDConfig",
           "local_batches"]

METHOD = "local-sgd"
SNAPSHOT_SECONDS = 1.0  # how often each rank sends the launcher what it has measured so far
DIVERGENCE_CHECK_STEPS = 50  # about this often (a multiple of H) the ranks agree whether any
#                              rank's loss rose far above its start (one 1-number all-reduce)


@dataclass
class LocalSGDConfig:
    """Hyper-parameters every rank needs (sent to each process)."""

    workers: int = 2
    average_every: int = 8  # H: local steps between two averages
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.01  # each worker's learning rate (already scaled)
    momentum: float = 0.5
    seed: int = 42
    log_every: int = 10
    eval_every: int | None = None
    timeout: float = 60.0
    threads: int = 1
    classes: int | None = None  # of the dataset (the divergence rules)


Batch = tuple[torch.Tensor, torch.Tensor]


def local_batches(ds: Dataset, rank: int, cfg: LocalSGDConfig) -> Iterator[Batch]:
    """Worker ``rank``'s (0-based) mini-batches: its shard, cut to ``n // K`` samples so that
    every worker takes the same number of steps (the all-reduces must pair up)."""
    n = len(ds.train_y)
    shard = shard_indices(n, rank, cfg.workers, cfg.seed)[:n // cfg.workers]
    gen = torch.Generator().manual_seed(cfg.seed + rank)
    for _ in range(cfg.epochs):
        yield from batches(ds.train_x, ds.train_y, cfg.batch_size, gen, indices=shard)


# --- one rank: the whole loop ----------------------------------------------------------------

def train_rank(rank: int, cfg: LocalSGDConfig, ds: Dataset, net: nn.Module) -> dict[str, Any]:
    """One worker: local SGD steps on my shard; average the models every H steps."""
    torch.manual_seed(cfg.seed + rank)
    net = copy.deepcopy(net).train()  # the same initial model on every rank
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    H, K = cfg.average_every, cfg.workers
    with warnings.catch_warnings():  # H = 1 warns "use DDP": we keep one loop for every H
        warnings.simplefilter("ignore", UserWarning)
        averager = PeriodicModelAverager(period=H, warmup_steps=H - 1)  # after steps H, 2H, ...
    payload = sum(p.numel() * p.element_size() for p in params)
    moved = round(2 * (K - 1) / K * payload)  # ring all-reduce, per rank and direction
    log, compute, comm, pause, cc = (LossLog(cfg.log_every, ds.num_classes), Stopwatch(),
                                     Stopwatch(), Stopwatch(), CommCounter())
    check_every = H * max(1, DIVERGENCE_CHECK_STEPS // H)  # steps between two agreements
    evals, next_eval = new_curve("samples", "seconds", "accuracy", "loss"), cfg.eval_every or 0
    held_out = slice_of(ds.test_x, ds.test_y)  # the intermediate evaluations' fixed slice
    dist.barrier()  # start together: a late peer's start-up is not waiting in an all-reduce
    steps, reported, error, train_start, t0 = 0, 0, None, time.time(), time.perf_counter()
    last_snapshot = float("-inf")  # the first average sends one at once

    def elapsed() -> float:
        return time.perf_counter() - t0 - pause.seconds

    def snapshot(error: str | None) -> dict[str, Any]:  # what this rank has measured so far
        cc.seconds = comm.seconds
        return dict(rank=rank, curve=log.curve, samples=log.samples, steps=steps,
                    train_start=train_start, train_seconds=elapsed(),
                    compute_seconds=compute.seconds, comm_seconds=comm.seconds,
                    averages=cc.messages, payload_bytes=payload, comm=cc.to_dict(), error=error,
                    **({"eval_curve": evals} if rank == 0 else {}))

    def average() -> None:  # count one all-reduce; tell the launcher how far we are
        nonlocal reported, last_snapshot
        cc.add(sent=moved, received=moved, messages=1, round_trips=K - 1)
        if rank == 0:
            procs.report("progress", (K * (log.samples - reported), lv))
            reported = log.samples
        if time.monotonic() - last_snapshot >= SNAPSHOT_SECONDS:  # kept if a peer dies
            procs.report("partial", snapshot(None))
            last_snapshot = time.monotonic()

    try:
        for xb, yb in local_batches(ds, rank, cfg):
            if procs.should_stop():
                error = f"worker {rank} stopped early: the launcher asked every process to stop"
                break
            try:
                with compute:
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(net(xb), yb)
                    loss.backward()
                    opt.step()
                    lv = loss.item()
            except (RuntimeError, MemoryError) as exc:  # my own failure (e.g. out of memory)
                error = failure(exc, f"worker {rank}", "computing a gradient")
                break
            steps += 1
            with comm:
                averager.average_parameters(params)  # an all-reduce when steps % H == 0
            log.add(lv, len(yb), elapsed())
            if steps % H == 0:
                average()
                if any(diverged(p) for p in params):  # equal on every rank after an average:
                    break  # so all of them stop here together
                if steps % check_every == 0 and any_rank(log.diverged, comm):
                    break  # a loss far above its start on some rank: all stop together
                if next_eval and K * log.samples >= next_eval:  # every rank knows this
                    with pause:
                        if rank == 0:
                            _evaluate_into(evals, net, held_out, K * log.samples, elapsed())
                        dist.barrier()
                    while next_eval <= K * log.samples:
                        next_eval += cfg.eval_every
        if error is None and steps % H:
            with comm:  # the last few local steps: one more average, so all end equal
                averaging.average_parameters(iter(params), None)
            average()
    except RuntimeError as exc:  # a peer died or went silent: keep what this rank has
        error = f"worker {rank} lost a peer in the all-reduce: {first_line(exc)}"
    log.flush(elapsed())
    report = snapshot(error)
    report["diverged"] = log.diverged or any(diverged(p) for p in params)
    report["diverged_reason"] = log.reason
    procs.report("partial", report)  # all it trained, should the evaluation be cut short
    if rank == 0:  # the final (averaged, or on failure: my local) model
        procs.report("evaluating", len(ds.test_y))
        t = time.perf_counter()
        report["test_loss"], report["test_accuracy"] = evaluate(net, ds.test_x, ds.test_y)
        report["test_samples"] = len(ds.test_y)
        report["eval_seconds"] = time.perf_counter() - t + pause.seconds
        report["state"] = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return report


def any_rank(flag: bool, comm: Stopwatch) -> bool:
    """True on every rank when `flag` is true on any (a 1-number MAX all-reduce, timed as
    communication): the ranks stop together, so no all-reduce waits for a rank that left."""
    t = torch.tensor([float(flag)])
    with comm:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _evaluate_into(curve: dict, net: nn.Module, held_out: tuple[torch.Tensor, torch.Tensor],
                   samples: int, seconds: float) -> None:
    loss, acc = evaluate(net, *held_out)
    for key, val in zip(("samples", "seconds", "accuracy", "loss"),
                        (samples, round(seconds, 4), acc, loss)):
        curve[key].append(val)


def run_rank(rank: int, cfg: LocalSGDConfig, ds: Dataset, net: nn.Module,
             addr: str | None = None, port: int | None = None) -> dict[str, Any]:
    """One process: join the group, train, and (no failure) send every report to rank 0."""
    torch.set_num_threads(cfg.threads)
    join_group(rank, cfg.workers, cfg.timeout, addr, port, what="local SGD")
    try:
        report = train_rank(rank, cfg, ds, net)
        if report["error"] is None:
            try:  # not training traffic: not counted. JSON in a byte tensor, never a pickle
                if rank == 0:
                    report["reports"] = {r: recv_json(r) for r in range(1, cfg.workers)}
                else:
                    send_json({k: v for k, v in report.items() if k != "state"}, 0)
            except RuntimeError as exc:
                report["error"] = f"worker {rank} could not collect the reports: {first_line(exc)}"
        return report
    finally:
        dist.destroy_process_group()


# --- the launcher on this machine ------------------------------------------------------------

class LocalSGDError(RankError):
    """A run failed (a rank died, a connection broke, a wait timed out).

    ``.rank`` is the lost rank (-1 if unknown) and ``.result`` the
    :class:`~costtrain.result.RunResult` (status ``partial``) with what the survivors measured.
    """


def limits(timeout: float) -> procs.Limits:
    """What a local SGD run's ``timeout`` means (the failure table of docs/command-line.md).

    gloo's waits in the all-reduce give up after `timeout`; ``stall_timeout`` = 0.8 x timeout
    names a silent (stopped) rank before that fires in its peers, which would blame them; no
    ``deadline``; ``grace`` = min(timeout, 5) s: survivors blocked in an all-reduce with a dead
    peer only notice at the timeout, and their snapshots (at most SNAPSHOT_SECONDS old) stand
    in for them.
    """
    return procs.Limits(stall_timeout=0.8 * timeout, grace=min(timeout, 5.0))


def worker_lr(lr: float, workers: int, scale_lr: bool) -> float:
    """Each worker's learning rate: ``lr``, times ``workers`` with ``scale_lr``."""
    return lr * workers if scale_lr else lr


@timed
def train_local_sgd(net: nn.Module | str = "simple", data: Dataset | str = "fashion-mnist", *,
                    workers: int = 2, average_every: int = 8, epochs: int = 1,
                    batch_size: int = 64, lr: float | None = None,
                    momentum: float | None = None, scale_lr: bool = True, threads: int | None = None, device: str = "cpu",
                    seed: int = 42, subset: int | None = None, data_root: str | None = None,
                    eval_every: int | None = None, log_every: int = 10, progress: bool = False,
                    timeout: float = 60.0, addr: str = "127.0.0.1", port: int | None = None,
                    on_progress: Callable | None = None) -> RunResult:
    """Train with local SGD: K worker processes on this machine, models averaged every H steps.

    Worker ``r`` (0..K-1) trains on ``n // K`` samples of shard ``shard_indices(n, r, K, seed)``
    for ``epochs`` passes with its own SGD(lr, momentum); after every ``average_every`` local
    steps the parameters are averaged with an all-reduce (and once more at the end). Total
    work: ``epochs`` passes over the training set, shared by the workers.

    Args:
        net: a model name (``simple``, ``mlp``, ``cnn``) or your own ``nn.Module`` (its class must
            live in an importable module); it receives the final averaged parameters.
        workers: worker processes (K); every one trains.
        average_every: H, local steps between two averages (1 = synchronous data parallel).
        batch_size: samples per step and worker.
        scale_lr: (default on) each worker uses ``lr * workers``, as the parameter server in
            sync mode does (the linear scaling rule: averaging K models ~ a K-times larger
            batch); off = ``lr``. Floating-point buffers (BatchNorm statistics) stay local.
        threads: intra-op threads per worker; default ``cores // workers``, at least 1.
        device: only ``cpu`` (gloo moves CPU tensors).
        eval_every: rank 0 also evaluates the averaged model, on the fixed slice of the test
            set (:func:`~costtrain.train.engine.eval_slice`), at the first average after every
            this many samples (all workers pause; the time is kept out of training time).
        timeout: seconds any wait on a peer may take (the rendezvous, gloo's all-reduce); a
            dead or silent peer ends the run. Its one definition, with the stall rule and
            grace it implies, is :func:`limits`.
        addr, port: where the rendezvous store listens (default loopback and a free port).
        on_progress: called as ``on_progress(0, new_samples, epoch, samples, loss)`` after
            every average (samples of all workers; loss: rank 0's last step), e.g. a live plot.
    Returns:
        A RunResult (method ``local-sgd``): ``worker_curves`` each worker's losses,
        ``loss_curve`` them merged; ``extra`` has steps, averages, compute/comm seconds per
        worker, comm_share and ``comm`` (bytes, collectives and seconds per rank).
    Raises:
        CosttrainError: bad settings, a busy ``port`` or a foreign ``addr``, before any process.
        LocalSGDError: a rank died or a connection broke; ``.result`` holds what the survivors
            measured (status ``partial``) and ``.rank`` the lost rank.
    """
    check_settings(workers, epochs=epochs, batch_size=batch_size,
                   lr=1.0 if lr is None else lr, momentum=momentum or 0.0,
                   eval_every=eval_every, timeout=timeout, threads=threads,
                   average_every=average_every)
    model, ds, t_start = start("local SGD", net, data, workers=workers, processes=workers,
                               threads=threads, device=device, addr=addr, seed=seed,
                               subset=subset, data_root=data_root)
    lr, momentum = sgd_settings(model, lr, momentum)  # None: the model's (0.01 and 0.5)
    cfg = LocalSGDConfig(workers=workers, average_every=average_every, epochs=epochs,
                         batch_size=batch_size, lr=worker_lr(lr, workers, scale_lr),
                         momentum=momentum, seed=seed, log_every=log_every,
                         eval_every=eval_every, timeout=timeout,
                         threads=threads_per_process(workers, threads=threads),
                         classes=ds.num_classes)
    config = _config(cfg, ds, display_name(net, model), subset, lr=lr, scale_lr=scale_lr,
                     addr=addr)
    snapshots: dict[int, dict] = {}  # each rank's latest measurements, in case it never returns
    seen, per_epoch = [0], max(1, (len(ds.train_y) // workers) * workers)
    bar = progress_bar(epochs * (len(ds.train_y) // workers) * workers, progress, METHOD)

    def on_message(rank: int, kind: str, payload: Any) -> None:
        if kind == "progress":
            n, loss = payload
            bar.update(n)
            seen[0] += n
            if on_progress:
                on_progress(0, n, 1 + (seen[0] - 1) // per_epoch, seen[0], loss)
        elif kind == "partial":
            snapshots[rank] = payload
        elif kind == "evaluating":
            bar.set_description_str(f"{METHOD}: evaluating on {payload:,} test samples")

    def result(outs: dict[int, Any], error: str | None, lost: list[int] | None) -> RunResult:
        return assemble(cfg, config, {**snapshots, **outs}, t_start, error=error, lost=lost)
    return launch("local SGD", run_rank, cfg, ds, model, net, processes=workers, addr=addr,
                  port=port, timeout=timeout, limits=limits(timeout), bar=bar,
                  on_message=on_message, assemble=result, error=LocalSGDError)


def _config(cfg: LocalSGDConfig, ds: Dataset, model: str, subset: int | None, **more) -> dict:
    return dict(dataset=ds.name, model=model, workers=cfg.workers, processes=cfg.workers,
                average_every=cfg.average_every, epochs=cfg.epochs, batch_size=cfg.batch_size,
                worker_lr=cfg.lr, momentum=cfg.momentum, seed=cfg.seed, subset=subset,
                train_samples=len(ds.train_y), **more)


COUNTED = ("all-reduce payloads, counted by the ranks: each average all-reduces the flat "
           "parameter vector (payload_bytes); bytes sent and received per rank are the ring "
           "all-reduce's 2(K-1)/K x payload each way (gloo may pick another algorithm), one "
           "collective and K-1 round trips per average. The final reports sent to rank 0 and "
           "TCP/gloo headers are not counted.")


def assemble(cfg: LocalSGDConfig, config: dict, outs: dict[int, Any], t_start: float,
             error: str | None = None, lost: list[int] | None = None) -> RunResult:
    """The RunResult of a run from the ranks' reports (rank 0's carries the others' too)."""
    reports = {int(r): rep for r, rep in outs.items() if isinstance(rep, dict)}
    for r, rep in dict(reports.get(0, {}).get("reports", {})).items():
        reports.setdefault(int(r), rep)
    first = reports.get(0, {})
    errors = [rep["error"] for _, rep in sorted(reports.items()) if rep.get("error")]
    errors.sort(key=lambda e: " lost a peer" in e)  # a rank's own failure names the cause
    error = error or (errors[0] if errors else None)
    curves = {str(r): rep["curve"] for r, rep in sorted(reports.items())}
    n = max(1, len(reports))
    train = first.get("train_seconds") or max((rep["train_seconds"] for rep in reports.values()),
                                              default=0.0)
    samples = sum(rep["samples"] for rep in reports.values())
    compute = sum(rep["compute_seconds"] for rep in reports.values())
    comm = sum(rep["comm_seconds"] for rep in reports.values())
    steps = max((rep["steps"] for rep in reports.values()), default=0)
    extra: dict[str, Any] = dict(
        steps=steps, steps_per_second=steps / train if train > 0 else 0.0,
        averages=max((rep["averages"] for rep in reports.values()), default=0),
        average_every=cfg.average_every,
        compute_seconds=compute / n, comm_seconds=comm / n,
        comm_share=comm / (comm + compute) if comm + compute > 0 else 0.0,
        per_worker={str(r): dict(samples=rep["samples"], steps=rep["steps"],
                                 compute_seconds=rep["compute_seconds"],
                                 comm_seconds=rep["comm_seconds"], error=rep.get("error"))
                    for r, rep in sorted(reports.items())},
        lost=sorted(set(range(cfg.workers)) - set(reports)) if lost is None else lost,
        comm=comm_record({r: rep["comm"] for r, rep in reports.items()}, samples=samples,
                         payload_bytes=max((rep["payload_bytes"] for rep in reports.values()),
                                           default=0),
                         worker_steps=steps, counted=COUNTED))
    start = first.get("train_start") or min((rep["train_start"] for rep in reports.values()),
                                            default=None)
    return run_result(METHOD, cfg, config, first, t_start=t_start, train_start=start,
                      train=train, samples=samples, loss_curve=merge_curves(list(curves.values())),
                      curves=curves, extra=extra, error=error,
                      diverged=any(rep.get("diverged") for rep in reports.values()),
                      diverged_reason=next((rep["diverged_reason"] for _, rep in sorted(
                          reports.items()) if rep.get("diverged_reason")), None),
                      label=f"{METHOD} {cfg.workers}w H={cfg.average_every}")


# --- torchrun: one process of a run on one machine or several ------------------------------

def run_under_torchrun(net: nn.Module | str, ds: Dataset, *, average_every: int = 8,
                       epochs: int = 1, batch_size: int = 64, lr: float | None = None,
                       momentum: float | None = None, scale_lr: bool = True, threads: int | None = None,
                       seed: int = 42, subset: int | None = None,
                       eval_every: int | None = None, log_every: int = 10,
                       timeout: float = 60.0) -> RunResult | None:
    """This process's part of a run whose ranks come from the environment (``env://``).

    Rank 0 returns the RunResult; the others None. Every rank must load the same data and
    build the same net with the same seed (the initial models must be equal).
    """
    rank, world, master = torchrun_env()
    torch.manual_seed(seed)
    model = build_model(net, ds.input_shape, ds.num_classes) if isinstance(net, str) else net
    lr, momentum = sgd_settings(model, lr, momentum)
    check_settings(world, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                   eval_every=eval_every, timeout=timeout, threads=threads,
                   average_every=average_every)
    cfg = LocalSGDConfig(workers=world, average_every=average_every, epochs=epochs,
                         batch_size=batch_size, lr=worker_lr(lr, world, scale_lr),
                         momentum=momentum, seed=seed, log_every=log_every,
                         eval_every=eval_every, timeout=timeout,
                         threads=torchrun_threads(threads), classes=ds.num_classes)
    out = torchrun_rank(run_rank, rank, cfg, ds, model)
    if out is None:
        return None
    config = _config(cfg, ds, display_name(net, model), subset, lr=lr, scale_lr=scale_lr,
                     master=master)
    return assemble(cfg, config, {0: out}, process_start())

