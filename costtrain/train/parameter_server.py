"""A parameter server on ``torch.distributed`` (gloo): rank 0 holds the parameters and the
optimizer, ranks 1..K compute gradients on their own shard of the data.

* :func:`train_parameter_server` launches the server and K workers on this machine
  (127.0.0.1, a free port) and returns a :class:`~costtrain.result.RunResult`.
* ``python -m costtrain.parameter_server ...`` is one rank of a run started by ``torchrun``,
  on one machine or several (rank 0 = server; it prints the summary and writes ``--out``).

The loops themselves are in :mod:`costtrain.train.ps_ranks`. The transport is unauthenticated:
use it on loopback or a trusted network only.
"""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from ..data.datasets import Dataset
from ..data.models import build_model, display_name, sgd_settings
from ..measure import merge_curves, timed
from ..result import RunResult
from ..utils import CosttrainError, threads_per_process
from .comm import comm_record
from .engine import progress_bar
from .launch import (RankError, check_settings, launch, process_start, run_result, start,
                     torchrun_env, torchrun_rank, torchrun_threads)
from .ps_ranks import MODES, PSConfig, limits, run_rank, worker_batches

__all__ = ["train_parameter_server", "run_under_torchrun", "ParameterServerError",
           "worker_batches", "MODES"]


class ParameterServerError(RankError):
    """A run failed (a rank died, a connection broke, a wait timed out).

    ``.rank`` is the lost rank (-1 if unknown) and ``.result`` the
    :class:`~costtrain.result.RunResult` (status ``partial``) with the losses recorded so far,
    as on Hogwild!'s :class:`~costtrain.run.procs.WorkerError`.
    """


def check_config(mode: str, workers: int, *, max_staleness: int | None = None,
                 **settings: Any) -> None:
    """Raise a clear :class:`CosttrainError` for settings no run can use (`settings`: those
    of :func:`costtrain.train.launch.check_settings`)."""
    if mode not in MODES:
        raise CosttrainError(f"mode must be one of {MODES}, got {mode!r}.")
    check_settings(workers, **settings)
    if max_staleness is not None and max_staleness < 0:
        raise CosttrainError(f"max_staleness must be >= 0 or None, got {max_staleness}.")


