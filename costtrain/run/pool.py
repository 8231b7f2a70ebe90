"""A warm pool of worker processes, kept across runs within one Python process or notebook kernel.

Starting a spawned worker costs seconds: a fresh interpreter imports torch. The pool's workers
are forked from a server that has imported torch and the loops once
(:mod:`costtrain.run.forkserver`; spawned where that is not safe), so a fresh worker is ready
in a fraction of a second however many there are; the command line starts that server before
the parent has imported torch or loaded the data (:func:`prestart`), so that its imports overlap
the parent's. The pool then hands every run to the same processes, so a second run does not
even fork.

The rules of :mod:`costtrain.run.procs` hold here too: a context of the pool's own, never a
global start method; every worker dies with its parent (``PR_SET_PDEATHSIG``; a forked worker's
parent is the fork server, which ends with this process; a spawned pool started from another
thread, which may end before the pool, relies on the closed pipe) and ignores Ctrl-C,
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
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterable, Iterator

from .. import methods
from ..errors import CosttrainError
from . import forkserver, procs


SAMPLES, GO = 0, 1  # the slots of a pool's shared counter (Hogwild!'s): samples trained by
#                   all workers together, and start signals given (see Pool.counter)


def preload() -> tuple[str, ...]:
    """What a fresh worker imports while it waits for work (the fork server, once for all):
    the modules the method registry's rows name (their loops), then ``torch._dynamo``, which
    torch imports lazily at a process's first optimizer call (1.5-2 s that would otherwise
    land in its first run's set-up)."""
    return (*methods.preloads(), "torch._dynamo")

_pool: Pool | None = None  # the warm pool of this process
_early: threading.Thread | None = None  # prestart's thread forking the workers (the CLI)
EARLY_FDS = 256  # files a process must have to spare for prestart to fork its workers early
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
    ``('error', traceback)``. `parent` is the process that started it (the fork server, or
    the pool's owner when spawned).
    """
    forkserver.detach()  # forked: the server ends with the pool's owner, not with its workers
    procs.bind_worker(conn, stop, deathsig)  # dies with the parent, leaves it the signals
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return
    try:
        for name in preload:
            importlib.import_module(name)
        conn.send(("warm", time.monotonic()))  # when: the parent may read it much later
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
        """How long this worker took to start (spawned: its imports; forked: the wait for the
        fork server, then the fork), once it is warm."""
        return (self.started_at - self.spawned_at) if self.started_at is not None else 0.0


@dataclass
class Pool:
    """Workers (forked from the fork server, or spawned) that run one task each per
    :meth:`run`, then wait for the next.

    Each run gets the pool's ``start`` event and ``counter``, two shared whole numbers (slots
    :data:`SAMPLES` and :data:`GO`), both cleared at its start.
    """

    main: bool = True  # whether workers import the parent's __main__ (classes defined there)
    members: list[_Member] = field(default_factory=list)
    classes: dict[str, type] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)  # of the last run (see run())
    asked_at: float | None = None  # time.monotonic() of the last acquire(): a run's first wait

    def __post_init__(self) -> None:
        with procs.resource_errors("starting the worker pool"):
            procs.start_resource_tracker()
            self.ctx = forkserver.context()
            self.stop, self.start = self.ctx.Event(), self.ctx.Event()
            self.counter = self.ctx.Array("q", 2)

    # -------------------------------------------------------------- life cycle
    def grow(self, processes: int) -> None:
        """Start workers until there are `processes` of them."""
        with procs.hidden_main(not self.main), procs.resource_errors(
                f"starting {processes} worker processes"):
            while len(self.members) < processes:
                rank = len(self.members)
                parent_end, child_end = self.ctx.Pipe(duplex=True)
                server = forkserver.start() if self.forked else None
                asked = time.monotonic()  # a forked start waits here for the server's imports
                p = self.ctx.Process(target=_serve, args=(
                    child_end, self.stop, self.start, self.counter, preload(),
                    server or os.getpid(), bool(server) or procs.in_main_thread()),
                                     name=f"costtrain-pool-{rank}", daemon=True)
                with procs.held_while_starting():  # a signal comes once it is a member
                    try:
                        p.start()
                    except EOFError:  # the fork server ended while it was asked for a worker
                        raise procs.WorkerError(
                            f"the fork server ended (killed?) while starting pool worker "
                            f"{rank}; the next run starts a new one.", rank) from None
                    finally:
                        child_end.close()
                    self.members.append(_Member(rank, p, parent_end, spawned_at=asked))

    @property
    def forked(self) -> bool:
        """Whether the workers are forked from the fork server (else spawned)."""
        return self.ctx.get_start_method() == "forkserver"

    def alive(self) -> bool:
        """Every worker is still running (none was killed while idle); true of a pool that
        has none yet."""
        return all(m.proc.is_alive() for m in self.members)

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
                if left <= 0:
                    _discard(self)
                    raise procs.WorkerError(
                        f"pool worker {m.rank} did not start within {timeout:g} s; stopped "
                        "them. Check that `python -c 'import torch'` works in this environment "
                        "and that memory is free, or pass a larger timeout.", m.rank)
                try:
                    msg = m.conn.recv() if m.conn.poll(min(left, 0.5)) else None
                except (EOFError, OSError):  # it ended before it was ready
                    msg = None
                    m.proc.join(1.0)
                if msg is not None and msg[0] == "warm":
                    m.mark_started(msg[1])
                elif msg is None and not m.proc.is_alive():
                    self._failed_start(m)

    def _failed_start(self, m: _Member) -> None:
        """A worker ended before it was ready: close the pool, raise what explains it."""
        _discard(self)
        if m.proc.exitcode == procs.MAIN_GUARD_EXIT:
            raise procs.MainGuardError(procs.MAIN_GUARD_HELP)
        raise procs.WorkerError(f"pool worker {m.rank} {procs.exit_reason(m.proc.exitcode)} "
                                "while starting; stopped them.", m.rank)

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
            self.counter[:] = [0, 0]
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
        since = min(self.asked_at or t_dispatch, t_dispatch)  # this run's first wait began
        self.startup = startup_paid(team, warm_before, since)
        if failure is not None:
            _discard(self)
            if any(m.proc.exitcode == procs.MAIN_GUARD_EXIT for m in team):
                raise procs.MainGuardError(procs.MAIN_GUARD_HELP)
            raise failure
        return [m.result for m in team]


def startup_paid(team: list[_Member], warm_before: list[bool], since: float) -> dict:
    """``waited``: seconds this run waited for its fresh workers, from `since` (when it asked
    for the pool) or their later start, until the last one was warm; ``unpaid``: the start-up
    of the reused warm workers beyond that (a one-off run pays it)."""
    waited = max([m.started_at - max(since, m.spawned_at) for m, w in zip(team, warm_before)
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
    _join_early()  # workers the command line began to fork (prestart) are this pool's
    classes = list(classes)
    needs_main = main and any(c.__module__ == "__main__" for c in classes)
    if _pool is not None and not (_pool.alive() and _pool.accepts(classes)
                                  and (_pool.main or not needs_main)):
        close_all()
    if _pool is None:
        _pool = Pool(main=main)
    _pool.asked_at = time.monotonic()
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


def ready_server() -> float:
    """Start the fork server and wait until its imports are done, then empty the pool; returns
    the seconds it took (0 where workers are spawned).

    ``costtrain run`` starts the server before it imports torch, so by its first trainer call
    the server is ready and its start is hidden behind the parent's own imports. A notebook or
    a comparison calls this once before the runs it measures, so that each of them pays what
    such a one-off run pays (forking its workers), and the first one not the server's start."""
    if forkserver.start_method() != "forkserver":
        return 0.0
    t = time.perf_counter()
    warm_up(1)
    close_all()
    return time.perf_counter() - t


