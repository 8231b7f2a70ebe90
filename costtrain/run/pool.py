"""A warm pool of worker processes, kept across runs within one Python process or notebook kernel.

Starting a spawned worker costs seconds: a fresh interpreter imports torch. The pool starts its
workers once and hands every run to the same processes, so a second Hogwild! run starts in a
fraction of a second; the command line even starts them before the parent has imported torch
or loaded the data (:func:`prestart`), so that their start-up overlaps the parent's.

The rules of :mod:`costtrain.run.procs` hold here too: a ``spawn`` context; every worker dies with
its parent (``PR_SET_PDEATHSIG``, set before the worker imports torch; a pool started from
another thread, which may end before the pool, relies on the closed pipe) and ignores Ctrl-C,
SIGTERM and SIGHUP (the parent decides and stops them); the one supervisor,
:func:`costtrain.run.procs.supervise`, watches a run: a worker that raises, dies or stays silent for
``stall_timeout`` seconds ends it with :class:`~costtrain.run.procs.WorkerError` naming it, and the
pool is closed (the next run starts a fresh one). One job runs at a time
(:func:`lease`): a second thread's job meanwhile is refused with :class:`PoolBusyError`. The
pool is closed at interpreter exit, or by :func:`close_all`. It is re-used while the model classes it has received stay the same
objects (a class edited and reloaded in a notebook gets a fresh pool) and grows to the largest
process count asked for.

This module does not import torch: the CLI imports it before torch.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterable, Iterator

from .. import methods
from ..errors import CosttrainError
from . import procs


def preload() -> tuple[str, ...]:
    """What a fresh worker imports while it waits for work: the modules the method registry's
    rows name (their loops), then ``torch._dynamo``, which torch imports lazily at a process's
    first optimizer call (1.5-2 s that would otherwise land in its first run's set-up)."""
    return (*methods.preloads(), "torch._dynamo")

_pool: Pool | None = None  # the warm pool of this process
_lock = threading.Lock()  # one job at a time: the workers' pipes carry one conversation
_holder = ""  # name of the thread whose job runs now (for the refusal's message)


class PoolBusyError(CosttrainError):
    """Another thread of this process is running a job on the warm pool."""


# ------------------------------------------------------------------ inside a worker

def _serve(conn: Connection, stop, start, counter, preload: tuple[str, ...],
           parent: int, deathsig: bool) -> None:
    """A pool worker: die with the parent, import `preload`, then run tasks until told to stop.

    A task is ``(target, rank, args)``; the worker calls ``target(rank, *args, start, counter)``
    with the pool's start event and shared counter and sends back ``('ok', result)`` or
    ``('error', traceback)``.
    """
    procs.bind_worker(conn, stop, deathsig)  # dies with the parent, leaves it the signals
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return
    try:
        for name in preload:
            importlib.import_module(name)
        conn.send(("warm", os.getpid()))
    except (EOFError, OSError):  # the parent went away while this worker started
        return
    while True:
        try:
            task = conn.recv()
            if task is None:
                return
            target, rank, args, interval = task
            del task
            procs.name_worker(rank)
            done = threading.Event()  # a heartbeat while the task runs: blocked is not stuck
            beat = threading.Thread(target=procs.heartbeat, args=(interval, done), daemon=True)
            beat.start()
            try:
                result = target(rank, *args, start, counter)
            finally:
                done.set()
                beat.join()
            conn.send(("ok", result))
            del args  # release the shared tensors until the next task
        except (EOFError, OSError):
            return
        except BaseException:
            with contextlib.suppress(Exception):
                conn.send(("error", traceback.format_exc()))
            return  # the parent closes a pool whose run failed


# ------------------------------------------------------------------ the parent's side

@dataclass
class _Member(procs.Member):
    """A pool worker: started = warm (it has imported what it preloads)."""

    @property
    def warm(self) -> bool:
        return self.started

    def start_seconds(self) -> float:
        """How long this worker took to start (spawn + imports), once it is warm."""
        return (self.started_at - self.spawned_at) if self.started_at is not None else 0.0


@dataclass
class Pool:
    """Spawned workers that run one task each per :meth:`run`, then wait for the next."""

    main: bool = True  # whether workers import the parent's __main__ (classes defined there)
    members: list[_Member] = field(default_factory=list)
    classes: dict[str, type] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)  # of the last run (see run())

    def __post_init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        with procs.resource_errors("starting the worker pool"):
            procs.start_resource_tracker()
            self.stop, self.start = self.ctx.Event(), self.ctx.Event()
            self.counter = self.ctx.Value("q", 0)

    # -------------------------------------------------------------- life cycle
    def grow(self, processes: int) -> None:
        """Start workers until there are `processes` of them."""
        with procs.hidden_main(not self.main), procs.resource_errors(
                f"starting {processes} worker processes"):
            while len(self.members) < processes:
                rank = len(self.members)
                parent_end, child_end = self.ctx.Pipe(duplex=True)
                p = self.ctx.Process(target=_serve, args=(child_end, self.stop, self.start,
                                                          self.counter, preload(), os.getpid(),
                                                          procs.in_main_thread()),
                                     name=f"costtrain-pool-{rank}", daemon=True)
                with procs.held_while_starting():  # a signal comes once it is a member
                    p.start()
                    child_end.close()
                    self.members.append(_Member(rank, p, parent_end))

    def alive(self) -> bool:
        """Every worker is still running (none was killed while idle)."""
        return bool(self.members) and all(m.proc.is_alive() for m in self.members)

    def pids(self) -> list[int]:
        return [m.proc.pid for m in self.members]

    def accepts(self, classes: Iterable[type]) -> bool:
        """Whether these model classes can be sent here (same class objects, __main__ visible)."""
        for cls in classes:
            if cls.__module__ == "__main__" and not self.main:
                return False
            if self.classes.get(_qualified(cls), cls) is not cls:
                return False
        return True

    def wait_warm(self, timeout: float) -> None:
        """Block until every worker has imported what it preloads (torch); error after `timeout` s."""
        end = time.monotonic() + timeout
        for m in self.members:
            while not m.warm:
                left = end - time.monotonic()
                if left <= 0 or not m.proc.is_alive():
                    _discard(self)
                    raise procs.WorkerError(
                        f"pool worker {m.rank} did not start within {timeout:g} s; stopped "
                        "them. Check that `python -c 'import torch'` works in this environment "
                        "and that memory is free, or pass a larger timeout.", m.rank)
                if m.conn.poll(min(left, 0.5)):
                    kind, _ = m.conn.recv()
                    if kind == "warm":
                        m.mark_started()

    def close(self) -> None:
        """Terminate every worker (idle ones hold nothing) and reap them all."""
        procs.terminate([m.proc for m in self.members], wait_s=1.0)
        for m in self.members:
            m.conn.close()
        self.members = []

    # -------------------------------------------------------------- one run
    def run(self, target: Callable[..., Any], args: list[tuple], *, name: str = "worker",
            stall_timeout: float | None = None, deadline: float | None = None,
            grace: float = 5.0, on_message: Callable[[int, str, Any], None] | None = None,
            classes: Iterable[type] = ()) -> list[Any]:
        """Run ``target(rank, *args[rank], start, counter)`` in workers 0..len(args)-1.

        Same contract as :func:`costtrain.run.procs.run_workers`: results by rank, or
        :class:`~costtrain.run.procs.WorkerError` naming the worker that raised, died or sent
        nothing for `stall_timeout` s (a fresh worker still starting gets
        ``procs.STARTUP_SECONDS`` more), or when the run passes its `deadline`;
        ``.results`` holds what the others returned. Any failure or interrupt closes the pool.

        ``startup`` then holds ``waited`` (seconds this run waited for workers to start) and
        ``unpaid`` (what reused warm workers had cost to start, beyond that wait): what a
        one-off run would have paid on top (:mod:`costtrain.measure`).
        """
        self.grow(len(args))
        self.stop.clear()
        self.start.clear()
        with self.counter.get_lock():
            self.counter.value = 0
        team = self.members[:len(args)]
        t_dispatch, warm_before = time.monotonic(), [m.warm for m in team]
        self.startup = {}
        try:
            with procs.resource_errors(f"sending the job to {len(team)} workers"):
                for m, a in zip(team, args):
                    m.done, m.result, m.last_heard = False, None, time.monotonic()
                    m.conn.send((target, m.rank, a, procs.heartbeat_interval(
                        stall_timeout and max(stall_timeout, procs.MIN_STALL_SECONDS))))
            for cls in classes:
                self.classes[_qualified(cls)] = cls
            failure = procs.supervise(team, self.stop, name, deadline=deadline,
                                      stall_timeout=stall_timeout, grace=grace,
                                      on_message=on_message)
        except BaseException:
            _discard(self)
            raise
        self.startup = startup_paid(team, warm_before, t_dispatch)
        if failure is not None:
            _discard(self)
            if any(m.proc.exitcode == procs.MAIN_GUARD_EXIT for m in team):
                raise procs.MainGuardError(procs.MAIN_GUARD_HELP)
            raise failure
        return [m.result for m in team]


