"""Faults with real processes: a worker killed by SIGKILL, an unreachable master, no orphans."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from costtrain.run import pool
from costtrain.run._testing import spawned_children
from costtrain.train.parameter_server import ParameterServerError, train_parameter_server


def _spawned() -> list:
    """Live spawned ranks of this test process, in start (= rank) order (the runs below start
    with no warm pool, so its workers are exactly the run's ranks)."""
    return sorted(spawned_children(include_pool=True), key=lambda p: (p.create_time(), p.pid))


def _connected(p: psutil.Process, n: int) -> bool:
    try:
        return len([c for c in p.net_connections("tcp") if c.status == "ESTABLISHED"]) >= n
    except psutil.NoSuchProcess:
        return False


def _run_and_kill(fmnist, mode: str, victim: int):
    """Start a long run in a thread, SIGKILL rank `victim` once it trains; return the error."""
    box = {}
    pool.close_all()  # the ranks start fresh: one process each, in rank order

    def run():
        try:
            box["result"] = train_parameter_server("mlp", fmnist, mode=mode, workers=2,
                                                   epochs=500, log_every=1, timeout=30)
        except Exception as exc:
            box["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 90
    ranks = []
    while time.monotonic() < deadline and not (len(ranks) == 3 and _connected(ranks[victim], 2)):
        time.sleep(0.2)
        ranks = _spawned()
    assert len(ranks) == 3, "the run did not start its 3 processes"
    pids = [p.pid for p in ranks]
    time.sleep(2.0)  # the group is up: let it train a little
    os.kill(pids[victim], signal.SIGKILL)
    t.join(90)  # a hang guard: the run ends with an error, it does not wait for 500 epochs
    assert not t.is_alive()
    assert "result" not in box, "the run finished before the kill: make it longer"
    time.sleep(0.5)
    assert not [p for p in pids if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    return box["error"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_killed_worker_ends_run_with_clear_error_and_partial_result(fmnist, mode):
    err = _run_and_kill(fmnist, mode, victim=1)
    assert isinstance(err, ParameterServerError)
    assert err.rank == 1 and "worker 1 (rank 1) was killed" in str(err) and "SIGKILL" in str(err)
    p = err.result
    assert err.result is p and p.status == "partial" and p.error and p.method == f"ps-{mode}"
    assert len(p.loss_curve["loss"]) > 0 and p.samples > 0  # the server's losses so far
    assert "2" in p.worker_curves and p.worker_curves["2"]["samples"]  # the survivor's report
    assert p.extra["lost"] and "1" in [str(k) for k in p.extra["lost"]]


def test_killed_server_ends_run(fmnist):
    err = _run_and_kill(fmnist, "async", victim=0)
    assert isinstance(err, ParameterServerError) and err.rank == 0
    assert "the server (rank 0) was killed" in str(err)
    assert err.result.status == "partial" and err.result.worker_curves  # workers' losses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "costtrain.parameter_server", *args],
                          env=full, capture_output=True, text=True, timeout=timeout)


def test_unreachable_master_is_a_clear_error_within_the_timeout():
    env = dict(RANK="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    out = _rank(env, "--timeout", "3", "--model", "mlp", "--subset", "100")
    assert out.returncode == 2
    assert "could not join the parameter server group at 127.0.0.1:" in out.stderr
    assert "within 3 s" in out.stderr and "Traceback" not in out.stderr


def test_module_without_torchrun_environment_says_how_to_start():
    out = _rank({}, "--model", "mlp", "--subset", "100")
    assert out.returncode == 2 and "start this module with torchrun" in out.stderr