@timed
def train_parameter_server(net: nn.Module | str = "simple", data: Dataset | str = "fashion-mnist",
                           *, mode: str = "sync", workers: int = 2, epochs: int = 1,
                           batch_size: int = 64, lr: float | None = None,
                           momentum: float | None = None, threads: int | None = None,
                           device: str = "cpu", seed: int = 42,
                           subset: int | None = None, data_root: str | None = None,
                           eval_every: int | None = None, log_every: int = 10,
                           progress: bool = False, timeout: float = 60.0,
                           addr: str = "127.0.0.1", port: int | None = None,
                           max_staleness: int | None = None, scale_lr: bool = True,
                           on_progress: Callable | None = None) -> RunResult:
    """Train with a parameter server and K worker processes on this machine.

    Worker ``r`` (1..K) trains on shard ``shard_indices(n, r - 1, K, seed)`` for ``epochs``
    passes with ``batch_size`` samples per step; the server (rank 0) holds the parameters and
    an SGD(lr, momentum) optimizer and evaluates on the test set. Total work: ``epochs`` passes
    over the whole training set, shared by the workers. ``lr``/``momentum`` None = the model's
    recommendation (0.01 and 0.5; a sparse model's own lr and momentum 0). Sparse gradients
    travel dense: every step sends and receives the whole table.

    Args:
        net: a model name (``simple``, ``mlp``, ``cnn``) or your own ``nn.Module`` (its class must
            live in an importable module); it receives the trained parameters.
        mode: ``sync`` (average every worker's gradient each step: large-batch SGD) or
            ``async`` (each worker pushes and pulls on its own; staleness is recorded).
        workers: worker processes besides the server.
        batch_size: samples per step and worker (sync = SGD with batch ``workers*batch_size``).
        threads: intra-op threads per worker; default ``cores // (workers + 1)``, at least 1,
            so that the workers and the server (one thread) never oversubscribe the cores.
        device: only ``cpu`` (gloo moves CPU tensors).
        eval_every: the server also evaluates every this many samples, on the fixed slice of
            the test set (:func:`~costtrain.train.engine.eval_slice`; time kept apart).
        timeout: seconds any wait on a peer may take (the group's rendezvous, gloo's sends
            and receives); a rank silent that long is stuck, and the run ends with an error
            naming it. Its one definition, with the grace it implies, is
            :func:`costtrain.train.ps_ranks.limits`.
        addr, port: where the rendezvous store listens (default loopback and a free port;
            another address exposes the unauthenticated transport to that network).
        max_staleness: async only: drop gradients more than this many updates old.
        scale_lr: sync only (default on): the server uses ``lr * workers`` (the linear
            scaling rule, Goyal et al. 2017: a K-times larger batch takes a K-times larger
            step); off = exactly SGD with ``lr``.
        on_progress: called as ``on_progress(0, new_samples, epoch, samples, loss)`` each time
            the server applies an update (``epoch`` counts passes over the training set).
    Returns:
        A RunResult (method ``ps-sync``/``ps-async``): ``loss_curve`` is the server's view (the
        loss of each step's batch, by samples applied), ``worker_curves`` each worker's own;
        ``extra`` has steps, steps_per_second, compute/comm seconds per worker and comm_share
        (communication = sending, receiving and waiting for the turn and the other workers;
        the server's evaluations a worker waited through are ``eval_wait_seconds``, apart),
        the server's update/reply/wait seconds and, for async, the staleness histogram.
    Raises:
        CosttrainError: bad settings, a busy ``port`` or a foreign ``addr``, before any process.
        ParameterServerError: a rank died or a connection broke; ``.result`` holds the
            result so far (status ``partial``) and ``.rank`` the lost rank.
    """
    check_config(mode, workers, epochs=epochs, batch_size=batch_size,
                 lr=1.0 if lr is None else lr, momentum=momentum or 0.0,
                 eval_every=eval_every, timeout=timeout, threads=threads,
                 max_staleness=max_staleness)
    model, ds, t_start = start("parameter server", net, data, workers=workers,
                               processes=workers + 1, threads=threads, device=device,
                               addr=addr, seed=seed, subset=subset, data_root=data_root)
    # the server steps on dense (averaged) gradients: momentum is allowed for sparse models
    lr, momentum = sgd_settings(model, lr, momentum, allow_sparse_momentum=True)
    cfg = PSConfig(mode=mode, workers=workers, epochs=epochs, batch_size=batch_size,
                   lr=server_lr(lr, mode, workers, scale_lr), momentum=momentum, seed=seed,
                   log_every=log_every, eval_every=eval_every,
                   timeout=timeout, threads=threads_per_process(workers + 1, threads=threads),
                   max_staleness=max_staleness, classes=ds.num_classes)
    config = _config(cfg, ds, display_name(net, model), subset,
                     lr=lr, scale_lr=scale_lr, addr=addr)
    bar = progress_bar(epochs * len(ds.train_y), progress, f"ps-{mode}")
    bar.set_description_str(f"ps-{mode}: starting server and {workers} worker(s)")
    applied, dropped = [0], [0]

    def on_message(rank: int, kind: str, payload: Any) -> None:
        if kind == "evaluating":
            bar.set_description_str(f"ps-{mode}: evaluating on {payload:,} test samples")
        if kind == "dropped":  # too stale to apply (max_staleness): not trained, not counted
            dropped[0] += payload
            bar.update(payload)
            bar.set_description_str(f"ps-{mode} ({dropped[0]:,} samples dropped as stale)")
        if kind == "progress":  # samples the server has applied, and their mean loss
            if not applied[0]:
                bar.set_description_str(f"ps-{mode}")
            n, loss = payload
            applied[0] += n
            bar.update(n)
            if on_progress:
                on_progress(0, n, 1 + (applied[0] - 1) // len(ds.train_y), applied[0], loss)

    def result(outs: dict[int, Any], error: str | None, lost: list[int] | None) -> RunResult:
        server = outs.get(0) if isinstance(outs.get(0), dict) else None
        return assemble(cfg, config, server, outs, t_start,
                        error=error or (server or {}).get("error"))
    return launch("parameter server", run_rank, cfg, ds, model, net, processes=workers + 1,
                  addr=addr, port=port, timeout=timeout, limits=limits(timeout), bar=bar,
                  on_message=on_message, assemble=result, error=ParameterServerError,
                  rank0="the server")


def server_lr(lr: float, mode: str, workers: int, scale_lr: bool) -> float:
    """The server's learning rate: ``lr``, times ``workers`` for sync with ``scale_lr``."""
    return lr * workers if scale_lr and mode == "sync" else lr


def _config(cfg: PSConfig, ds: Dataset, model: str, subset: int | None, **more) -> dict:
    return dict(dataset=ds.name, model=model, mode=cfg.mode, workers=cfg.workers,
                processes=cfg.workers + 1, epochs=cfg.epochs, batch_size=cfg.batch_size,
                server_lr=cfg.lr, momentum=cfg.momentum, seed=cfg.seed, subset=subset,
                train_samples=len(ds.train_y), max_staleness=cfg.max_staleness, **more)


def assemble(cfg: PSConfig, config: dict, server: dict | None, outs: dict[int, Any],
             t_start: float, error: str | None = None) -> RunResult:
    """The RunResult of a run from the server's record (and the workers' reports)."""
    server = server or {}
    reports = {int(r): rep for r, rep in server.get("reports", {}).items()}
    for r, out in outs.items():  # what workers returned themselves (local launch)
        if int(r) > 0 and isinstance(out, dict) and int(r) not in reports:
            reports[int(r)] = out
    curves = {str(r): reports[r]["curve"] for r in sorted(reports)}
    loss_curve = server.get("loss_curve") or merge_curves(list(curves.values()))
    train = server.get("train_seconds", max((rep["train_seconds"] for rep in reports.values()),
                                            default=0.0))
    samples = server.get("samples", sum(rep["samples"] for rep in reports.values()))
    compute = sum(rep["compute_seconds"] for rep in reports.values())
    comm = sum(rep["comm_seconds"] for rep in reports.values())  # evaluation waits left out
    waited = sum(rep.get("eval_wait_seconds", 0.0) for rep in reports.values())
    extra: dict[str, Any] = dict(
        steps=server.get("steps", 0),
        steps_per_second=server.get("steps", 0) / train if train > 0 else 0.0,
        compute_seconds=compute / max(1, len(reports)), comm_seconds=comm / max(1, len(reports)),
        comm_share=comm / (comm + compute) if comm + compute > 0 else 0.0,
        eval_wait_seconds=waited / max(1, len(reports)),
        server=dict(update_seconds=server.get("update_seconds", 0.0),
                    reply_seconds=server.get("reply_seconds", 0.0),
                    wait_seconds=server.get("wait_seconds", 0.0)),
        per_worker={str(r): dict(samples=rep["samples"], compute_seconds=rep["compute_seconds"],
                                 comm_seconds=rep["comm_seconds"],
                                 eval_wait_seconds=rep.get("eval_wait_seconds", 0.0),
                                 error=rep.get("error"))
                    for r, rep in sorted(reports.items())},
        lost=server.get("lost", {}))
    extra["comm"] = _comm(server, reports, samples)
    if cfg.mode == "async":
        hist = server.get("staleness", {})
        n = sum(hist.values())
        extra["staleness"] = dict(
            histogram=hist, mean=sum(int(k) * v for k, v in hist.items()) / n if n else 0.0,
            max=max((int(k) for k in hist), default=0), dropped=server.get("dropped", 0),
            dropped_samples=server.get("dropped_samples", 0))
    return run_result(f"ps-{cfg.mode}", cfg, config, server, t_start=t_start,
                      train_start=server.get("train_start"), train=train, samples=samples,
                      loss_curve=loss_curve, curves=curves, extra=extra, error=error,
                      diverged=bool(server.get("diverged")),
                      diverged_reason=server.get("diverged_reason"))


COUNTED = ("tensor payloads of the point-to-point messages (gloo send/recv), counted by the "
           "ranks: each step a worker sends its gradient (with a 3-number header and any float "
           "buffers) and receives the parameters (with a 3-number header), one round trip; the "
           "server the reverse. The "
           "initial parameters are counted, the final reports and TCP/gloo headers are not.")


def _comm(server: dict, reports: dict[int, dict], samples: int) -> dict:
    """``extra['comm']``: the server's and each worker's counters (see :mod:`costtrain.train.comm`)."""
    per_rank = {r: rep["comm"] for r, rep in reports.items() if "comm" in rep}
    if "comm" in server:
        per_rank[0] = server["comm"]
    payload = max((rep.get("payload_bytes", 0) for rep in reports.values()), default=0)
    steps = max((rep.get("steps", 0) for rep in reports.values()), default=0)
    return comm_record(per_rank, samples=samples, payload_bytes=payload, worker_steps=steps,
                       counted=COUNTED, workers=sorted(reports))


# --- torchrun: one process of a run on one machine or several ------------------------------

def run_under_torchrun(net: nn.Module | str, ds: Dataset, *, mode: str = "sync",
                       epochs: int = 1, batch_size: int = 64, lr: float | None = None,
                       momentum: float | None = None, threads: int | None = None, seed: int = 42,
                       subset: int | None = None, eval_every: int | None = None,
                       log_every: int = 10, timeout: float = 60.0,
                       max_staleness: int | None = None,
                       scale_lr: bool = True) -> RunResult | None:
    """This process's part of a run whose ranks come from the environment (``env://``).

    Rank 0 serves and returns the RunResult; workers return None. Every rank must load the
    same data and build the same net (rank 0's initial parameters are sent to the workers).
    """
    rank, world, master = torchrun_env()
    if world < 2:
        raise CosttrainError(f"a parameter server needs WORLD_SIZE >= 2 (a server and at least "
                             f"one worker), got {world}.")
    model = build_model(net, ds.input_shape, ds.num_classes) if isinstance(net, str) else net
    lr, momentum = sgd_settings(model, lr, momentum, allow_sparse_momentum=True)
    check_config(mode, world - 1, epochs=epochs, batch_size=batch_size, lr=lr,
                 momentum=momentum, eval_every=eval_every, timeout=timeout, threads=threads,
                 max_staleness=max_staleness)
    cfg = PSConfig(mode=mode, workers=world - 1, epochs=epochs, batch_size=batch_size,
                   lr=server_lr(lr, mode, world - 1, scale_lr), momentum=momentum, seed=seed,
                   log_every=log_every, eval_every=eval_every, timeout=timeout,
                   threads=torchrun_threads(threads), max_staleness=max_staleness,
                   classes=ds.num_classes)
    out = torchrun_rank(run_rank, rank, cfg, ds, model)
    if out is None:
        return None
    config = _config(cfg, ds, display_name(net, model), subset,
                     lr=lr, scale_lr=scale_lr, master=master)
    return assemble(cfg, config, out, {}, process_start(), error=out["error"])