def startup_paid(team: list[_Member], warm_before: list[bool], t_dispatch: float) -> dict:
    """``waited``: seconds after dispatch until the last fresh worker was warm; ``unpaid``:
    the start-up of the reused warm workers beyond that (a one-off run pays it)."""
    waited = max([m.started_at - t_dispatch for m, w in zip(team, warm_before)
                  if not w and m.started_at is not None] + [0.0])
    reused = max([m.start_seconds() for m, w in zip(team, warm_before) if w] + [0.0])
    return dict(waited=max(0.0, waited), unpaid=max(0.0, reused - waited),
                fresh_workers=warm_before.count(False))


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# ------------------------------------------------------------------ the warm pool

def acquire(processes: int, classes: Iterable[type] = (), *, main: bool = True) -> Pool:
    """The warm pool, grown to `processes` workers; a fresh one when it cannot serve `classes`.

    Not for several threads at once: a job takes the pool with :func:`lease`.

    `main`: workers import the parent's ``__main__`` (needed for classes defined in a script);
    a pool started without it is replaced when such a class arrives.
    """
    global _pool
    procs.check_main_guard()  # a spawned child re-running an unguarded script stops here
    classes = list(classes)
    needs_main = main and any(c.__module__ == "__main__" for c in classes)
    if _pool is not None and not (_pool.alive() and _pool.accepts(classes)
                                  and (_pool.main or not needs_main)):
        close_all()
    if _pool is None:
        _pool = Pool(main=main)
    _pool.grow(processes)
    return _pool


