"""Start worker processes safely and supervise them: no hangs, no orphans, clear errors.

Rules (each from a real failure): a ``spawn`` context, never a global start method; worker
functions live in this package so a notebook kernel can start them; a worker that raises or
dies by a signal ends the call with :class:`WorkerError` naming it; Ctrl-C / a kernel
interrupt terminates every child; on Linux children also die when the parent dies, even
during their start-up.

Signals: a worker ignores Ctrl-C, SIGTERM and SIGHUP, which ``timeout``, systemd, Slurm and a
closed terminal send to the whole process group: the parent decides. It asks every worker to
stop and hand in what it has (:func:`should_stop`), waits its grace, and ends the rest with
SIGKILL; a worker also gets SIGKILL when its parent dies.

Every wait has a deadline. Each worker sends a heartbeat a few times per ``stall_timeout``
from a thread, so a worker that sends nothing (no progress, no heartbeat) for
``stall_timeout`` seconds is stopped, frozen (SIGSTOP, a debugger) or swapped out: see
:func:`stalled`, the rule of :func:`supervise`, the one loop that watches every worker, spawned
per run (:func:`run_workers`) or kept warm (:mod:`costtrain.run.pool`). Its knobs are
:class:`Limits`.

This module imports no torch at import time: a child sets its parent-death signal and starts
its heartbeat while its arguments are unpickled, before the work's own arguments (which import
torch and map the shared tensors).
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator

from ..errors import CosttrainError, ResourceError

STARTUP_SECONDS = 300.0  # extra allowance until a worker's imports are done (seen: 2 min, busy box)
MIN_STALL_SECONDS = 2.0  # a shorter silence proves nothing on a busy machine
MAIN_GUARD_EXIT = 87  # exit code of a child that found itself re-running an unguarded script
MAIN_GUARD_HELP = (
    "the script that starts the worker processes has no `if __name__ == \"__main__\":` "
    "guard. Workers are started with 'spawn' (or forked from the package's fork server, "
    "which does the same): each one imports the script again, and without "
    "the guard it would start the training (and more workers) again instead of doing its "
    "share. Put the lines that train under `if __name__ == \"__main__\":` at the bottom of "
    "the script; functions, classes and imports can stay at the top level.")

_conn: Connection | None = None  # this worker's pipe to the parent (set in the child)
_stop = None  # shared Event: the parent asks workers to stop early and hand in what they have
_send_lock = threading.Lock()  # the heartbeat thread and the worker share the pipe


class MainGuardError(CosttrainError):
    """A worker re-ran a script that has no ``if __name__ == "__main__":`` guard."""


def heartbeat_interval(stall_timeout: float | None) -> float:
    """Seconds between a worker's heartbeats: four per `stall_timeout`, at most one a second."""
    return 1.0 if stall_timeout is None else max(0.02, min(1.0, stall_timeout / 4))


def stalled(last_heard: float, stall_timeout: float | None, now: float) -> bool:
    """The stuck-worker rule: nothing heard (progress, heartbeat) for `stall_timeout` seconds."""
    return stall_timeout is not None and now - last_heard > stall_timeout


@dataclass(frozen=True)
class Limits:
    """The knobs of a supervised run, one meaning each wherever they appear.

    ``stall_timeout``: seconds of silence (no progress, no heartbeat) after which a worker
    counts as stuck (:func:`stall_limit`); ``deadline``: seconds the whole run may take;
    ``grace``: after a failure or an interrupt, seconds the workers get to hand in what they
    have before they are killed. None = no limit. Each method derives them from its
    ``timeout=`` in one function (``hogwild.limits``, ``ps_ranks.limits``, ``local_sgd.limits``).
    """

    stall_timeout: float | None = None
    deadline: float | None = None
    grace: float = 5.0


class WorkerError(RuntimeError):
    """A worker failed; carries its rank, traceback and what the other workers returned.

    ``result`` is set by the trainer that raises it: the partial RunResult built from what the
    other workers returned (None where there is none).
    """

    result: Any = None

    def __init__(self, message: str, rank: int, details: str = "",
                 results: dict[int, Any] | None = None) -> None:
        super().__init__(message + (f"\n\n--- worker {rank} traceback ---\n{details}" if details else ""))
        self.rank, self.details, self.results = rank, details, results or {}


