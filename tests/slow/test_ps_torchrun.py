"""A multi-node launch with torchrun: two node ranks on one machine, over loopback."""
import os
import signal
import socket
import subprocess
import sys

from costtrain.result import RunResult


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_nodes_over_loopback(tmp_path):
    port, out = _free_port(), tmp_path / "ps.json"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME")}
    nodes = []
    try:
        for node in (0, 1):
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                   "--node-rank", str(node), "--nproc-per-node", "2",
                   "--master-addr", "127.0.0.1", "--master-port", str(port),
                   "-m", "costtrain.parameter_server", "--mode", "sync", "--model", "mlp",
                   "--subset", "1000", "--epochs", "2", "--lr", "0.05", "--timeout", "30",
                   "--out", str(out)]
            nodes.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True,
                                          start_new_session=True))
        logs = [p.communicate(timeout=150)[0] for p in nodes]
    finally:
        for p in nodes:  # never leave a node (or its ranks) behind
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert [p.returncode for p in nodes] == [0, 0], logs
    assert "ps-sync 3w" in logs[0] and "test accuracy" in logs[0]  # rank 0 = server, node 0
    assert "RuntimeWarning" not in logs[0] + logs[1]  # -m runs a module the package left alone
    r = RunResult.load(out)
    assert r.status == "ok" and r.method == "ps-sync"
    assert r.config["workers"] == 3 and r.config["master"] == f"127.0.0.1:{port}"
    assert r.samples == 2000 and sorted(r.worker_curves) == ["1", "2", "3"]
    assert sum(c["samples"][-1] for c in r.worker_curves.values()) == 2000
    assert r.test_accuracy > 0.3 and r.setup_seconds > 0
