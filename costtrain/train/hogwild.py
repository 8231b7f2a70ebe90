"""Hogwild! (Niu, Recht, Ré and Wright, NIPS 2011): several processes update one shared model without locks.

The model's parameters and the training data live in shared memory (the model in ``/dev/shm``
through torch, the data in an anonymous memory file: :mod:`costtrain.run.shared`); every worker process
builds its own optimizer, draws its own mini-batches and writes its updates straight into
the shared parameters. Three things make it fast on a small machine:

* each worker uses ``cores // processes`` intra-op threads (PyTorch's default, every core in
  every process, runs N² threads on N cores and crawls);
* the data is decoded once into tensors in shared memory, not transformed sample by sample;
* process start-up is timed apart from training: workers wait on a start event until all of
  them are ready, so ``train_seconds`` measures training only and ``setup_seconds`` holds the
  data loading and process start-up;
* and start-up is paid once: the workers come from a warm pool (:mod:`costtrain.run.pool`) that
  outlives the run, so a second run in the same Python process or notebook kernel starts in a
  fraction of a second (``costtrain run`` even starts them before it imports torch).

Periodic evaluation (``eval_every``) is a pause for everyone, as in the baseline: each time
the samples trained by *all* workers together (a shared counter) pass another ``eval_every``,
every worker parks at its next step and the parent evaluates the shared model on the fixed
slice of the test set (:func:`~costtrain.train.engine.eval_slice`) with every core, then lets
them go. The pause is kept out of the training clock, so the eval curve's seconds are
comparable with the baseline's, and no core evaluates while the others train (on two cores,
one worker evaluating used to be half the machine). The per-worker loss curves share one
clock, wall seconds since the start signal, so that they merge in time order.

Sparse models (``sparse-linear``): each step writes only the rows of its batch's features,
so workers rarely collide; :class:`~costtrain.data.sparse.Collisions` samples how often another
worker wrote a step's rows while it computed (``extra['collisions']``).

Reading order: :func:`worker` (the loop each process runs), :func:`train_hogwild` (the native
API), then the plumbing (:class:`Source`, :class:`Job`, :func:`train_source`). The checks made
before any process starts are in :mod:`costtrain.run.guards`; the original project's API
(``train_model``, ``log_elapsed_time``, ``chart_losses``) is in :mod:`costtrain.train.legacy`, built
on :func:`train_source`. Import everything from :mod:`costtrain.hogwild`, which names this
module's public parts and the original API's together.
"""
from __future__ import annotations

import time
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from ..data.datasets import ClassicImageDataset, Dataset
from ..data.models import display_name, sgd_settings
from ..data.sparse import Collisions, collision_summary, has_sparse_grads
from ..errors import ResourceError
from ..measure import merge_curves, on_training_clock, steady_rate, timed
from ..methods import split_work  # noqa: F401 (compare's plan; public here as before)
from ..result import RunResult
from ..run import pool, procs, shared
from ..run.guards import (check_device, check_optimizer, check_plan, check_shareable,
                          check_shared_memory)
from ..utils import (CosttrainError, hardware_info, num_threads, positive, seed_everything,
                     threads_per_process, whole)
from .engine import (PIPELINES, Evaluator, LossLog, OptimizerFactory, batches, check_base_batch,
                     check_hparams, close_eval_curve, evaluate, judge, linear_scaled_lr,
                     loss_fn, mark_diverged, optimizer_label, prepare, progress_bar, sgd,
                     shard_indices)
from .levers import (Fast, Levers, check_levers, compile_in_this_process, grad_scaler, make_levers,
                     restore_buffers, snapshot_buffers, to_memory_format)

__all__ = ["worker", "train_hogwild", "Source", "Job", "train_source", "split_work", "share"]

SHARDINGS = ("full", "shard")