class OutOfMemory(WorkerError):
    """The system ran out of memory after training began (while training, or in the final
    evaluation): `error` is :meth:`~costtrain.errors.ResourceError.describe`'s paragraph,
    naming the limit. ``result`` keeps what was trained (status ``partial``); the CLI ends
    with exit 3, as for a failed worker."""

    def __init__(self, error: BaseException | str) -> None:
        super().__init__(str(error), -1)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or the CLI's SIGTERM) while workers ran; still a KeyboardInterrupt.

    The supervisors ask every worker to stop and wait up to their grace for what the workers
    hand in (a second Ctrl-C stops the waiting at once). ``results`` holds what they returned,
    ``result`` the partial RunResult the trainer built from it, ``cause`` the original
    interrupt.
    """

    result: Any = None
    rank = -1

    def __init__(self, message: str, cause: BaseException | None = None,
                 results: dict[int, Any] | None = None) -> None:
        super().__init__(message)
        self.cause, self.results = cause, results or {}

    @classmethod
    def during(cls, cause: BaseException, name: str, *, phase: str = "") -> "Interrupted":
        """The interrupt `cause` that arrived while `name`s were running (or during `phase`).

        A cause may say what it was in its ``what`` attribute (the CLI's SIGTERM and SIGHUP
        do); else it was Ctrl-C.
        """
        what = getattr(cause, "what", "interrupted (Ctrl-C)")
        if phase:
            return cls(f"{what} during {phase}", cause)
        return cls(f"{what} while the {name}s were running; every worker was asked to stop.",
                   cause)


def report(kind: str, payload: Any) -> None:
    """From inside a worker: send a message (e.g. progress) to the parent's ``on_message``."""
    if _conn is not None:
        with _send_lock:
            _conn.send((kind, payload))


def should_stop() -> bool:
    """From inside a worker: True once the parent asked every worker to stop early."""
    return _stop is not None and _stop.is_set()


def _prctl(option: int, arg: Any) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, arg)


STOP_SIGNALS = tuple(getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, s))


def in_main_thread() -> bool:
    """Whether this is the main thread: only its workers may ask for a death signal, since
    Linux sends it when the *thread* that started the worker ends."""
    return threading.current_thread() is threading.main_thread()


def _die_with_parent(deathsig: bool = True) -> None:
    """In a worker: get SIGKILL when the parent dies, and leave the stop signals to the parent.

    A signal to the whole group reaches the parent too; it asks the workers to hand in what they
    have. A worker that died of it instead would lose its share of the run. Without `deathsig`
    (started from another thread) the worker notices the parent's end by its heartbeat or its
    closed pipe.
    """
    if deathsig:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # what arrived while they were held is dropped
    if hasattr(signal, "pthread_sigmask"):  # held since the start (held_while_starting)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def held_while_starting() -> Iterator[None]:
    """While worker processes are started: Ctrl-C, SIGTERM and SIGHUP are held (blocked, in
    this thread), and a new worker starts with them held until it ignores them
    (:func:`_die_with_parent`). A signal to the whole process group during a worker's first
    moments then neither kills it half-started (Python's default for Ctrl-C is a traceback from
    whatever it was importing) nor is lost for this process: it is delivered here right after.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker ignoring SIGHUP, as it ignores SIGINT and SIGTERM.

    It unlinks the semaphores (``/dev/shm/sem.mp-*``) of a parent that was killed; a hang-up
    of the whole group must not kill it first. Call before the first semaphore or process.
    """
    if (not hasattr(signal, "SIGHUP")
            or threading.current_thread() is not threading.main_thread()):
        return
    from multiprocessing import resource_tracker
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited by the tracker's exec
    try:
        with held_while_starting():  # it ignores SIGINT and SIGTERM once it has started
            resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, old)


def check_main_guard() -> None:
    """In a child re-running an unguarded script: end it at once (the parent explains)."""
    if _bootstrapping():
        os._exit(MAIN_GUARD_EXIT)


def heartbeat(interval: float, done: threading.Event) -> None:
    """Thread in the child: tell the parent 'alive' every `interval` s until `done`; end the
    process when the parent is gone."""
    parent = os.getppid()
    while not done.wait(interval):
        if os.getppid() != parent:
            os._exit(1)
        try:
            report("heartbeat", None)
        except (OSError, ValueError):
            return


