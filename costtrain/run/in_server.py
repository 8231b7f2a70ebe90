"""What the package's fork server (:mod:`costtrain.run.forkserver`) imports, and nowhere else.

In order: ignore SIGINT, SIGTERM and SIGHUP (multiprocessing ignores SIGINT only after the
imports), which Ctrl-C, ``timeout``, systemd, Slurm and a closed terminal send to a whole
process group: a server
that died of one would take the workers it forked with it before they hand in their results;
die with the parent while importing (``PR_SET_PDEATHSIG``; afterwards the server ends when the
parent's end closes its "alive" pipe); take a fork request that its client abandoned (out of
file descriptors, say) as aborted instead of crashing with a traceback on the user's
terminal, and keep quiet a worker that fails before it starts because its parent is ending; then import what every worker needs (:func:`costtrain.run.pool.preload`), so that
no worker imports it again. No thread is started and torch runs no operation here.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import os
import signal
import sys
import traceback
from multiprocessing import reduction

PR_SET_PDEATHSIG = 1


def _ignore_group_signals() -> None:
    # SIGINT too: multiprocessing ignores it only once the preload is done, and a Ctrl-C to
    # the process group while the server imports torch printed a KeyboardInterrupt traceback
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _death_signal(sig: int) -> None:
    """``PR_SET_PDEATHSIG`` (Linux): `sig` when the parent's thread that started us ends; 0: none."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


_recvfds = reduction.recvfds


def _recvfds_or_abort(sock, size):
    """multiprocessing's ``recvfds``; a client that hung up mid-request is an aborted request,
    which the server's loop skips (an ``EOFError`` would end the server with a traceback)."""
    try:
        return _recvfds(sock, size)
    except EOFError:
        raise ConnectionAbortedError(errno.ECONNABORTED, "fork request abandoned") from None


def _restore_recvfds() -> None:
    reduction.recvfds = _recvfds  # a worker gets multiprocessing's own back
    sys.excepthook = _quiet_if_never_started


def _quiet_if_never_started(kind, value, tb) -> None:
    """A forked worker that fails before it starts, while it reads what its parent sent (the
    parent refused its input or ran out of memory and is ending, so the semaphores it sent are
    gone), leaves no traceback on the user's terminal: the parent has said what went wrong,
    or, still running, names the worker that ended while starting. Any later failure is
    printed as usual."""
    frames = [f.f_code.co_name for f, _ in traceback.walk_tb(tb)]
    if "_main" in frames and "_bootstrap" not in frames:
        return
    sys.__excepthook__(kind, value, tb)


def _prepare() -> None:
    _ignore_group_signals()
    _death_signal(signal.SIGKILL)
    reduction.recvfds = _recvfds_or_abort
    os.register_at_fork(after_in_child=_restore_recvfds)
    from .pool import preload
    for name in preload():
        with contextlib.suppress(ImportError):  # a worker imports it, and says what is wrong
            importlib.import_module(name)
    _death_signal(0)  # from now on the "alive" pipe tells it that the parent has ended


_prepare()