def worker(rank: int, job: Job, model: nn.Module, source: Source, collisions: Collisions,
           start, counter) -> dict:
    """One Hogwild! process: wait for the start signal, then train the shared `model`.

    With ``job.eval_every`` every worker adds its samples to the shared `counter`; the one whose
    step passes another ``eval_every`` clears `start`, and every worker parks at its next step
    until the parent, which evaluates the shared model meanwhile, gives the next start signal
    (:class:`_Clock`). `start` and `counter` are the worker pool's (:mod:`costtrain.run.pool`).
    """
    torch.set_num_threads(job.threads)
    collisions.bind(model, rank)
    dev = torch.device(job.device)
    opt = job.optimizer(list(model.parameters()))
    indices = (shard_indices(len(source), rank, job.processes, job.seed)
               if job.sharding == "shard" else None)
    fast, scaler = Fast(model, job.levers, dev, job.batch_size), grad_scaler(job.levers, dev)
    if job.levers.compile:  # compile before the start signal: its time is set-up
        compile_in_this_process()
        first = next(source.epoch(job.batch_size, torch.Generator().manual_seed(job.seed), indices))
        fast.warm_up(*first, undo_buffers=False)  # the parent restores the shared buffers
    gen = seed_everything(job.seed + rank)
    log = LossLog(job.log_every, classes=job.classes)
    procs.report("ready", None)
    if not _wait_for_go(start, counter, 0):
        return _outcome(log, collisions, None, stopped=True)
    model.train()
    t0 = time.perf_counter()
    reported, diverged = 0, False
    for epoch in range(1, job.epochs + 1):
        for xb, yb in source.epoch(job.batch_size, gen, indices):
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            collisions.begin()  # reading the shared parameters starts now
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(fast(xb), yb)  # the net with the levers on (compiled, autocast)
            scaler.scale(loss).backward()  # scaled for fp16 only, else as it is
            scaler.step(opt)
            scaler.update()
            collisions.end()  # did another worker write my rows meanwhile? (sampled)
            now = time.perf_counter() - t0  # one clock for every worker's curves (wall since start)
            log.add(loss.item(), len(yb), now)
            if log.samples - reported >= job.log_every * job.batch_size:
                procs.report("progress", (log.samples - reported, epoch, log.samples,
                                          log.curve["loss"][-1]))
                reported = log.samples
            if job.eval_every and _passed(counter, len(yb), job.eval_every):
                start.clear()  # every worker parks at its next step: the parent evaluates
                procs.report("eval", None)
            if procs.should_stop() or (job.eval_every and not start.is_set()
                                       and not _park(start, counter)):
                return _outcome(log, collisions, t0, stopped=True,
                                compile_seconds=fast.compile_seconds)
            if log.diverged:  # stop here; the parent sees it in the outcome
                diverged = True
                break
        if diverged:
            break
    if dev.type == "cuda":
        torch.cuda.synchronize()
    procs.report("done", (log.samples - reported,))
    return _outcome(log, collisions, t0, stopped=diverged, compile_seconds=fast.compile_seconds)


def _outcome(log: LossLog, collisions: Collisions, t0: float | None, stopped: bool,
             compile_seconds: float = 0.0) -> dict:
    """What a worker hands in; times are wall seconds since its start signal (`t0`, this
    machine's monotonic clock, which the parent shares)."""
    seconds = 0.0 if t0 is None else time.perf_counter() - t0
    log.flush(seconds)
    return dict(curve=log.curve, samples=log.samples, t0=t0, seconds=seconds, stopped=stopped,
                diverged=log.diverged, diverged_reason=log.reason,
                threads=torch.get_num_threads(),
                collisions=collisions.counts(), compile_seconds=compile_seconds)


# ------------------------------------------------------------------ the native API

