"""Local SGD's launch paths and faults with real processes: torchrun with two node ranks on
loopback, a worker killed by SIGKILL, an unreachable master; no orphans."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

from costtrain._testing import spawned_children
from costtrain.local_sgd import LocalSGDError, train_local_sgd
from costtrain.result import RunResult

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}


def test_torchrun_two_nodes_over_loopback(tmp_path):
    port, out = _free_port(), tmp_path / "l.json"
    nodes = []
    try:
        for node in (0, 1):
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                   "--node-rank", str(node), "--nproc-per-node", "1",
                   "--master-addr", "127.0.0.1", "--master-port", str(port),
                   "-m", "costtrain.local_sgd", "--average-every", "4", "--model", "mlp",
                   "--subset", "1000", "--epochs", "2", "--lr", "0.05", "--timeout", "30",
                   "--eval-every", "1000", "--out", str(out)]
            nodes.append(subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True,
                                          start_new_session=True))
        logs = [p.communicate(timeout=150)[0] for p in nodes]
    finally:
        for p in nodes:  # never leave a node (or its ranks) behind
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert [p.returncode for p in nodes] == [0, 0], logs
    assert "local-sgd 2w H=4" in logs[0] and "test accuracy" in logs[0]  # rank 0 on node 0
    assert "communication" in logs[0] and "RuntimeWarning" not in logs[0] + logs[1]
    r = RunResult.load(out)
    assert r.status == "ok" and r.method == "local-sgd" and r.config["workers"] == 2
    assert r.config["master"] == f"127.0.0.1:{port}" and r.samples == 2000
    assert sorted(r.worker_curves) == ["0", "1"]  # rank 1's report came over the group
    assert r.extra["comm"]["per_rank"]["1"]["bytes_sent"] > 0
    assert r.extra["steps"] == 16 and r.extra["averages"] == 4  # 2 x ceil(500 / 64) steps, H 4
    assert r.test_accuracy > 0.3 and len(r.eval_curve["samples"]) >= 2


def _connected(p: psutil.Process, n: int) -> bool:
    try:
        return len([c for c in p.net_connections("tcp") if c.status == "ESTABLISHED"]) >= n
    except psutil.NoSuchProcess:
        return False


def test_killed_worker_ends_run_with_clear_error_and_partial_result(fmnist):
    box = {}

    def run():
        try:
            box["result"] = train_local_sgd("mlp", fmnist, workers=3, average_every=2,
                                            epochs=500, log_every=1, timeout=30)
        except Exception as exc:
            box["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    deadline, ranks = time.monotonic() + 90, []
    while time.monotonic() < deadline and not (len(ranks) == 3 and _connected(ranks[1], 2)):
        time.sleep(0.2)
        ranks = sorted(spawned_children(), key=lambda p: (p.create_time(), p.pid))
    assert len(ranks) == 3, "the run did not start its 3 processes"
    pids = [p.pid for p in ranks]
    time.sleep(2.0)  # the group is up: let it train a little
    os.kill(pids[1], signal.SIGKILL)
    killed = time.monotonic()
    t.join(90)
    assert not t.is_alive() and time.monotonic() - killed < 60
    assert "result" not in box, "the run finished before the kill: make it longer"
    err = box["error"]
    assert isinstance(err, LocalSGDError) and err.rank == 1
    assert "worker 1 (rank 1) was killed by signal SIGKILL" in str(err)
    p = err.result
    assert p.status == "partial" and p.error and p.method == "local-sgd"
    assert p.samples > 0 and "0" in p.worker_curves and p.worker_curves["0"]["samples"]
    assert p.test_accuracy == p.test_accuracy  # rank 0 survived: its model was evaluated
    assert 1 in p.extra["lost"]
    time.sleep(0.5)
    assert not [q for q in pids if psutil.pid_exists(q)
                and psutil.Process(q).status() != psutil.STATUS_ZOMBIE]


def test_unreachable_master_is_a_clear_error_within_the_timeout():
    env = dict(_env(), RANK="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()))
    t = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "costtrain.local_sgd", "--timeout", "3",
                          "--model", "mlp", "--subset", "100"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    assert "could not join the local SGD group at 127.0.0.1:" in out.stderr
    assert "within 3 s" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - t < 45


def test_module_without_torchrun_environment_says_how_to_start():
    out = subprocess.run([sys.executable, "-m", "costtrain.local_sgd", "--model", "mlp",
                          "--subset", "100"], env=_env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "start this module with torchrun" in out.stderr
