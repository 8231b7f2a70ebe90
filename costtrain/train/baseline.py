"""Single-process training: the baseline every other method must beat."""
from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn as nn

from ..data.datasets import ClassicImageDataset, Dataset
from ..data.models import display_name, sgd_settings
from ..measure import steady_rate, timed
from ..result import RunResult
from ..run.guards import check_threads
from ..run.procs import Interrupted
from ..utils import (
    CosttrainError,
    hardware_info,
    num_cores,
    num_threads,
    resolve_device,
    seed_everything,
)
from .engine import (
    PIPELINES,
    Evaluator,
    LossLog,
    OptimizerFactory,
    batches,
    check_base_batch,
    check_hparams,
    close_eval_curve,
    evaluate,
    linear_scaled_lr,
    loss_fn,
    mark_diverged,
    optimizer_label,
    prepare,
    progress_bar,
    sgd,
)
from .levers import Fast, check_levers, grad_scaler, make_levers, to_memory_format


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
        eval_every: also evaluate on the test set every this many samples (time kept apart).
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
    check_hparams(epochs=epochs, batch_size=batch_size, lr=1.0 if lr is None else lr,
                  eval_every=eval_every)
    if pipeline not in PIPELINES:
        raise CosttrainError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}.")
    check_base_batch(base_batch, optimizer)
    levers = make_levers(compile, amp, channels_last)
    dev = resolve_device(device)
    check_levers(levers, dev, net if isinstance(net, nn.Module) else None, force_amp=force_amp)
    threads = num_cores() if threads is None else threads
    if threads < 1:
        raise CosttrainError(f"threads must be >= 1, got {threads}.")
    check_threads(1, threads)
    with num_threads(threads):
        model, ds = prepare(net, data, seed=seed, subset=subset, data_root=data_root)
        check_levers(levers, dev, model, force_amp=force_amp)
        to_memory_format(model.to(dev), levers).train()
        lr, momentum = sgd_settings(model, lr, momentum)
        if base_batch:
            lr = linear_scaled_lr(lr, batch_size, base_batch)
        factory = optimizer or sgd(lr, momentum)
        opt = factory(list(model.parameters()))
        fast, scaler = Fast(model, levers, dev, batch_size), grad_scaler(levers, dev)
        compile_seconds = fast.warm_up(ds.train_x[:batch_size], ds.train_y[:batch_size])
        gen = seed_everything(seed)  # after the warm-up: its dropout draws change nothing
        test_x, test_y = ds.test_x.to(dev), ds.test_y.to(dev)
        log, evaluator = LossLog(log_every), Evaluator(test_x, test_y, eval_every, dev)
        total = epochs * len(ds.train_y)
        bar = progress_bar(total, progress, "baseline")
        setup = time.perf_counter() - t_setup

        t0 = time.perf_counter()
        reported, stopped = 0, None
        try:
            for epoch in range(1, epochs + 1):
                it = (batches(ds.train_x, ds.train_y, batch_size, gen) if pipeline == "memory"
                      else _classic_loader(ds, batch_size, gen))
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
            stopped = exc
        if dev.type == "cuda":
            torch.cuda.synchronize()
        train_seconds = time.perf_counter() - t0 - evaluator.seconds
        log.flush(train_seconds)

        when = f"after {log.samples:,} of {total:,} samples"
        t_eval, test_loss, test_acc = time.perf_counter(), float("nan"), float("nan")
        try:  # the run is trained: an interrupt from here on costs the evaluation only
            bar.set_description_str(f"baseline: evaluating on {len(test_y):,} test samples")
            test_loss, test_acc = evaluate(model, test_x, test_y, device=dev)
        except KeyboardInterrupt as exc:  # trained but not evaluated: the run is kept
            if stopped is None:
                stopped, when = exc, (f"during the final evaluation, after training "
                                      f"{log.samples:,} of {total:,} samples")
        final_eval = time.perf_counter() - t_eval
        bar.close()
    result = RunResult(
        method="baseline",
        config=dict(dataset=ds.name, model=display_name(net, model),
                    epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, seed=seed,
                    subset=subset, train_samples=len(ds.train_y), pipeline=pipeline,
                    processes=1, optimizer=optimizer_label(factory), base_batch=base_batch,
                    **levers.config()),
        device=str(dev), threads=threads, setup_seconds=setup, train_seconds=train_seconds,
        compile_seconds=compile_seconds,
        eval_seconds=final_eval + evaluator.seconds, samples=log.samples,
        samples_per_second=log.samples / train_seconds if train_seconds > 0 else 0.0,
        steady_samples_per_second=steady_rate(log.curve), test_loss=test_loss,
        test_accuracy=test_acc, loss_curve=log.curve, eval_curve=evaluator.curve,
        hardware=hardware_info())
    close_eval_curve(result)
    if stopped is not None:
        result.status = "partial"
        result.error = f"{getattr(stopped, 'what', 'interrupted')} {when}"
        error = Interrupted(f"baseline run {result.error}; the result so far is in .result "
                            "(status 'partial').", stopped)
        error.result = result
        raise error
    return mark_diverged(result, lr) if log.diverged else result