@timed
def train_hogwild(net: nn.Module | str = "simple", data: Dataset | str = "fashion-mnist", *,
                  processes: int = 2, epochs_per_process: int = 1, sharding: str = "full",
                  batch_size: int = 64, lr: float | None = None,
                  momentum: float | None = None, optimizer: OptimizerFactory | None = None,
                  threads: int | None = None, device: str = "cpu", seed: int = 42,
                  subset: int | None = None, data_root: str | None = None,
                  eval_every: int | None = None, log_every: int = 10, pipeline: str = "memory",
                  progress: bool = False, timeout: float | None = 60.0,
                  collision_every: int = 10, compile: bool | str = False,
                  amp: str | None = None, channels_last: bool = False, force_amp: bool = False,
                  base_batch: int | None = None, on_progress: Callable | None = None) -> RunResult:
    """Train `net` with `processes` Hogwild! workers on shared-memory parameters.

    Args:
        net: a model name (``simple``, ``mlp``, ``cnn``) or your own ``nn.Module``, trained in
            place (its class must live in an importable module, not in a notebook).
        data: a dataset name or a loaded :class:`~costtrain.data.datasets.Dataset` (moved to shared memory).
        processes: worker processes sharing the model.
        epochs_per_process: passes each worker makes over its data.
        sharding: ``full`` = every worker sees the whole training set each epoch (the original
            project; ``processes x epochs_per_process`` epochs of work in total), ``shard`` =
            disjoint shards (``epochs_per_process`` epochs of work in total).
        lr, momentum: of the default SGD; None = the model's recommendation (0.01 and 0.5 for
            the dense nets; momentum 0 for sparse models, which refuse momentum > 0).
        optimizer: picklable factory ``params -> Optimizer`` built in every worker, e.g.
            ``functools.partial(torch.optim.Adam, lr=1e-3)``; default SGD(lr, momentum).
        threads: intra-op threads per worker; default ``max(1, cores // processes)``.
        device: ``cpu`` or ``cuda`` (shared through CUDA IPC); ``mps`` cannot share tensors.
        seed: worker ``r`` seeds its data order and dropout with ``seed + r``.
        eval_every: every this many samples trained by all workers together, they pause
            and the parent evaluates the shared model on the test set's fixed slice.
        log_every: batches per point of each worker's loss curve.
        pipeline: ``memory`` (shared tensors) or ``classic`` (per-sample PIL transforms).
        timeout: seconds a worker may send nothing (no progress, no heartbeat: it is stopped,
            frozen or swapped out) before every worker is stopped and an error names it
            (its one definition: :func:`limits`); None waits for ever.
        collision_every: sparse models: measure one 20 ms slot of time in this many; its steps
            check whether another worker wrote their rows meanwhile (``extra['collisions']``).
        compile, amp, channels_last, force_amp, base_batch: the levers, as in
            :func:`~costtrain.train.baseline.train_baseline`; each worker compiles its own copy of the
            code before the start signal (``compile_seconds``: the slowest worker's, part of
            set-up).
        on_progress: called in this process as ``on_progress(rank, new_samples, epoch,
            worker_samples, loss)`` every ``log_every`` batches of each worker.

    Returns:
        RunResult (method ``hogwild``) with ``worker_curves`` indexed by samples each worker saw
        and ``extra['collisions']`` (see :class:`~costtrain.data.sparse.Collisions`);
        ``status='diverged'`` (stopped early) if the loss became nan/inf.
    Raises:
        CosttrainError: bad input, found before any process starts.
        WorkerError: a worker failed; ``.result`` holds the partial RunResult.
    """
    procs.check_main_guard()  # a worker re-running an unguarded script stops here
    t_setup = time.perf_counter()
    check_hparams(epochs=epochs_per_process, batch_size=batch_size,
                  lr=1.0 if lr is None else lr, eval_every=eval_every, momentum=momentum)
    whole(collision_every, "collision_every")
    threads = check_plan(processes, epochs_per_process, threads)
    if sharding not in SHARDINGS:
        raise CosttrainError(f"sharding must be one of {SHARDINGS}, got {sharding!r}.")
    if pipeline not in PIPELINES:
        raise CosttrainError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}.")
    if timeout is not None:
        positive(timeout, "timeout", "seconds")
    check_base_batch(base_batch, optimizer)
    levers = make_levers(compile, amp, channels_last)
    dev = check_device(device)
    check_levers(levers, dev, net if isinstance(net, nn.Module) else None, force_amp=force_amp)
    if pipeline == "classic" and dev.type != "cpu":
        raise CosttrainError("pipeline='classic' (per-sample transforms) runs on the CPU only.")
    if isinstance(net, nn.Module):
        check_shareable(net, "net")  # before prepare()'s dry run: say first what spawn cannot do
    pool.start_server()  # its imports overlap the data loading (no wait; warm: nothing to do)
    model, ds = prepare(net, data, seed=seed, subset=subset, data_root=data_root)
    check_shareable(model, "net")
    check_levers(levers, dev, model, force_amp=force_amp)
    to_memory_format(model, levers)  # before sharing: the workers get the NHWC tensors
    lr, momentum = sgd_settings(model, lr, momentum)
    if base_batch:
        lr = linear_scaled_lr(lr, batch_size, base_batch)
    factory = optimizer or sgd(lr, momentum)
    check_optimizer(factory, model)
    if sharding == "shard" and processes > len(ds.train_y):
        raise CosttrainError(f"{processes} shards of {len(ds.train_y)} samples: some would be "
                             "empty; use fewer processes or sharding='full'.")
    if dev.type == "cpu":  # the model goes to /dev/shm, the data outside it (costtrain.run.shared)
        check_shared_memory(model, data_bytes=0 if shared.AVAILABLE else ds.nbytes)
    with procs.resource_errors("sharing the model and the data with the workers"):
        share(model, dev)
        if dev.type == "cpu":
            ds.share_memory_()
    test = (ds.test_x.to(dev), ds.test_y.to(dev))
    source = (Source(dataset=ClassicImageDataset(ds)) if pipeline == "classic"
              else Source(ds.train_x.to(dev), ds.train_y.to(dev)))
    job = Job(processes=processes, epochs=epochs_per_process, batch_size=batch_size,
              optimizer=factory, threads=threads, device=str(dev), seed=seed, sharding=sharding,
              eval_every=eval_every, log_every=log_every, collision_every=collision_every,
              levers=levers, classes=ds.num_classes)
    config = dict(dataset=ds.name, model=display_name(net, model),
                  lr=lr, momentum=momentum, subset=subset, train_samples=len(ds.train_y),
                  pipeline=pipeline, base_batch=base_batch)
    return train_source(model, source, job, test=test, timeout=timeout, progress=progress,
                        on_progress=on_progress,
                        config=config, t_setup=t_setup)


