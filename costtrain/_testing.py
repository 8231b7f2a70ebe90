"""Worker functions used by the tests (spawn needs them importable from the package)."""
from __future__ import annotations

import os
import signal
import time

from . import procs


def square(rank: int, x: int) -> int:
    procs.report("progress", x)
    return x * x


def fail_on(rank: int, bad_rank: int, sleep: float = 30.0) -> int:
    """Rank `bad_rank` raises; the others wait (checking should_stop) and return their rank."""
    if rank == bad_rank:
        raise ValueError(f"boom from {rank}")
    end = time.monotonic() + sleep
    while time.monotonic() < end and not procs.should_stop():
        time.sleep(0.05)
    return rank


def kill_self(rank: int, bad_rank: int, sleep: float = 30.0) -> int:
    """Rank `bad_rank` kills itself with SIGKILL; the others sleep without checking."""
    if rank == bad_rank:
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(sleep)
    return rank


def sleep_forever(rank: int, pid_file: str) -> None:
    with open(f"{pid_file}.{rank}", "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(0.1)