def _arm(conn: Connection, parent: int, beat: float, deathsig: bool) -> Connection:
    """In the child, while its arguments are unpickled: die with the parent, start beating.

    Runs before the work's own arguments are unpickled (they import torch and map the shared
    tensors, seconds on a busy machine), because :class:`_Armed` comes first among them.
    """
    global _conn
    _die_with_parent(deathsig)
    if os.getppid() != parent:  # the parent died before the death signal was set
        os._exit(1)
    _conn = conn
    try:
        threading.Thread(target=heartbeat, args=(beat, _beating), daemon=True).start()
    except RuntimeError as exc:  # a process/thread limit: tell the parent, not a traceback
        reason = ResourceError.describe(exc, "starting a worker's heartbeat thread") or exc
        with contextlib.suppress(Exception):
            report("error", f"{type(reason).__name__}: {reason}")
        os._exit(1)
    return conn


@dataclass
class _Armed:
    """The child's pipe, pickled so that unpickling it calls :func:`_arm` first."""

    conn: Connection
    parent: int
    beat: float
    deathsig: bool

    def __reduce__(self):
        return _arm, (self.conn, self.parent, self.beat, self.deathsig)


_beating = threading.Event()  # set in the child when its heartbeat must stop


def _child(conn: Connection, stop, rank: int, target: Callable, args: tuple) -> None:
    global _stop
    _stop = stop
    report("started", None)  # imports done: from now on the plain stall timeout applies
    name_worker(rank)
    try:
        outcome = ("ok", target(rank, *args))
    except BaseException:  # includes KeyboardInterrupt: the parent decides
        outcome = ("error", traceback.format_exc())
    _beating.set()
    try:
        report(*outcome)
    except Exception:  # e.g. a result that cannot be pickled
        with contextlib.suppress(Exception):
            report("error", traceback.format_exc())
    finally:
        conn.close()


def _bootstrapping() -> bool:
    """True in a spawned child that is still importing the parent's main script."""
    return bool(getattr(mp.current_process(), "_inheriting", False))  # set by spawn's bootstrap


