"""Start worker processes safely and supervise them: no hangs, no orphans, clear errors.

Rules (each from a real failure): a ``spawn`` context, never a global start method; worker
functions live in this package so a notebook kernel can start them; a worker that raises or
dies by a signal ends the call with :class:`WorkerError` naming it; Ctrl-C / a kernel
interrupt terminates every child; on Linux children also die when the parent dies.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

import multiprocessing as mp  # torch registers its tensor pickling on `import torch`

_conn: Connection | None = None  # this worker's pipe to the parent (set in the child)
_stop = None  # shared Event: the parent asks workers to stop early and hand in what they have


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


def report(kind: str, payload: Any) -> None:
    """From inside a worker: send a message (e.g. progress) to the parent's ``on_message``."""
    if _conn is not None:
        _conn.send((kind, payload))


def should_stop() -> bool:
    """From inside a worker: True once the parent asked every worker to stop early."""
    return _stop is not None and _stop.is_set()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _child(conn: Connection, stop, rank: int, target: Callable, args: tuple) -> None:
    global _conn, _stop
    _conn, _stop = conn, stop
    _die_with_parent()
    try:
        conn.send(("ok", target(rank, *args)))
    except BaseException:  # includes KeyboardInterrupt: the parent decides
        try:
            conn.send(("error", traceback.format_exc()))
        except Exception:
            pass
    finally:
        conn.close()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code} without reporting a result"


@contextlib.contextmanager
def _main_without_fake_file():
    """Hide ``__main__.__file__`` while starting children when it names no file.

    A script read from standard input (``python - < script.py``) has ``__file__ == '<stdin>'``;
    spawn would try to re-run that path in every child and fail.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    fake = path is not None and getattr(main, "__spec__", None) is None and not os.path.isfile(path)
    if fake:
        del main.__file__
    try:
        yield
    finally:
        if fake:
            main.__file__ = path


@dataclass
class _Worker:
    rank: int
    proc: Any
    conn: Connection
    done: bool = False
    result: Any = None
    messages: list = field(default_factory=list)


def run_workers(target: Callable[..., Any], args: list[tuple], *, name: str = "worker",
                timeout: float | None = None, grace: float = 5.0,
                on_message: Callable[[int, str, Any], None] | None = None,
                daemon: bool = True) -> list[Any]:
    """Run ``target(rank, *args[rank])`` in one spawned process per entry; return results by rank.

    Args:
        target: a module-level function (spawn pickles it by name).
        timeout: overall seconds before every worker is stopped and an error raised.
        grace: after a failure, seconds the others get to stop on their own (see
            :func:`should_stop`) and hand in partial results before they are terminated.
        on_message: called in the parent for each :func:`report` from a worker.
    Raises:
        WorkerError: a worker raised, died, or the timeout passed; ``.results`` holds the
            results the other workers returned.
    """
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    workers: list[_Worker] = []
    try:
        with _main_without_fake_file():
            for rank, a in enumerate(args):
                parent_end, child_end = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_child, args=(child_end, stop, rank, target, a),
                                name=f"costtrain-{name}-{rank}", daemon=daemon)
                p.start()
                child_end.close()
                workers.append(_Worker(rank, p, parent_end))
        failure = _supervise(workers, stop, name, timeout, grace, on_message)
        if failure:
            raise failure
        return [w.result for w in workers]
    finally:
        _terminate([w.proc for w in workers])
        for w in workers:
            w.conn.close()


def _receive(w: _Worker, on_message) -> tuple[str, Any] | None:
    """Read every waiting message of one worker; return its final ('ok'|'error', ...) if any."""
    final = None
    while not w.done and w.conn.poll():
        try:
            kind, payload = w.conn.recv()
        except (EOFError, OSError):
            break
        if kind in ("ok", "error"):
            final = (kind, payload)
            w.done = True
        elif on_message is not None:
            on_message(w.rank, kind, payload)
    return final


def _supervise(workers, stop, name, timeout, grace, on_message) -> WorkerError | None:
    deadline = None if timeout is None else time.monotonic() + timeout
    failure: WorkerError | None = None
    fail_deadline = None
    while not all(w.done for w in workers):
        now = time.monotonic()
        if failure is not None and now >= fail_deadline:
            break
        if failure is None and deadline is not None and now >= deadline:
            failure = WorkerError(f"{name}s did not finish within {timeout:.0f} s; stopped them.",
                                  -1)
            stop.set()
            fail_deadline = now + grace
            continue
        pending = [w for w in workers if not w.done]
        handles = [w.conn for w in pending] + [w.proc.sentinel for w in pending]
        ready = wait(handles, timeout=1.0)
        for w in pending:
            if w.conn in ready or w.proc.sentinel in ready:
                final = _receive(w, on_message)
                if final is None and w.proc.sentinel in ready and not w.done:
                    w.proc.join(0.1)
                    final = _receive(w, on_message) or ("died", _exit_reason(w.proc.exitcode))
                    w.done = True
                if final is None:
                    continue
                kind, payload = final
                if kind == "ok":
                    w.result = payload
                elif failure is None:
                    msg = (f"{name} {w.rank} raised an exception" if kind == "error"
                           else f"{name} {w.rank} {payload}")
                    failure = WorkerError(msg + "; the other workers were stopped.", w.rank,
                                          payload if kind == "error" else "")
                    stop.set()
                    fail_deadline = time.monotonic() + grace
    if failure is not None:
        failure.results = {w.rank: w.result for w in workers if w.result is not None}
    return failure


def _terminate(procs: list, wait_s: float = 3.0) -> None:
    """SIGTERM every live child, then SIGKILL the stubborn ones; reap them all."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    end = time.monotonic() + wait_s
    for p in procs:
        p.join(max(0.0, end - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(1.0)


def bind_worker(conn: Connection, stop) -> None:
    """In a long-lived worker (:mod:`costtrain.pool`): send :func:`report` messages on `conn`,
    answer :func:`should_stop` from `stop`, and die with the parent."""
    global _conn, _stop
    _conn, _stop = conn, stop
    _die_with_parent()


def exit_reason(code: int | None) -> str:
    """How a worker ended, from its exit code: 'was killed by signal SIGKILL', ..."""
    return _exit_reason(code)


def terminate(processes: list, wait_s: float = 3.0) -> None:
    """SIGTERM every live process, SIGKILL the ones still alive after `wait_s`; reap them all."""
    _terminate(processes, wait_s)
