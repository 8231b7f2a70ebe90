"""Workers forked from the package's fork server: the server imported torch and runs one
thread, each worker gets a working thread runtime of its own, spawn where asked
(tests/slow/test_forkserver_slow.py: a spawned run, and a notebook kernel)."""
from __future__ import annotations

import dataclasses
import sys
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
