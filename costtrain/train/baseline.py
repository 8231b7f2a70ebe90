"""Single-process training: the baseline every other method must beat."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn

from ..data.datasets import ClassicImageDataset, Dataset
from ..data.models import display_name, sgd_settings
from ..errors import ResourceError
from ..measure import steady_rate, timed
from ..result import RunResult
from ..run.guards import check_threads
from ..run.procs import Interrupted, OutOfMemory
from ..utils import (CosttrainError, hardware_info, num_threads, resolve_device, seed_everything,
                     threads_per_process)
from .engine import (PIPELINES, Evaluator, LossLog, OptimizerFactory, batches, check_base_batch,
                     check_hparams, close_eval_curve, evaluate, judge, linear_scaled_lr,
                     loss_fn, mark_diverged, optimizer_label, prepare, progress_bar, sgd)
from .levers import Fast, Levers, check_levers, grad_scaler, make_levers, to_memory_format


def _classic_loader(ds: Dataset, batch_size: int, gen: torch.Generator):
    loader = torch.utils.data.DataLoader(ClassicImageDataset(ds), batch_size=batch_size,
                                         shuffle=True, generator=gen)
    return iter(loader)


@timed
def train_baseline(net: nn.Module | str = "simple", data: Dataset | str = "fashion-mnist", *,
                   epochs: int = 1, batch_size: int = 64, lr: float | None = None,
                   momentum: float | None = None, optimizer: OptimizerFactory | None = None,
                   threads: int | None = None,
                   device: str = "cpu", seed: int = 42, subset: int | None = None,
                   data_root: str | None = None, eval_every: int | None = None,
                   log_every: int = 10, pipeline: str = "memory",
                   compile: bool | str = False, amp: str | None = None,
                   channels_last: bool = False, force_amp: bool = False,
                   base_batch: int | None = None,
                   progress: bool = False, on_progress: Callable | None = None) -> RunResult:
    """Train `net` on `data` in this process and measure it.

    Args:
        net: a model name (``simple``, ``mlp``, ``cnn``) or your own ``nn.Module`` (trained in place).
        data: a dataset name or a :class:`~costtrain.data.datasets.Dataset` already loaded.
        epochs: passes over the training set.
        lr, momentum: of the default SGD; None = the model's recommendation (0.01 and 0.5 for
            the dense nets, momentum 0 for sparse models: see :func:`~costtrain.data.models.sgd_settings`).
        optimizer: factory ``params -> Optimizer``; default SGD(lr, momentum).
        threads: intra-op threads (default: every core); restored afterwards.
        device: ``cpu``, ``cuda`` or ``mps``.
        eval_every: also evaluate every this many samples, on the fixed slice of the test set
            (:func:`~costtrain.train.engine.eval_slice`; time kept apart).
        log_every: batches per point of the loss curve.
        pipeline: ``memory`` (in-memory tensors) or ``classic`` (DataLoader, per-sample transforms).
        compile: ``torch.compile`` the net: True (mode ``default``) or a mode of
            :data:`~costtrain.train.levers.COMPILE_MODES`. Its first step is taken during set-up and
            timed: ``compile_seconds``, part of ``setup_seconds``.
        amp: autocast to ``bf16`` (CPU with native bf16, or CUDA) or ``fp16`` (CUDA).
        channels_last: conv nets only: NHWC memory layout.
        force_amp: run ``amp`` even where the hardware has no native support (slow).
        base_batch: `lr` is meant for batches of this size; the run uses
            ``lr * batch_size / base_batch`` (the linear scaling rule). Default SGD only.
        on_progress: called as ``on_progress(0, new_samples, epoch, samples, loss)`` every
            ``log_every`` batches (the signature Hogwild!'s workers report with).
    Raises:
        Interrupted: Ctrl-C during training (a KeyboardInterrupt); ``.result`` holds the run so
            far (status ``partial``, evaluated on the test set).
    """
    t_setup = time.perf_counter()
    threads, levers, dev = _check(net, epochs=epochs, batch_size=batch_size, lr=lr,
                                  momentum=momentum, optimizer=optimizer, threads=threads, device=device,
                                  eval_every=eval_every, pipeline=pipeline, compile=compile,
                                  amp=amp, channels_last=channels_last, force_amp=force_amp,
                                  base_batch=base_batch)
    with num_threads(threads):
        try:
            job = _set_up(net, data, levers, dev, batch_size=batch_size, lr=lr,
                          momentum=momentum, optimizer=optimizer, seed=seed, subset=subset,
                          data_root=data_root, base_batch=base_batch, force_amp=force_amp)
        except (RuntimeError, MemoryError) as exc:  # before the first step: nothing to keep
            error = ResourceError.describe(exc, "setting up the model (its first steps)")
            if error is None:
                raise
            raise error from None
        job.setup_seconds = time.perf_counter() - t_setup
        bar = progress_bar(epochs * len(job.ds.train_y), progress, "baseline")
        try:
            log, evaluator, stopped = train_loop(job, epochs=epochs, batch_size=batch_size,
                                                 pipeline=pipeline, log_every=log_every,
                                                 eval_every=eval_every, bar=bar,
                                                 on_progress=on_progress)
            test, stopped = _final_evaluation(job, log, epochs, stopped, bar)
        finally:
            bar.close()
    config = dict(dataset=job.ds.name, model=display_name(net, job.model), epochs=epochs,
                  batch_size=batch_size, lr=job.lr, momentum=job.momentum, seed=seed,
                  subset=subset, train_samples=len(job.ds.train_y), pipeline=pipeline,
                  processes=1, optimizer=optimizer_label(job.factory), base_batch=base_batch,
                  **levers.config())
    result = _record(job, log, evaluator, test, config, threads)
    if stopped is not None and isinstance(stopped[0], OutOfMemory):
        result.status, result.error = "partial", str(stopped[0])
        oom = stopped[0]
        oom.result = result
        raise oom
    if stopped is not None:
        result.status = "partial"
        result.error = f"{getattr(stopped[0], 'what', 'interrupted')} {stopped[1]}"
        error = Interrupted(f"baseline run {result.error}; the result so far is in .result "
                            "(status 'partial').", stopped[0])
        error.result = result
        raise error
    if log.diverged:
        return mark_diverged(result, job.lr, reason=log.reason)
    return judge(result, job.ds.num_classes, job.lr)


def _check(net: nn.Module | str, *, epochs: int, batch_size: int, lr: float | None,
           momentum: float | None, optimizer: OptimizerFactory | None, threads: int | None, device: str,
           eval_every: int | None, pipeline: str, compile: bool | str, amp: str | None,
           channels_last: bool, force_amp: bool,
           base_batch: int | None) -> tuple[int, Levers, torch.device]:
    """Every check made before the data is loaded: returns (threads, levers, device)."""
    check_hparams(epochs=epochs, batch_size=batch_size, lr=1.0 if lr is None else lr,
                  eval_every=eval_every, momentum=momentum)
    if pipeline not in PIPELINES:
        raise CosttrainError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}.")
    check_base_batch(base_batch, optimizer)
    levers = make_levers(compile, amp, channels_last)
    dev = resolve_device(device)
    check_levers(levers, dev, net if isinstance(net, nn.Module) else None, force_amp=force_amp)
    threads = threads_per_process(1, threads=threads)  # one process: every core by default
    check_threads(1, threads)
    return threads, levers, dev


@dataclass
class _Job:
    """What the loop trains: the model and its data, optimizer and levers, set up."""

    model: nn.Module
    ds: Dataset
    dev: torch.device
    lr: float
    momentum: float
    factory: OptimizerFactory
    opt: torch.optim.Optimizer
    fast: Fast
    scaler: Any
    compile_seconds: float
    gen: torch.Generator
    setup_seconds: float = 0.0
    train_seconds: float = 0.0


def _set_up(net: nn.Module | str, data: Dataset | str, levers: Levers, dev: torch.device, *,
            batch_size: int, lr: float | None, momentum: float | None,
            optimizer: OptimizerFactory | None, seed: int, subset: int | None,
            data_root: str | None, base_batch: int | None, force_amp: bool) -> _Job:
    """Load the data, build the model, the optimizer and the levers (a compiled net takes its
    first step here: ``compile_seconds``)."""
    model, ds = prepare(net, data, seed=seed, subset=subset, data_root=data_root)
    check_levers(levers, dev, model, force_amp=force_amp)
    to_memory_format(model.to(dev), levers).train()
    lr, momentum = sgd_settings(model, lr, momentum)
    if base_batch:
        lr = linear_scaled_lr(lr, batch_size, base_batch)
    factory = optimizer or sgd(lr, momentum)
    opt = factory(list(model.parameters()))
    fast = Fast(model, levers, dev, batch_size)
    compile_seconds = fast.warm_up(ds.train_x[:batch_size], ds.train_y[:batch_size])
    gen = seed_everything(seed)  # after the warm-up: its dropout draws change nothing
    return _Job(model, ds, dev, lr, momentum, factory, opt, fast, grad_scaler(levers, dev),
                compile_seconds, gen)


def train_loop(job: _Job, *, epochs: int, batch_size: int, pipeline: str, log_every: int,
               eval_every: int | None, bar: Any, on_progress: Callable | None
               ) -> tuple[LossLog, Evaluator, tuple[BaseException, str] | None]:
    """The training loop: `epochs` passes over the data, one optimizer step per mini-batch.

    Returns the loss log, the periodic evaluator and, when Ctrl-C stopped it, the interrupt
    with where it came (the samples trained so far are kept).
    """
    model, ds, dev, opt, fast, scaler = job.model, job.ds, job.dev, job.opt, job.fast, job.scaler
    log = LossLog(log_every, classes=ds.num_classes)
    evaluator = Evaluator(ds.test_x.to(dev), ds.test_y.to(dev), eval_every, dev)
    total = epochs * len(ds.train_y)
    t0 = time.perf_counter()
    reported, stopped = 0, None
    try:
        for epoch in range(1, epochs + 1):
            it = (batches(ds.train_x, ds.train_y, batch_size, job.gen) if pipeline == "memory"
                  else _classic_loader(ds, batch_size, job.gen))
            for xb, yb in it:
                xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(fast(xb), yb)  # the net with the levers on (compiled, autocast)
                scaler.scale(loss).backward()  # scaled for fp16 only, else as it is
                scaler.step(opt)
                scaler.update()
                elapsed = time.perf_counter() - t0 - evaluator.seconds
                log.add(loss.item(), len(yb), elapsed)
                bar.update(len(yb))
                if log.diverged:
                    break
                if on_progress and log.samples - reported >= log_every * batch_size:
                    on_progress(0, log.samples - reported, epoch, log.samples, loss.item())
                    reported = log.samples
                if evaluator.due(log.samples):
                    evaluator(model, log.samples, elapsed)
            if log.diverged:
                break
    except KeyboardInterrupt as exc:  # keep what was trained: the caller gets it as .result
        stopped = (exc, f"after {log.samples:,} of {total:,} samples")
    except (RuntimeError, MemoryError) as exc:  # out of memory: keep what was trained
        error = ResourceError.describe(exc, f"training (after {log.samples:,} of {total:,} "
                                            "samples)")
        if error is None:
            raise
        stopped = (OutOfMemory(error), f"after {log.samples:,} of {total:,} samples")
    if dev.type == "cuda":
        torch.cuda.synchronize()
    job.train_seconds = time.perf_counter() - t0 - evaluator.seconds
    log.flush(job.train_seconds)
    return log, evaluator, stopped


def _final_evaluation(job: _Job, log: LossLog, epochs: int,
                      stopped: tuple[BaseException, str] | None, bar: Any
                      ) -> tuple[tuple[float, float, float], tuple[BaseException, str] | None]:
    """((test loss, test accuracy, seconds), stopped): the trained model on the whole test set.
    An interrupt here costs the evaluation only: the trained run is kept."""
    t_eval, test_loss, test_acc = time.perf_counter(), float("nan"), float("nan")
    test_x, test_y = job.ds.test_x.to(job.dev), job.ds.test_y.to(job.dev)
    try:
        bar.set_description_str(f"baseline: evaluating on {len(test_y):,} test samples")
        test_loss, test_acc = evaluate(job.model, test_x, test_y, device=job.dev)
    except KeyboardInterrupt as exc:
        if stopped is None:
            total = epochs * len(job.ds.train_y)
            stopped = (exc, f"during the final evaluation, after training {log.samples:,} of "
                            f"{total:,} samples")
    except (RuntimeError, MemoryError) as exc:  # out of memory even in small batches
        error = ResourceError.describe(exc, "evaluating the trained model on the test set "
                                            "(the final evaluation; training had finished)")
        if error is None:
            raise
        stopped = stopped or (OutOfMemory(error), f"in the final evaluation, after training "
                                                  f"{log.samples:,} samples")
    return (test_loss, test_acc, time.perf_counter() - t_eval), stopped


def _record(job: _Job, log: LossLog, evaluator: Evaluator, test: tuple[float, float, float],
            config: dict, threads: int) -> RunResult:
    """The run's RunResult (figures as :mod:`costtrain.measure` defines them)."""
    test_loss, test_acc, final_eval = test
    train_seconds = job.train_seconds
    result = RunResult(
        method="baseline", config=config, device=str(job.dev), threads=threads,
        setup_seconds=job.setup_seconds, train_seconds=train_seconds,
        compile_seconds=job.compile_seconds, eval_seconds=final_eval + evaluator.seconds,
        samples=log.samples,
        samples_per_second=log.samples / train_seconds if train_seconds > 0 else 0.0,
        steady_samples_per_second=steady_rate(log.curve), test_loss=test_loss,
        test_accuracy=test_acc, loss_curve=log.curve, eval_curve=evaluator.curve,
        hardware=hardware_info())
    close_eval_curve(result, len(job.ds.test_y))
    return result