def start_server() -> None:
    """Start the fork server now and return at once (nothing where workers are spawned): its
    imports overlap what the caller does next (its checks, loading the data)."""
    forkserver.start()


def prestart(processes: int) -> None:
    """Before this process imports torch (the CLI): start `processes` workers and return at
    once. Forked: start the fork server, and fork them from a background thread as soon as its
    imports are done, while this process imports torch and loads the data (the first
    :func:`acquire` waits for that thread). Spawned: spawn them now, without ``__main__``."""
    global _early
    if forkserver.start() is None:
        acquire(processes, main=False)
        return
    early = acquire(0)
    if not _fds_to_spare():  # let the run take what it needs first (and fail clearly)
        return
    _early = threading.Thread(target=_grow_early, args=(early, processes),
                              name="costtrain-prestart", daemon=True)
    _early.start()


def _fds_to_spare(needed: int = EARLY_FDS) -> bool:
    """Whether this process may open `needed` more files (``ulimit -n``; True where unknown)."""
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        open_now = len(os.listdir("/proc/self/fd"))
    except (ImportError, OSError, ValueError):
        return True
    return soft == resource.RLIM_INFINITY or soft - open_now >= needed


def _grow_early(p: Pool, processes: int) -> None:
    """prestart's background thread: fork the workers; a failure is left to the run, which
    grows the pool itself and says what went wrong."""
    with contextlib.suppress(Exception):
        p.grow(processes)


def _join_early() -> None:
    """Wait for prestart's background thread, if one is running."""
    global _early
    early, _early = _early, None
    if early is not None:
        early.join()


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
