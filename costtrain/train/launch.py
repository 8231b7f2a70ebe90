"""Starting the ranks of a distributed run (parameter server, local SGD): what a method states
is its own config, rank loop and result; the rest is said here once.

* :func:`check_settings` and :func:`start` hold every check made before a process starts
  (settings, device, processes, threads, memory, an exposed ``--addr``), then load the data;
* :func:`launch` listens (:func:`costtrain.run.group.listen`), runs the ranks (in the warm
  pool's workers: :func:`run_ranks`), keeps the partial result of a failed or interrupted
  run and turns a lost rank into the method's :class:`RankError`;
* :func:`torchrun_env`, :func:`torchrun_threads` and :func:`torchrun_rank` are the rank's side
  of a torchrun launch (the entry points are :mod:`costtrain.torchrun`'s).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import psutil
import torch
import torch.nn as nn

from ..errors import CosttrainError
from ..measure import steady_rate
from ..result import RunResult, new_curve
from ..run import pool, procs, shared
from ..run.group import listen
from ..run.guards import (DIVERGED, check_processes, check_shareable, check_shared_memory,
                          check_reachable, check_threads, judge, mark_diverged,
                          warn_if_exposed)
from ..utils import hardware_info, positive, resolve_device, threads_per_process, whole
from .engine import check_hparams, close_eval_curve, prepare


class RankError(procs.WorkerError):
    """A distributed run failed; ``.result`` is the partial RunResult (status ``partial``)."""

    def __init__(self, message: str, rank: int, result: Any,
                 details: str = "", results: dict[int, Any] | None = None) -> None:
        super().__init__(message, rank, details, results)
        self.result = result


# --- the launcher on this machine ------------------------------------------------------------

def check_settings(workers: int, *, epochs: int = 1, batch_size: int = 64, lr: float = 0.01,
                   momentum: float = 0.0, eval_every: int | None = None, timeout: float = 60.0,
                   threads: int | None = None, **counts: int) -> None:
    """Raise a clear :class:`CosttrainError` for settings no distributed run can use.

    `counts` are the method's own whole numbers that must be >= 1 (e.g. ``average_every``).
    """
    for name, v in (("workers", workers), *counts.items()):
        whole(v, name)
    check_hparams(epochs=epochs, batch_size=batch_size, lr=lr, eval_every=eval_every,
                  momentum=momentum)
    positive(timeout, "timeout", "seconds")
    if threads is not None:
        whole(threads, "threads")


def start(what: str, net: nn.Module | str, data: Any, *, workers: int, processes: int,
          threads: int | None, device: str, addr: str, seed: int, subset: int | None,
          data_root: str | None) -> tuple[nn.Module, Any, float]:
    """The checks every distributed run makes in the parent before any process starts, then
    the model and the data: returns ``(model, dataset, t_start)``.

    `workers` processes train; the thread check counts every process (the server too),
    `processes` are started in all (a parameter server's server is one more).
    """
    procs.check_main_guard()  # a rank re-running an unguarded script stops here
    if resolve_device(device).type != "cpu":
        raise CosttrainError(f"{what} runs on CPU processes (gloo); device {device!r} is not "
                             "supported here. Use device='cpu'.")
    if isinstance(net, nn.Module):
        check_shareable(net, "net")  # spawned ranks must be able to unpickle it
    check_processes(processes, f"{what} processes")  # cores and memory
    check_threads(processes, threads_per_process(processes, threads=threads),
                  also="the server" if processes > workers else "", stacklevel=4)
    warn_if_exposed(addr)
    check_reachable(addr)  # no loopback (--network none): one sentence now, not a traceback
    t_start = time.time()
    pool.start_server()  # its imports overlap the data loading (no wait; warm: nothing to do)
    model, ds = prepare(net, data, seed=seed, subset=subset, data_root=data_root)
    if len(ds.train_y) < workers:
        raise CosttrainError(f"{workers} workers need at least {workers} training samples, "
                             f"got {len(ds.train_y)}.")
    return model, ds, t_start


Assemble = Callable[[dict[int, Any], "str | None", "list[int] | None"], Any]


def launch(what: str, run_rank: Callable[..., dict], cfg: Any, ds: Any, model: nn.Module,
           net: nn.Module | str, *, processes: int, addr: str, port: int | None,
           timeout: float, limits: procs.Limits, bar: Any,
           on_message: Callable[[int, str, Any], None], assemble: Assemble,
           error: type[RankError], rank0: str = "worker 0") -> Any:
    """Run ``run_rank(rank, cfg, ds, model, addr, port)`` in `processes` spawned ranks of a
    group whose store listens on addr:port (its own waits: `timeout`), supervised with the
    method's `limits`; return ``assemble(outs, None, None)``.

    ``assemble(results_by_rank, error, lost_ranks)`` builds the RunResult, also of a failed
    run (status ``partial``): an interrupt re-raises :class:`procs.Interrupted` with it in
    ``.result``; a lost rank, or a run whose result is not ``ok``, raises `error` with it in
    ``.result`` and the lost rank in ``.rank``. A user's `net` receives rank 0's parameters.
    `rank0` names rank 0 in errors (``the server``); `bar` is closed at the end.
    """
    tail = "What was measured so far is in .result (status 'partial')."
    startup: dict = {}
    try:
        share_with_ranks(model, ds)
        with listen(addr, port, timeout) as port_:
            outs = run_ranks(run_rank, (cfg, ds, model, addr, port_), processes, limits,
                             on_message, startup, {type(m) for m in model.modules()})
    except procs.Interrupted as exc:  # still a KeyboardInterrupt, now with the partial run
        exc.result = with_startup(assemble(exc.results, str(exc), None), startup)
        raise
    except procs.WorkerError as exc:
        reason = str(exc).split("\n")[0]
        partial = with_startup(
            assemble(exc.results, reason, [exc.rank] if exc.rank >= 0 else None), startup)
        role = rank0 if exc.rank == 0 else f"worker {exc.rank}"
        reason = reason.removeprefix(f"rank {exc.rank} ")
        if exc.details.strip():  # the exception it raised, e.g. "CosttrainError: ..."
            reason += f" [{exc.details.strip().splitlines()[-1]}]"
        raise error(f"{what} run failed: {role} (rank {exc.rank}) {reason} {tail}", exc.rank,
                    partial, exc.details, exc.results) from None
    finally:
        bar.close()
    results = dict(enumerate(outs))
    result = with_startup(assemble(results, None, None), startup)
    if isinstance(net, nn.Module):
        net.load_state_dict({k: torch.from_numpy(v) for k, v in outs[0]["state"].items()})
    if result.status not in ("ok", DIVERGED):
        lost = min(map(int, result.extra.get("lost") or []), default=-1)
        raise error(f"{what} run failed: {result.error.rstrip('.')}. {tail}", lost, result,
                    results=results)
    return result


def run_ranks(run_rank: Callable[..., dict], args: tuple, processes: int, limits: procs.Limits,
              on_message: Callable[[int, str, Any], None], startup: dict,
              classes: set[type]) -> list[dict]:
    """``run_rank(rank, *args)`` in `processes` ranks: the warm pool's workers (a re-run starts
    in a fraction of a second), or fresh processes while another thread's job holds the pool.

    `classes` are the model's module classes (the pool is replaced when one was redefined);
    `startup` receives the pool's figures (what a one-off run would have paid:
    :mod:`costtrain.measure`); a fresh start leaves it empty (cold, paid in full).
    """
    watch = dict(name="rank", deadline=limits.deadline, grace=limits.grace,
                 stall_timeout=limits.stall_timeout, on_message=on_message)
    with pool.lease(processes, classes, busy_ok=True) as workers:
        if workers is None:
            return procs.run_workers(run_rank, [args] * processes, **watch)
        try:
            return workers.run(pooled_rank, [(run_rank, *args)] * processes, classes=classes,
                               **watch)
        finally:
            startup.update(workers.startup)


def pooled_rank(rank: int, run_rank: Callable[..., dict], *args: Any) -> dict:
    """In a pool worker: one rank of one run (the pool's start event and counter, the last two
    arguments, are Hogwild!'s)."""
    return run_rank(rank, *args[:-2])


def with_startup(result: RunResult, startup: dict) -> RunResult:
    """`result` with the pool's start-up figures of its run (none for fresh processes)."""
    if startup:
        result.extra["startup"] = dict(startup)
    return result


def run_result(method: str, cfg: Any, config: dict, record: dict, *, t_start: float,
               train_start: float | None, train: float, samples: int, loss_curve: dict,
               curves: dict, extra: dict, error: str | None, diverged: bool,
               label: str = "", diverged_reason: str | None = None) -> RunResult:
    """The RunResult of a distributed run from rank 0's `record` (its evaluation and test
    figures) and the figures the method gathered from every rank; judged by the divergence
    rules (``cfg.classes``: the dataset's classes, for the chance rule)."""
    result = RunResult(
        method=method, config=config, device="cpu", threads=cfg.threads,
        setup_seconds=max(0.0, train_start - t_start) if train_start else 0.0,
        train_seconds=train, eval_seconds=record.get("eval_seconds", 0.0), samples=samples,
        samples_per_second=samples / train if train > 0 else 0.0,
        steady_samples_per_second=steady_rate(loss_curve),
        test_loss=record.get("test_loss", float("nan")),
        test_accuracy=record.get("test_accuracy", float("nan")), loss_curve=loss_curve,
        worker_curves=curves,
        eval_curve=record.get("eval_curve") or new_curve("samples", "seconds", "accuracy", "loss"),
        extra=extra, hardware=hardware_info(), status="partial" if error else "ok", error=error,
        label=label)
    close_eval_curve(result, record.get("test_samples"))
    if diverged:
        return mark_diverged(result, config.get("lr"), reason=diverged_reason)
    return judge(result, getattr(cfg, "classes", None), config.get("lr"))


def share_with_ranks(model: Any, ds: Any) -> None:
    """Before spawning the ranks of a run on this machine: check that the model fits in
    ``/dev/shm`` (torch shares it with them there) and move the data outside it."""
    check_shared_memory(model, data_bytes=0 if shared.AVAILABLE else ds.nbytes)
    with procs.resource_errors("sharing the data with the worker processes"):
        ds.share_memory_()


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise CosttrainError(f"${name} is not set: start this module with torchrun (which sets "
                             "RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or set them yourself.")
    return value


def _env_int(name: str) -> int:
    value = _env(name)
    try:
        return int(value)
    except ValueError:
        raise CosttrainError(f"${name} must be a whole number, got {value!r}.") from None


def torchrun_env() -> tuple[int, int, str]:
    """(RANK, WORLD_SIZE, "MASTER_ADDR:MASTER_PORT") from the environment, checked."""
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    return rank, world, f"{_env('MASTER_ADDR')}:{_env_int('MASTER_PORT')}"


def torchrun_threads(threads: int | None) -> int:
    """Threads per rank under torchrun: `threads`, else the cores shared by this machine's
    ranks (``LOCAL_WORLD_SIZE``)."""
    return threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), threads=threads)


def torchrun_rank(run_rank: Callable[..., dict], rank: int, cfg: Any, ds: Any,
                  model: nn.Module) -> dict | None:
    """Run this process's rank of a torchrun launch: rank 0's record; None on the others,
    whose failure is raised here. The run's start is this process's start."""
    out = run_rank(rank, cfg, ds, model)
    if rank != 0:
        if out.get("error"):
            raise CosttrainError(out["error"])
        return None
    return out


def process_start() -> float:
    """When this process started (the set-up time of a torchrun rank counts from there)."""
    return psutil.Process().create_time()