def exit_reason(code: int | None) -> str:
    """How a worker ended, from its exit code: 'was killed by signal SIGKILL', ..."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code} without reporting a result"


@contextlib.contextmanager
def hidden_main(hide: bool = False) -> Iterator[None]:
    """Keep spawn from re-importing ``__main__`` in the workers while they start.

    Hidden when asked (the CLI's warm pool: its workers need only the package), and always
    when ``__main__`` names no importable file: a script read from standard input
    (``python - < script.py``) has ``__file__ == '<stdin>'``, which spawn would try to re-run.
    """
    main = sys.modules.get("__main__")
    path, spec = getattr(main, "__file__", None), getattr(main, "__spec__", None)
    fake = path is not None and spec is None and not os.path.isfile(path)
    hide = main is not None and (hide or fake)
    if hide:
        if path is not None:
            del main.__file__
        main.__spec__ = None
    try:
        yield
    finally:
        if hide:
            if path is not None:
                main.__file__ = path
            main.__spec__ = spec


@dataclass
class Member:
    """One supervised worker process (spawned per run, or a warm pool's)."""

    rank: int
    proc: Any
    conn: Connection
    done: bool = False
    result: Any = None
    started: bool = False  # its imports are done: from now on the plain stall timeout applies
    last_heard: float = field(default_factory=time.monotonic)
    spawned_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None

    def mark_started(self, at: float | None = None) -> None:
        """Its imports are done: now, or at `at` (``time.monotonic()`` as the worker read it:
        the same clock machine-wide) when it said so before this process read it."""
        if not self.started:
            now = time.monotonic()
            self.started, self.started_at = True, now if at is None else min(at, now)


def run_workers(target: Callable[..., Any], args: list[tuple], *, name: str = "worker",
                deadline: float | None = None, stall_timeout: float | None = None,
                grace: float = 5.0, on_message: Callable[[int, str, Any], None] | None = None,
                daemon: bool = True) -> list[Any]:
    """Run ``target(rank, *args[rank])`` in one spawned process per entry; return results by rank.

    Args:
        target: a module-level function (spawn pickles it by name).
        deadline: seconds the whole run may take before every worker is stopped and an
            error raised (None: no limit).
        stall_timeout: seconds a worker may send nothing before it counts as stuck (see
            :func:`supervise`).
        grace: after a failure, seconds the others get to stop on their own (see
            :func:`should_stop`) and hand in partial results before they are terminated.
        on_message: called in the parent for each :func:`report` from a worker.
    Raises:
        WorkerError: a worker raised, died, got stuck, or the deadline passed; ``.results``
            holds the results the other workers returned.
        Interrupted: Ctrl-C while they ran (a KeyboardInterrupt); ``.results`` as above.
        MainGuardError: the calling script has no ``if __name__ == "__main__":`` guard.
    """
    check_main_guard()
    if "torch" in sys.modules:
        import torch.multiprocessing  # noqa: F401  registers the shared-tensor reductions
    ctx = mp.get_context("spawn")
    workers: list[Member] = []
    beat = heartbeat_interval(stall_timeout and max(stall_timeout, MIN_STALL_SECONDS))
    try:
        with hidden_main(), resource_errors(f"starting {len(args)} {name} processes"):
            start_resource_tracker()
            stop = ctx.Event()
            for rank, a in enumerate(args):
                parent_end, child_end = ctx.Pipe(duplex=False)
                armed = _Armed(child_end, os.getpid(), beat,  # unpickled first in the child
                               in_main_thread())
                p = ctx.Process(target=_child, args=(armed, stop, rank, target, a),
                                name=f"costtrain-{name}-{rank}", daemon=daemon)
                with held_while_starting():  # a signal comes once it is a member
                    p.start()
                    child_end.close()
                    workers.append(Member(rank, p, parent_end))
        failure = supervise(workers, stop, name, deadline=deadline,
                            stall_timeout=stall_timeout, grace=grace, on_message=on_message)
        if any(w.proc.exitcode == MAIN_GUARD_EXIT for w in workers):
            raise MainGuardError(MAIN_GUARD_HELP)
        if failure:
            raise failure
        return [w.result for w in workers]
    finally:
        terminate([w.proc for w in workers])
        for w in workers:
            w.conn.close()


# --- the one supervision loop: spawned workers (run_workers) and the warm pool ---------------

def receive(m: Member, on_message) -> tuple[str, Any] | None:
    """Read every waiting message of one worker; return its final ('ok'|'error', ...) if any.

    Anything but a heartbeat says that its imports are done ('started', or a warm pool
    worker's 'warm'); its own messages go to `on_message`.
    """
    final = None
    while not m.done and m.conn.poll():
        try:
            kind, payload = m.conn.recv()
        except (EOFError, OSError):
            break
        m.last_heard = time.monotonic()
        if kind != "heartbeat":
            m.mark_started(payload if kind == "warm" else None)
        if kind in ("heartbeat", "started", "warm"):
            continue
        if kind in ("ok", "error"):
            final = (kind, payload)
            m.done = True
        elif on_message is not None:
            on_message(m.rank, kind, payload)
    return final


def stall_limit(m: Member, stall_timeout: float | None) -> float | None:
    """The silence after which `m` counts as stuck: `stall_timeout` (at least
    :data:`MIN_STALL_SECONDS`), plus :data:`STARTUP_SECONDS` until its imports are done."""
    if stall_timeout is None:
        return None
    return max(stall_timeout, MIN_STALL_SECONDS) + (0.0 if m.started else STARTUP_SECONDS)


def stuck(members: list[Member], stall_timeout: float | None, now: float) -> Member | None:
    """The first unfinished worker that broke the :func:`stalled` rule, if any."""
    for m in members:
        if not m.done and stalled(m.last_heard, stall_limit(m, stall_timeout), now) \
                and not m.conn.poll():
            return m
    return None


def supervise(members: list[Member], stop, name: str, *, deadline: float | None,
              stall_timeout: float | None, grace: float,
              on_message) -> WorkerError | Interrupted | None:
    """Wait until every member has handed in its result; return the run's failure, if any.

    A member that raises, dies, or stays silent past :func:`stall_limit` fails the run, and so
    does the `deadline` (seconds, the whole run); then every member is asked to stop (`stop`)
    and gets `grace` seconds to hand in what it has. Ctrl-C (or the CLI's SIGTERM, SIGHUP)
    anywhere in here does the same and becomes the :class:`Interrupted` returned; a second one
    ends the wait at once. ``failure.results`` holds what the members handed in.
    """
    try:
        failure = _watch(members, stop, name, deadline, stall_timeout, grace, on_message)
    except KeyboardInterrupt as exc:  # a second one ended the wait: still keep what came
        stop.set()
        failure = Interrupted.during(exc, name)
    if failure is not None:
        failure.results = {m.rank: m.result for m in members if m.result is not None}
    return failure


def _watch(members, stop, name, deadline, stall_timeout, grace,
           on_message) -> WorkerError | Interrupted | None:
    end = None if deadline is None else time.monotonic() + deadline
    tick = min(0.5, heartbeat_interval(stall_timeout and max(stall_timeout, MIN_STALL_SECONDS)))
    failure: WorkerError | Interrupted | None = None
    fail_deadline = None

    def fail(error: WorkerError | Interrupted) -> None:
        nonlocal failure, fail_deadline
        failure, fail_deadline = error, time.monotonic() + grace
        stop.set()

    while not all(m.done for m in members):
        try:  # Ctrl-C (or the CLI's SIGTERM, SIGHUP) anywhere here: stop the workers, keep theirs
            now = time.monotonic()
            if failure is not None and now >= fail_deadline:
                break
            if failure is None and end is not None and now >= end:
                fail(WorkerError(f"{name}s did not finish within {deadline:g} s; stopped them.",
                                 -1))
                continue
            pending = [m for m in members if not m.done]
            ready = wait([m.conn for m in pending] + [m.proc.sentinel for m in pending], tick)
            for m in pending:
                if m.conn in ready or m.proc.sentinel in ready:
                    final = receive(m, on_message)
                    if final is None and m.proc.sentinel in ready and not m.done:
                        m.proc.join(0.1)
                        final = receive(m, on_message) or ("died", exit_reason(m.proc.exitcode))
                        m.done = True
                    if final is None:
                        continue
                    kind, payload = final
                    if kind == "ok":
                        m.result = payload
                    elif failure is None:
                        msg = (f"{name} {m.rank} raised an exception" if kind == "error"
                               else f"{name} {m.rank} {payload}")
                        fail(WorkerError(msg + "; the other workers were stopped.", m.rank,
                                         payload if kind == "error" else ""))
            # after reading what arrived: a parent that was itself descheduled blames no one
            silent = stuck(members, stall_timeout, time.monotonic()) if failure is None else None
            if silent is not None:
                silent.done = True  # nothing more will come from it: do not wait for it
                limit = stall_limit(silent, stall_timeout)
                fail(WorkerError(
                    f"{name} {silent.rank} sent nothing for {limit:g} s (no progress, no "
                    f"heartbeat: its stall timeout of {limit:g} s ran out): it is stopped, "
                    "frozen or swapped out; every process was stopped." if silent.started else
                    f"{name} {silent.rank} did not start within {limit:g} s (its stall timeout "
                    f"plus {STARTUP_SECONDS:g} s for start-up); every process was stopped.",
                    silent.rank))
        except KeyboardInterrupt as exc:  # a second one, while they stop, ends the wait
            if isinstance(failure, Interrupted):
                raise
            fail(Interrupted.during(exc, name))
            fail_deadline = min(fail_deadline, time.monotonic() + min(grace, 5.0))
    return failure


def terminate(procs: list, wait_s: float = 3.0) -> None:
    """SIGKILL every live child and reap them all (waiting up to `wait_s` s in all).

    Workers ignore SIGTERM (see the module's notes): by now they were asked to stop and had
    their grace, or they are done.
    """
    for p in procs:
        if p.is_alive():
            p.kill()
    end = time.monotonic() + wait_s
    for p in procs:
        p.join(max(0.1, end - time.monotonic()))


@contextlib.contextmanager
def resource_errors(doing: str):
    """Turn the system running out of files, processes or memory while `doing` into a
    :class:`~costtrain.errors.ResourceError` (one paragraph: what ran out and what to do)."""
    try:
        yield
    except (OSError, MemoryError, RuntimeError) as exc:  # torch: RuntimeError with the errno text
        error = ResourceError.describe(exc, doing)
        if error is None:
            raise
        raise error from None


def name_worker(rank: int) -> None:
    """Call this process ``costtrain.w<rank>`` (Linux PR_SET_NAME): `ps` and `top` show the rank."""
    _prctl(15, f"costtrain.w{rank}".encode()[:15])


def bind_worker(conn: Connection, stop, deathsig: bool = True) -> None:
    """In a long-lived worker (:mod:`costtrain.run.pool`): send :func:`report` messages on `conn`,
    answer :func:`should_stop` from `stop`, and die with the parent."""
    global _conn, _stop
    _conn, _stop = conn, stop
    _die_with_parent(deathsig)
