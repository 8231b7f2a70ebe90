"""Local SGD's launch paths and faults with real processes: torchrun with two node ranks on
loopback, a worker killed by SIGKILL, an unreachable master; no orphans."""
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from costtrain.result import RunResult
from costtrain.run._testing import FaultyNet, spawned_children
from costtrain.train.local_sgd import LocalSGDError, train_local_sgd

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


def test_killed_worker_ends_run_with_clear_error_and_partial_result(fmnist, tmp_path):
    """Rank 1 is SIGKILLed in the middle of training (by its own net, after 1500 steps, so
    that a busy machine's slow start cannot make the kill come too early)."""
    net = FaultyNet("kill", rank=1, after=1500, pid_dir=str(tmp_path))
    with pytest.raises(LocalSGDError) as info:
        train_local_sgd(net, fmnist, workers=3, average_every=2, epochs=500, batch_size=16,
                        log_every=1, timeout=30)
    err = info.value
    assert err.rank == 1 and "worker 1 (rank 1) was killed by signal SIGKILL" in str(err)
    p = err.result
    assert p.status == "partial" and p.error and p.method == "local-sgd"
    # every rank's measurements up to its last average before the kill (survivors blocked in
    # the all-reduce cannot return theirs before the timeout): losses and bytes of all three
    assert p.samples > 0 and sorted(p.worker_curves) == ["0", "1", "2"]
    assert all(c["samples"] for c in p.worker_curves.values()) and p.extra["lost"] == [1]
    assert p.extra["comm"]["per_rank"]["2"]["bytes_sent"] > 0
    pids = [int((tmp_path / f"pid.{r}").read_text()) for r in range(3)]
    time.sleep(0.5)
    assert not [q for q in pids if psutil.pid_exists(q)
                and psutil.Process(q).status() != psutil.STATUS_ZOMBIE]
    assert not spawned_children()


def test_unreachable_master_is_a_clear_error_within_the_timeout():
    env = dict(_env(), RANK="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()))
    out = subprocess.run([sys.executable, "-m", "costtrain.local_sgd", "--timeout", "3",
                          "--model", "mlp", "--subset", "100"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    assert "could not join the local SGD group at 127.0.0.1:" in out.stderr
    assert "within 3 s" in out.stderr and "Traceback" not in out.stderr


def test_module_without_torchrun_environment_says_how_to_start():
    out = subprocess.run([sys.executable, "-m", "costtrain.local_sgd", "--model", "mlp",
                          "--subset", "100"], env=_env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "start this module with torchrun" in out.stderr


def _torchrun(node: int, port: int, timeout: int, *more: str) -> list[str]:
    """The README's torchrun command for node `node` of two, with its rendezvous timeout."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank",
            str(node), "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port",
            str(port), "--rdzv-conf", f"timeout={timeout}", "-m", "costtrain.local_sgd",
            "--model", "mlp", "--subset", "300", "--timeout", str(timeout), *more]


def test_torchrun_node_that_never_starts_ends_node_0_within_the_timeout():
    """Node 1's torchrun never runs: with the README's --rdzv-conf timeout, node 0's torchrun
    gives up (its own message: one of two agents joined) instead of waiting for ever."""
    out = subprocess.run(_torchrun(0, _free_port(), 5), env=_env(), capture_output=True,
                         text=True, timeout=300, start_new_session=True)  # a hang guard
    # torchrun's own rendezvous timeout ended it (not the guard, which would raise here)
    assert out.returncode != 0 and "1/2 clients joined" in out.stderr, out.stderr[-2000:]


def test_torchrun_node_whose_processes_never_join_is_named(tmp_path):
    """Both torchruns start, but node 1's process fails before it joins (no data there):
    node 0's rank names node 1 within costtrain's --timeout, not gloo's or torchrun's."""
    port, nodes = _free_port(), []
    try:
        for node, more in ((0, ()), (1, ("--dataset", "mnist", "--data-dir", str(tmp_path)))):
            nodes.append(subprocess.Popen(_torchrun(node, port, 10, *more), env=_env(),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, start_new_session=True))
        logs = [p.communicate(timeout=300)[0] for p in nodes]  # a hang guard
    finally:
        for p in nodes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert "'mnist' not found" in logs[1] and nodes[0].returncode != 0, logs
    assert ("costtrain: rank 0: error: rank 1 (node 1: the torchrun started with --node-rank 1) "
            "did not join the local SGD group at 127.0.0.1") in logs[0], logs[0][-3000:]
    # costtrain's --timeout 10 fired (its message), not gloo's or torchrun's
    assert "within 10 s" in logs[0] and "Traceback" not in logs[0].split("costtrain: rank 0")[0]
