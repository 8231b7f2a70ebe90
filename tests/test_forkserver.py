"""Workers forked from the package's fork server: the server imported torch and runs one
thread, each worker gets a working thread runtime of its own, spawn where asked, and the same
holds inside a notebook kernel."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from costtrain.hogwild import train_hogwild
from costtrain.run import _testing, forkserver, pool
from costtrain.utils import CosttrainError

forked_only = pytest.mark.skipif(forkserver.start_method() != "forkserver",
                                 reason="workers are spawned on this platform")


def _small(ds, n: int):
    return dataclasses.replace(ds, train_x=ds.train_x[:n].clone(), train_y=ds.train_y[:n].clone())


@forked_only
def test_the_server_imported_torch_and_started_no_thread(fmnist):
    pool.close_all()
    r = train_hogwild("mlp", _small(fmnist, 300), processes=2, threads=1, eval_every=150)
    server = forkserver.pid()
    assert r.status == "ok" and server is not None
    assert forkserver.threads_of(server) == 1  # no OpenMP/MKL pool, no helper thread to fork
    assert "libtorch" in Path(f"/proc/{server}/maps").read_text()  # torch was imported there
    assert [psutil.Process(p).ppid() for p in pool.current().pids()] == [server, server]
    pool.close_all()
    assert not _testing.spawned_children(include_pool=True)
    assert psutil.pid_exists(server)  # idle, ready for the next pool (it ends with us)


@forked_only
def test_each_forked_worker_sets_its_own_threads_and_computes_in_parallel():
    pool.close_all()
    out = pool.acquire(2).run(_testing.torch_threads, [(2,), (1,)])
    assert [(n, ok) for n, _, ok in out] == [(2, True), (1, True)]
    assert out[0][1] > out[1][1]  # worker 0 started its second OpenMP thread, worker 1 did not
    pool.close_all()


def test_the_start_method_is_forkserver_on_linux_unless_spawn_is_asked(monkeypatch):
    monkeypatch.setenv(forkserver.ENV, "spawn")
    assert forkserver.start_method() == "spawn"
    monkeypatch.setenv(forkserver.ENV, "fork")
    with pytest.raises(CosttrainError, match="COSTTRAIN_START_METHOD must be one of"):
        forkserver.start_method()
    monkeypatch.delenv(forkserver.ENV)
    expected = "forkserver" if sys.platform.startswith("linux") else "spawn"
    assert forkserver.start_method() == expected


@pytest.mark.slow
def test_spawn_when_asked_still_trains(tmp_path):
    script = textwrap.dedent("""
        from costtrain.data.datasets import load_dataset
        from costtrain.hogwild import train_hogwild
        from costtrain.run import forkserver, pool
        r = train_hogwild("mlp", load_dataset(subset=200, test_subset=100), processes=2,
                          threads=1, eval_every=100)
        print(r.status, pool.current().ctx.get_start_method(), forkserver.pid())
    """)
    env = dict(os.environ, **{forkserver.ENV: "spawn"})
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "spawn", "None"]


@pytest.mark.slow
@forked_only
def test_inside_a_notebook_kernel_workers_come_from_the_server_and_end_with_it():
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    code = textwrap.dedent("""
        import psutil
        from costtrain.data.datasets import load_dataset
        from costtrain.hogwild import train_hogwild
        from costtrain.run import forkserver, pool
        ds = load_dataset(subset=300, test_subset=100)
        runs = [train_hogwild("mlp", ds, processes=2, threads=1, eval_every=150) for _ in "ab"]
        server = forkserver.pid()
        print("RESULT", [r.status for r in runs], forkserver.threads_of(server),
              [psutil.Process(p).ppid() == server for p in pool.current().pids()],
              server, *pool.current().pids())
    """)
    try:
        out = []
        reply = kc.execute_interactive(code, timeout=600, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        line = next(x for x in "".join(out).splitlines() if x.startswith("RESULT"))
        assert "['ok', 'ok'] 1" in line and "[True, True]" in line, line
        pids = [int(p) for p in line.split()[-3:]]  # the server and the two workers
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    for pid in pids:
        try:
            psutil.Process(pid).wait(30)  # the kernel is gone: so are its server and workers
        except psutil.NoSuchProcess:
            pass