# ------------------------------------------------------------------ plumbing

def _passed(counter, samples: int, every: int) -> bool:
    """Add `samples` to the shared count of all workers; whether it passed a multiple of `every`."""
    with counter.get_lock():
        before = counter[pool.SAMPLES]
        counter[pool.SAMPLES] = before + samples
    return (before + samples) // every > before // every


def _park(start, counter) -> bool:
    """Paused for an evaluation: tell the parent, wait for its next start signal; False if it
    asked every worker to stop instead."""
    seen = counter[pool.GO]  # read before telling: the parent gives no signal until all park
    procs.report("parked", None)
    return _wait_for_go(start, counter, seen)


def _wait_for_go(start, counter, seen: int) -> bool:
    """Wait until the parent has given more than `seen` start signals (``counter[GO]``; it
    sets `start` to wake us); False when it asked every worker to stop instead. Counting the
    signals, not reading `start`, sees one that another worker cleared again at once."""
    while counter[pool.GO] <= seen:
        start.wait(0.1)
        if procs.should_stop():
            return False
    return True


@dataclass
class Source:
    """Training data a worker iterates: in-memory tensors (fast) or any map-style torch Dataset."""

    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    dataset: torch.utils.data.Dataset | None = None
    shuffle: bool = True
    drop_last: bool = False
    collate_fn: Callable | None = None

    def __len__(self) -> int:
        return len(self.y) if self.y is not None else len(self.dataset)  # type: ignore[arg-type]

    def epoch(self, batch_size: int, gen: torch.Generator,
              indices: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the data (or over `indices`, a shard) in mini-batches."""
        if self.x is None:
            data = self.dataset if indices is None else torch.utils.data.Subset(
                self.dataset, indices.tolist())
            yield from torch.utils.data.DataLoader(data, batch_size, shuffle=self.shuffle,
                                                   generator=gen, drop_last=self.drop_last,
                                                   collate_fn=self.collate_fn)
            return
        if self.shuffle:
            it = batches(self.x, self.y, batch_size, gen, indices)
        else:
            idx = torch.arange(len(self.y)) if indices is None else indices.sort().values
            it = ((self.x[j], self.y[j]) for j in idx.split(batch_size))
        for xb, yb in it:
            if self.drop_last and len(yb) < batch_size:
                return
            yield xb, yb


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to know besides the shared tensors (picklable)."""

    processes: int
    epochs: int
    batch_size: int
    optimizer: OptimizerFactory
    threads: int
    device: str = "cpu"
    seed: int = 42
    sharding: str = "full"
    eval_every: int | None = None
    log_every: int = 10
    collision_every: int = 10
    levers: Levers = Levers()
    classes: int | None = None  # of the dataset: the floor of the loss-rise rule (LossLog)


def share(model: nn.Module, dev: torch.device) -> nn.Module:
    """Move `model` to `dev` and its parameters and buffers into shared memory (CPU) / IPC (CUDA)."""
    model.zero_grad(set_to_none=True)  # stale gradients would be shared by every worker
    model.to(dev)
    return model.share_memory()


class _Clock:
    """Parent side, the ``on_message`` handler: start the workers together, time them, and
    pause them all for each periodic evaluation (`evaluate`), which runs here meanwhile.

    ``pauses`` holds each pause's (start, end), seconds since the start signal, from the moment
    the last worker parked until they were let go: spans in which no worker trained.
    """

    def __init__(self, processes: int, start, counter, bar, on_progress,
                 on_all_ready: Callable[[], None] | None = None,
                 evaluate: Callable[[int, float], Any] | None = None) -> None:
        self.processes, self.start, self.counter = processes, start, counter
        self.bar, self.on_progress = bar, on_progress
        self.on_all_ready, self.evaluate = on_all_ready, evaluate
        self.ready, self.t_start, self.done = 0, None, {}
        self.eval_due, self.parked = False, set()
        self.pauses: list[tuple[float, float]] = []

    def __call__(self, rank: int, kind: str, payload: Any) -> None:
        if kind == "ready":
            self.ready += 1
            if self.ready == self.processes:
                if self.on_all_ready:
                    self.on_all_ready()
                self.t_start = time.perf_counter()
                self.bar.set_description_str("hogwild")
                self._go()
        elif kind == "progress":
            self.bar.update(payload[0])
            if self.on_progress:
                self.on_progress(rank, *payload)
        elif kind == "done":
            self.bar.update(payload[0])
            self.done[rank] = time.perf_counter() - self.t_start
        elif kind == "eval":
            self.eval_due = True
        elif kind == "parked":
            self.parked.add(rank)
        if self.eval_due and len(self.parked | set(self.done)) == self.processes:
            self._pause()

    def _pause(self) -> None:
        """Every worker is parked (or done): evaluate the shared model, then let them go."""
        a = time.perf_counter() - self.t_start
        if self.evaluate is not None:
            self.bar.set_description_str("hogwild: evaluating")
            self.evaluate(self.counter[pool.SAMPLES], a - sum(y - x for x, y in self.pauses))
            self.bar.set_description_str("hogwild")
        self.pauses.append((a, time.perf_counter() - self.t_start))
        self.eval_due, self.parked = False, set()
        self._go()

    def _go(self) -> None:
        """Give the next start signal: set `start`, then count it (a worker goes on once it
        sees the count, so none can clear `start` again before it is set)."""
        self.start.set()
        with self.counter.get_lock():
            self.counter[pool.GO] += 1

    def training_wall(self, outcomes: dict[int, dict]) -> float:
        """Seconds from the start signal to the last worker's end of training."""
        ends = [self.done.get(r, self.since_start(o, o["seconds"])) for r, o in outcomes.items()]
        return max(ends, default=0.0)

    def since_start(self, outcome: dict, seconds: float) -> float:
        """A worker's `seconds` (since its own start) as seconds since the start signal."""
        t0 = outcome.get("t0")
        return seconds if t0 is None or self.t_start is None else seconds + t0 - self.t_start


def limits(timeout: float | None) -> procs.Limits:
    """What a Hogwild! run's ``timeout`` means (the failure table of docs/command-line.md): its
    ``stall_timeout`` (a worker silent that long is stuck; a fresh one still starting gets
    ``procs.STARTUP_SECONDS`` more); no ``deadline``; the default ``grace``."""
    return procs.Limits(stall_timeout=timeout)


def train_source(model: nn.Module, source: Source, job: Job, *,
                 test: tuple[torch.Tensor, torch.Tensor] | None = None, timeout: float | None = None,
                 progress: bool = False, on_progress: Callable | None = None,
                 config: dict | None = None, t_setup: float | None = None) -> RunResult:
    """Run `job` on an already shared `model` and `source`; return the measured RunResult.

    The building block of :func:`train_hogwild` and :func:`costtrain.train.legacy.train_model`;
    inputs are assumed checked. A failed worker raises :class:`~costtrain.run.procs.WorkerError`
    whose ``.result`` is a RunResult with ``status='partial'`` built from the other workers.
    ``timeout``: seconds a worker may stay silent (no progress, no heartbeat) before it counts
    as stuck and every worker is stopped; None waits for ever.
    """
    t_setup = time.perf_counter() if t_setup is None else t_setup
    classes = {type(m) for m in model.modules()}
    per_epoch = len(source) if job.sharding == "full" else -(-len(source) // job.processes)
    bar = progress_bar(job.processes * job.epochs * per_epoch, progress, "hogwild")
    bar.set_description_str(f"hogwild: starting {job.processes} process(es)")
    # compiling workers each ran one warm-up step on the shared model: undo it on its buffers
    saved = snapshot_buffers(model) if job.levers.compile else []
    collisions = Collisions(model, job.collision_every)
    dev = torch.device(job.device)
    evaluator = Evaluator(*test, job.eval_every, dev) if test is not None and job.eval_every \
        else None
    job = job if evaluator else dataclasses.replace(job, eval_every=None)  # no test: no pauses
    args = [(job, model, source, collisions)] * job.processes
    error: procs.WorkerError | procs.Interrupted | None = None
    test_loss, test_acc, final_eval = float("nan"), float("nan"), 0.0
    try:
        with pool.lease(job.processes, classes) as workers:  # warm workers, or fresh ones
            clock = _Clock(job.processes, workers.start, workers.counter, bar, on_progress,
                           on_all_ready=lambda: restore_buffers(model, saved),
                           evaluate=_evaluate_with_every_core(model, evaluator))
            try:
                lim = limits(timeout)
                outcomes = dict(enumerate(workers.run(
                    worker, args, name="hogwild worker", stall_timeout=lim.stall_timeout,
                    deadline=lim.deadline, grace=lim.grace, on_message=clock, classes=classes)))
            except (procs.WorkerError, procs.Interrupted) as exc:  # keep what they measured
                error, outcomes = exc, dict(sorted(exc.results.items()))
        t_start = clock.t_start if clock.t_start is not None else time.perf_counter()
        t_eval = time.perf_counter()
        try:  # the run is trained: an interrupt from here on costs the evaluation only
            if test is not None:
                bar.set_description_str(f"hogwild: evaluating on {len(test[1]):,} test samples")
                with num_threads(threads_per_process(1)):  # the workers are done
                    test_loss, test_acc = evaluate(model, *test, device=dev)
        except KeyboardInterrupt as exc:
            error = error or procs.Interrupted.during(
                exc, "", phase="the final evaluation; the trained model was not evaluated")
        except (RuntimeError, MemoryError) as exc:  # out of memory even in small batches
            exhausted = ResourceError.describe(exc, "evaluating the trained model on the test "
                                                    "set (the final evaluation; training had "
                                                    "finished)")
            if exhausted is None:
                raise
            error = error or procs.OutOfMemory(exhausted)
        final_eval = time.perf_counter() - t_eval
    finally:
        bar.close()
    result = _result(outcomes, clock, job, config or {}, evaluator)
    result.extra["collisions"] = collision_summary(
        [o.get("collisions", {}) for o in outcomes.values()], job.processes,
        has_sparse_grads(model), job.collision_every)
    result.extra["startup"] = dict(workers.startup)
    result.setup_seconds = t_start - t_setup
    result.eval_seconds += final_eval
    result.test_loss, result.test_accuracy = test_loss, test_acc
    result.device = str(dev)
    close_eval_curve(result, None if test is None else len(test[1]))
    if error is not None:
        result.status, result.error = "partial", str(error).split("\n")[0]
        error.result = result
        raise error
    lr = (config or {}).get("lr")
    gone = [o for o in outcomes.values() if o.get("diverged")]
    if gone:
        return mark_diverged(result, lr, reason=next(
            (o["diverged_reason"] for o in gone if o.get("diverged_reason")), None))
    return judge(result, job.classes, lr) if test is not None else result


def _evaluate_with_every_core(model: nn.Module, evaluator: Evaluator | None
                              ) -> Callable[[int, float], Any] | None:
    """The parent's periodic evaluation of the shared `model`, run while every worker is
    parked, with every core's threads (the workers' threads are idle meanwhile)."""
    if evaluator is None:
        return None

    def run(samples: int, seconds: float) -> None:
        with num_threads(threads_per_process(1)):
            evaluator(model, samples, seconds)
    return run


def _result(outcomes: dict[int, dict], clock: _Clock, job: Job, config: dict,
            evaluator: Evaluator | None) -> RunResult:
    """The record of the workers' outcomes, timed by the parent's `clock`.

    Every curve is put on the training clock (the evaluation pauses, in which no worker
    trained, are taken out), so train seconds, samples/s and the steady rate follow the
    same rule as the baseline's; the eval curve was read on that clock.
    """
    idle = clock.pauses
    train_seconds = max(0.0, clock.training_wall(outcomes) - sum(b - a for a, b in idle))
    curves = {str(r): on_training_clock(_since_start(clock, o), idle) for r, o in outcomes.items()}
    merged = merge_curves(list(curves.values()))
    samples = sum(o["samples"] for o in outcomes.values())
    return RunResult(
        method="hogwild", config=dict(config, processes=job.processes,
                                      epochs_per_process=job.epochs, sharding=job.sharding,
                                      batch_size=job.batch_size, seed=job.seed,
                                      **job.levers.config()),
        threads=job.threads, train_seconds=train_seconds,
        compile_seconds=max((o.get("compile_seconds", 0.0) for o in outcomes.values()),
                            default=0.0),
        eval_seconds=sum(b - a for a, b in idle), samples=samples,
        samples_per_second=samples / train_seconds if train_seconds > 0 else 0.0,
        steady_samples_per_second=steady_rate(merged), loss_curve=merged,
        worker_curves=curves, eval_curve=(evaluator or Evaluator(None, None, None)).curve,
        extra=dict(worker_samples={str(r): o["samples"] for r, o in outcomes.items()},
                   worker_threads={str(r): o["threads"] for r, o in outcomes.items()},
                   optimizer=optimizer_label(job.optimizer)),
        hardware=hardware_info())


def _since_start(clock: _Clock, outcome: dict) -> dict:
    """A worker's loss curve with its seconds counted from the parent's start signal."""
    curve = dict(outcome["curve"])
    curve["seconds"] = [clock.since_start(outcome, t) for t in curve.get("seconds", [])]
    return curve
