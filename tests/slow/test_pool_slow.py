"""The warm worker pool's faults, stalls, warm-up and exit with real processes (the slow half of
test_pool.py)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from test_pool import _alive, _small

from costtrain.hogwild import train_hogwild
from costtrain.run import _testing, pool
from costtrain.run.procs import WorkerError


def test_warm_up_starts_the_workers_once_so_no_run_pays_for_them(fmnist):
    pool.close_all()
    first = pool.warm_up(2)  # spawned: they import torch; forked: the server had
    assert first > 0 and all(m.warm for m in pool.current().members)
    pids = pool.current().pids()
    assert pool.warm_up(2) < 0.1 and pool.current().pids() == pids  # already warm: nothing to do
    r = train_hogwild("mlp", _small(fmnist, 300), processes=2, threads=1, seed=0)
    assert r.status == "ok" and r.extra["startup"]["waited"] == 0  # it waited for no worker
    assert r.extra["startup"]["fresh_workers"] == 0 and r.extra["startup"]["unpaid"] > 0
    assert pool.current().pids() == pids
    pool.close_all()
    assert not _testing.spawned_children(include_pool=True)


def test_a_failure_closes_the_pool_and_the_next_run_gets_a_fresh_one(fmnist):
    train_hogwild("mlp", _small(fmnist, 300), processes=2, threads=1)
    old = pool.current().pids()
    with pytest.raises(WorkerError, match="hogwild worker 1 raised"):
        train_hogwild(_testing.FaultyNet("raise", rank=1, after=2), _small(fmnist, 300),
                      processes=2, threads=1, batch_size=8)
    assert pool.current() is None and not any(_alive(p) for p in old)
    r = train_hogwild("mlp", _small(fmnist, 300), processes=2, threads=1)
    assert r.status == "ok" and set(pool.current().pids()).isdisjoint(old)


def test_a_stopped_worker_is_named_within_the_timeout(fmnist):
    net = _testing.FaultyNet("slow", rank=-1, sleep=0.05)
    train_hogwild(net, _small(fmnist, 64), processes=2, threads=1, batch_size=8)  # warm pool
    victim = pool.current().pids()[1]
    os.kill(victim, signal.SIGSTOP)
    try:
        with pytest.raises(WorkerError, match="hogwild worker 1 sent nothing for 5 s") as e:
            train_hogwild(net, _small(fmnist, 3000), processes=2, threads=1, batch_size=8,
                          timeout=5)
    finally:
        if _alive(victim):
            os.kill(victim, signal.SIGCONT)
    assert e.value.rank == 1 and e.value.result.status == "partial"
    assert e.value.result.samples < 3000  # worker 0 (0.05 s a batch of 8) was stopped midway
    assert not _alive(victim) and not _testing.spawned_children(include_pool=True)


def test_interpreter_exit_closes_the_pool_and_a_killed_parent_leaves_none(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from costtrain.run import forkserver, pool
        from costtrain.data.datasets import load_dataset
        from costtrain.hogwild import train_hogwild
        ds = load_dataset(subset=200, test_subset=100)
        train_hogwild("mlp", ds, processes=2, threads=1)
        server = [forkserver.pid()] if forkserver.pid() else []  # forked: their server too
        pids = pool.current().pids() + server
        open({str(tmp_path / 'pids')!r}, "w").write(" ".join(map(str, pids)))
        if sys.argv[1] == "hang":
            import time; time.sleep(600)
    """)
    done = subprocess.run([sys.executable, "-c", script, "exit"], capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    time.sleep(0.5)
    assert not any(_alive(p) for p in pids), "pool workers (or their server) outlived the interpreter"

    (tmp_path / "pids").unlink()
    parent = subprocess.Popen([sys.executable, "-c", script, "hang"])
    for _ in range(3000):
        if (tmp_path / "pids").exists() and (tmp_path / "pids").read_text():
            break
        time.sleep(0.1)
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    parent.kill()
    parent.wait(10)
    for _ in range(50):
        if not any(_alive(p) for p in pids):
            break
        time.sleep(0.1)
    alive = [p for p in pids if _alive(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, "pool workers (or their server) outlived their killed parent"


def test_warm_up_from_a_script_without_main_guard_says_so(tmp_path):
    """A worker that finds itself re-running an unguarded script ends at once; warm_up names
    the guard instead of waiting for a start that will never come."""
    script = tmp_path / "unguarded.py"
    script.write_text("from costtrain.run import pool\npool.warm_up(2)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and "MainGuardError" in done.stderr, done.stderr
    assert "did not start within" not in done.stderr