@contextlib.contextmanager
def lease(processes: int, classes: Iterable[type] = (), *,
          busy_ok: bool = False) -> Iterator[Pool | None]:
    """The warm pool (see :func:`acquire`) for one job of this thread, until the block ends.

    The workers' pipes carry one conversation at a time (two threads reading them would take
    each other's messages), so a job asked for from another thread meanwhile is refused at
    once with :class:`PoolBusyError`, before anything is sent; with `busy_ok` it gets None
    instead (the caller then starts processes of its own).
    """
    global _holder
    if not _lock.acquire(blocking=False):
        if busy_ok:
            yield None
            return
        raise PoolBusyError(
            f"the warm worker pool of this process is running another job (started in thread "
            f"{_holder!r}) and runs one job at a time: start this one after that one has "
            "finished (e.g. join its thread first), or in another process.")
    _holder = threading.current_thread().name
    try:
        yield acquire(processes, classes)
    finally:
        _holder = ""
        _lock.release()


def warm_up(processes: int, timeout: float = procs.STARTUP_SECONDS) -> float:
    """Start the warm pool's `processes` workers now and wait until they are ready.

    Returns the seconds it took (0 when they were already warm). Later Hogwild! runs in this
    process start in a fraction of a second, so comparing configurations is fair: none pays
    the workers' start-up for the others.
    """
    t = time.perf_counter()
    with lease(processes) as workers:
        for name in preload():  # the parent's first run would import them too (see preload)
            importlib.import_module(name)
        workers.wait_warm(timeout)
    return time.perf_counter() - t


def prestart(processes: int) -> None:
    """Start `processes` workers now, without ``__main__``, and return at once (the CLI)."""
    acquire(processes, main=False)


def current() -> Pool | None:
    """The warm pool, if there is one (its workers may still be starting)."""
    return _pool


def _discard(p: Pool) -> None:
    """Close `p` and forget it if it is the warm pool (after a failure: the next run starts anew)."""
    global _pool
    if _pool is p:
        _pool = None
    p.close()


def close_all() -> None:
    """Close the warm pool: its workers exit and are reaped (also run at interpreter exit)."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.close()


atexit.register(close_all)
