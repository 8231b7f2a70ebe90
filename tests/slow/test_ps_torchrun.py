"""A multi-node launch with torchrun: two node ranks on one machine, over loopback; and what
ends ``costtrain torchrun`` early (a machine that never starts, ranks that fail): one sentence
within --timeout and a few seconds, with costtrain's exit code (issue 32)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from costtrain.result import RunResult

ROOT = Path(__file__).resolve().parents[2]


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
        rank_options = ["--mode", "sync", "--model", "mlp", "--subset", "1000", "--epochs",
                        "2", "--lr", "0.05", "--timeout", "30", "--out", str(out)]
        for node in (0, 1):  # node 0 through costtrain's launcher, node 1 plain torchrun
            where = ["--nnodes", "2", "--node-rank", str(node), "--nproc-per-node", "2",
                     "--master-addr", "127.0.0.1", "--master-port", str(port)]
            cmd = ([sys.executable, "-m", "costtrain", "torchrun", *where, "--method", "ps",
                    "--", *rank_options] if node == 0 else
                   [sys.executable, "-m", "torch.distributed.run", *where,
                    "-m", "costtrain.parameter_server", *rank_options])
            nodes.append(subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True,
                                          start_new_session=True,
                                          env=dict(env, PYTHONPATH=str(ROOT))))
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


def _launch(*args: str, cwd: Path, limit: float = 180) -> tuple[int, str, float]:
    """``costtrain torchrun ARGS`` in its own session: exit code, output, seconds."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME")}
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "costtrain", "torchrun", *args], cwd=cwd,
                         env=dict(env, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out = p.communicate(timeout=limit)[0]
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return p.returncode, out, time.monotonic() - t0


NO_PAGES = ("Traceback", "DistStoreError", "DistNetworkError", "ChildFailedError", "=====",
            "frame #")
# torch's import and the data on a busy 2-core box: the part of the time that is not waiting
START = 40


@pytest.mark.parametrize("conf", [[], ["--rdzv-conf", "timeout=600"]], ids=["default", "rdzv-conf"])
def test_a_machine_that_never_starts_ends_node_0_with_a_sentence(tmp_path, conf):
    code, out, took = _launch("--nnodes", "2", "--node-rank", "0", "--nproc-per-node", "1",
                              "--master-port", str(_free_port()), *conf, "--method", "ps", "--",
                              "--model", "mlp", "--subset", "300", "--timeout", "5",
                              cwd=tmp_path)
    assert code == 2, out
    assert "costtrain: error: node 1 never started: node 0 waited 5 s (--timeout)" in out, out
    assert "1 of 2 machines joined" in out and "--node-rank 1" in out, out
    assert not [w for w in NO_PAGES if w in out], out
    assert took < 5 + START, took  # torchrun alone waited 600 s without --rdzv-conf


def test_node_1_without_node_0_says_so(tmp_path):
    code, out, took = _launch("--nnodes", "2", "--node-rank", "1", "--master-port",
                              str(_free_port()), "--method", "local-sgd", "--", "--model", "mlp",
                              "--subset", "300", "--timeout", "5", cwd=tmp_path)
    assert code == 2, out
    assert "node 1 could not reach node 0 at 127.0.0.1:" in out and "within 5 s" in out, out
    assert not [w for w in NO_PAGES if w in out], out
    assert took < 5 + START, took


def test_ranks_that_fail_end_with_their_code_and_no_error_page(tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, _ = _launch("--standalone", "--nproc-per-node", "2", "--method", "ps", "--",
                           "--data-dir", str(tmp_path / "empty"), "--dataset", "mnist",
                           "--timeout", "20", cwd=tmp_path)
    assert code == 2, out
    assert "costtrain: rank 0: error: dataset 'mnist' not found" in out, out
    # rank 1 ends with its own error, or, when rank 0's came first, torchrun stops it (a race)
    assert re.search(r"costtrain: error: ranks 0 \((exit 2|stopped by torchrun[^)]*)\), 1 \((exit 2|"
                     r"stopped by torchrun[^)]*)\) of this machine \(node 0\) failed", out), out
    assert not [w for w in NO_PAGES if w in out], out


def test_a_mistyped_rank_option_is_refused_before_any_rendezvous(tmp_path):
    code, out, took = _launch("--nnodes", "2", "--method", "ps", "--", "--epochz", "2",
                              cwd=tmp_path, limit=60)
    assert code == 2 and "unrecognized arguments: --epochz" in out, out
