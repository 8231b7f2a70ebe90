"""Worker functions used by the tests (spawn needs them importable from the package)."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import torch
import torch.nn as nn

from . import procs


def square(rank: int, x: int) -> int:
    procs.report("progress", x)
    return x * x


def _wait_for_stop(rank: int, sleep: float) -> int | None:
    """Wait up to `sleep` s for the parent's stop request: `rank` if it came, else None."""
    end = time.monotonic() + sleep
    while time.monotonic() < end:
        if procs.should_stop():
            return rank
        time.sleep(0.05)
    return None


def fail_on(rank: int, bad_rank: int, sleep: float = 120.0) -> int | None:
    """Rank `bad_rank` raises; the others wait for the stop request and return their rank
    (None if none came within `sleep` s: a test sees that the stop did not arrive)."""
    if rank == bad_rank:
        raise ValueError(f"boom from {rank}")
    return _wait_for_stop(rank, sleep)


def kill_self(rank: int, bad_rank: int, sleep: float = 30.0) -> int:
    """Rank `bad_rank` kills itself with SIGKILL; the others sleep without checking."""
    if rank == bad_rank:
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(sleep)
    return rank


def stop_self(rank: int, bad_rank: int, sleep: float = 120.0) -> int | None:
    """Rank `bad_rank` freezes itself with SIGSTOP (a stuck worker); the others wait for the
    stop request as :func:`fail_on`'s do."""
    if rank == bad_rank:
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGSTOP)
    return _wait_for_stop(rank, sleep)


def sleep_forever(rank: int, pid_file: str) -> None:
    with open(f"{pid_file}.{rank}", "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(0.1)


class FaultyNet(nn.Module):
    """A linear net that misbehaves inside Hogwild! worker `rank` after `after` forward calls.

    mode: ``raise`` (an exception), ``kill`` (SIGKILL itself), ``stop`` (SIGSTOP itself: a stuck
    worker) or ``slow`` (every worker sleeps `sleep` s per call). With `pid_dir`, each worker writes its pid to ``pid_dir/pid.<rank>``.
    """

    def __init__(self, mode: str, rank: int = 1, after: int = 3, sleep: float = 0.05,
                 pid_dir: str | None = None, in_features: int = 784) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, 10)
        self.mode, self.rank, self.after, self.sleep, self.pid_dir = mode, rank, after, sleep, pid_dir
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = mp.current_process().name
        if name.startswith("costtrain-"):
            rank = int(name.rsplit("-", 1)[1])
            self.calls += 1
            if self.pid_dir and self.calls == 1:
                with open(os.path.join(self.pid_dir, f"pid.{rank}"), "w") as f:
                    f.write(str(os.getpid()))
            if rank == self.rank and self.calls > self.after:
                if self.mode == "raise":
                    raise RuntimeError(f"injected failure in worker {rank}")
                if self.mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if self.mode == "stop":
                    os.kill(os.getpid(), signal.SIGSTOP)
            if self.mode == "slow":
                time.sleep(self.sleep)
        return self.fc(x.flatten(1))


class SlowEvalNet(nn.Module):
    """A linear net whose evaluation (eval mode) sleeps `sleep` s per batch: a parameter server
    that evaluates for seconds while its workers wait for their answers."""

    def __init__(self, sleep: float = 0.4, in_features: int = 784) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, 10)
        self.sleep = sleep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            time.sleep(self.sleep)
        return self.fc(x.flatten(1))


SERVER_CODE = "multiprocessing.forkserver import main"  # a fork server's (and its forks') command


def is_worker(p) -> bool:
    """Whether the psutil process `p` is a spawned worker or one forked by a fork server
    (forks keep the server's command line, so: a child of a process with that command)."""
    cmd = " ".join(p.cmdline())
    if "spawn_main" in cmd:
        return True
    return SERVER_CODE in cmd and SERVER_CODE in " ".join(p.parent().cmdline())


def spawned_children(include_pool: bool = False) -> list:
    """Live worker processes of this process, spawned or forked by the fork server (not
    zombies, not the resource tracker, not the idle fork server itself).

    The idle workers of the warm pool (:mod:`costtrain.run.pool`) outlive runs on purpose and are
    left out unless `include_pool`; a failed run closes its pool, so they count then.
    """
    import psutil

    from . import pool
    warm = set() if include_pool or pool.current() is None else set(pool.current().pids())
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.pid not in warm and is_worker(p):
                out.append(p)
        except (psutil.NoSuchProcess, AttributeError):  # gone, or no parent any more
            pass
    return out



def fill(rank: int, t: torch.Tensor, value: float) -> float:
    """Write `value` into the first element of `t` (shared with the parent?) and return its sum."""
    t.view(-1)[0] = value
    return float(t.sum())


class StepClock(nn.Module):
    """A linear net that notes when it works: each training forward in a worker appends its
    monotonic time to ``folder/steps.<rank>``; each evaluation forward (eval mode, any process)
    sleeps `sleep` s and appends its (start, end) to ``folder/evals``."""

    def __init__(self, folder: str, sleep: float = 0.2, in_features: int = 784) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, 10)
        self.folder, self.sleep = folder, sleep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = mp.current_process().name
        if self.training and name.startswith("costtrain-"):
            with open(os.path.join(self.folder, f"steps.{name.rsplit('-', 1)[1]}"), "a") as f:
                f.write(f"{time.monotonic()}\n")
        elif not self.training:
            t = time.monotonic()
            time.sleep(self.sleep)
            with open(os.path.join(self.folder, "evals"), "a") as f:
                f.write(f"{t} {time.monotonic()}\n")
        return self.fc(x.flatten(1))


def torch_threads(rank: int, n: int, *pool_args) -> tuple[int, int, bool]:
    """In a worker: set `n` intra-op threads and run a parallel matrix product; return torch's
    thread count, the process's OS threads (Linux; 0 elsewhere) and whether the product is
    right (the pool's start event and counter, `pool_args`, are unused)."""
    torch.set_num_threads(n)
    x = torch.eye(512) * 2
    ok = bool(torch.equal(x @ x, torch.eye(512) * 4))
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = 0
    return torch.get_num_threads(), threads, ok
