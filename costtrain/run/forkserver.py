"""Workers forked from a server that has already imported torch: start-up that does not grow
with the workers.

A spawned worker is a fresh interpreter that imports torch (1.5-3 s, each worker, all at once
on a small machine). Here one *fork server* (multiprocessing's ``forkserver`` machinery) is
started first, imports torch and the package's loops once, and forks every worker from that
state: a worker is then ready in tens of milliseconds. The command line starts it before it
imports torch itself and forks the workers as soon as it is ready, so its imports and the
forks overlap the parent's imports and the data loading (:func:`costtrain.run.pool.prestart`).

Why this is safe where a plain ``fork`` is not:

* The server is a fresh interpreter started with fork + exec, not a fork of the caller: a
  notebook kernel's threads (ZMQ, heartbeat) and locks never reach a worker.
* It imports and does nothing else: torch starts its intra-op and inter-op thread pools
  (OpenMP, MKL) lazily, at the first parallel operation, and CUDA at the first CUDA call, so
  the server has one thread and no pools when it forks (:func:`threads_of`, tested), and each
  worker sets its own thread count on a clean runtime. PyTorch's multiprocessing notes allow
  ``forkserver`` for CUDA for the same reason.
* It is this package's own server, not the process-wide one that
  ``multiprocessing.get_context("forkserver")`` shares with the user's code: its preloads and
  its signal settings touch no one else's processes.
* Spawn semantics stay where they matter: a worker still receives its function by reference
  (a notebook-defined function is refused as before) and re-imports a script's ``__main__``
  (the guard rule holds).
* It ignores SIGINT, SIGTERM and SIGHUP, which reach a whole process group (its workers ignore
  them too: the parent decides), and ends with the parent: killed with it while it imports
  (``PR_SET_PDEATHSIG``), then when the last process holding its "alive" pipe ends (workers
  close their copy, :func:`detach`). Its workers die with it (``PR_SET_PDEATHSIG``), so a
  killed parent still leaves no process behind (:mod:`costtrain.run.in_server`).

Elsewhere than Linux (macOS forbids forking after some system libraries are loaded; Windows
cannot fork), or with ``COSTTRAIN_START_METHOD=spawn``, workers are spawned as before.

This module does not import torch: the command line starts the server before torch is loaded.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import sys
import threading
from multiprocessing import context as mp_context
from multiprocessing import reduction, spawn, util
from typing import Any

from ..errors import CosttrainError
from . import procs

try:  # fd passing between processes (not on Windows): what a fork server needs
    from multiprocessing import forkserver as mp_forkserver
    from multiprocessing import popen_forkserver
except ImportError:
    mp_forkserver = popen_forkserver = None  # type: ignore[assignment]

SERVER_SIDE = "costtrain.run.in_server"  # what the server imports: settings, then the loops
ENV = "COSTTRAIN_START_METHOD"  # 'spawn' turns the fork server off
METHODS = ("forkserver", "spawn")

_lock = threading.Lock()


def start_method() -> str:
    """``forkserver`` on Linux (unless ``$COSTTRAIN_START_METHOD`` says ``spawn``), else
    ``spawn``."""
    asked = os.environ.get(ENV, "").strip().lower()
    if asked and asked not in METHODS:
        raise CosttrainError(f"${ENV} must be one of {', '.join(METHODS)}, got {asked!r}.")
    if asked == "spawn" or not sys.platform.startswith("linux") or popen_forkserver is None:
        return "spawn"
    return "forkserver"


def start() -> int | None:
    """Start the server now and return its pid without waiting for its imports (those of
    :mod:`costtrain.run.in_server`); ``None`` under spawn. Later calls return the running
    server's pid (a server that died is started again)."""
    if start_method() != "forkserver":
        return None
    with _lock:
        procs.start_resource_tracker()  # first, so that it ignores SIGHUP (see there)
        _server.set_forkserver_preload([SERVER_SIDE])
        if pid() is None:  # a new server: started with the stop signals held, as a worker is
            with procs.held_while_starting():  # (a Ctrl-C in its first milliseconds printed a
                _server.ensure_running()          # KeyboardInterrupt traceback); at once
        else:
            _server.ensure_running()
        return pid()


def pid() -> int | None:
    """The server's pid, if it was started in this process (multiprocessing's ForkServer
    keeps it in an attribute of its own; the same in CPython 3.8 to 3.14)."""
    return getattr(globals().get("_server"), "_forkserver_pid", None)


def context() -> mp_context.BaseContext:
    """The context a pool starts its workers with: this package's fork server, or spawn."""
    if start() is None:
        return mp.get_context("spawn")
    return _CONTEXT


def detach() -> None:
    """In a worker forked by the server: close its copy of the server's "alive" pipe, so that
    the server ends when the parent does (it waits for every holder to close it)."""
    if mp_forkserver is None:
        return
    fd = getattr(mp_forkserver._forkserver, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        mp_forkserver._forkserver._forkserver_alive_fd = None


def threads_of(process_id: int) -> int | None:
    """How many threads a process has (Linux ``/proc``), or None where that cannot be read."""
    try:
        return len(os.listdir(f"/proc/{process_id}/task"))
    except OSError:
        return None


class _Popen(popen_forkserver.Popen if popen_forkserver else object):  # type: ignore[misc]
    """multiprocessing's forkserver launcher, asking this package's server (CPython's
    ``popen_forkserver.Popen._launch``, with ``_server`` in place of the process-wide one)."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        buf = io.BytesIO()
        mp_context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            mp_context.set_spawning_popen(None)
        self.sentinel, w = _server.connect_to_new_process(self._fds)
        parent_w = os.dup(w)  # the child's sentinel of this process
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = mp_forkserver.read_signed(self.sentinel)


if popen_forkserver is not None:
    _server = mp_forkserver.ForkServer()  # ours, not multiprocessing's process-wide one

    class _Process(mp_context.ForkServerProcess):
        _start_method = "forkserver"

        @staticmethod
        def _Popen(process_obj: Any) -> _Popen:
            return _Popen(process_obj)

    class _Context(mp_context.ForkServerContext):
        Process = _Process

    _CONTEXT = _Context()
