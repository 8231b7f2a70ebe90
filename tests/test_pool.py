"""The warm worker pool with real processes: re-use, fast second start, faults, stalls, exit."""
import dataclasses

import psutil

from costtrain.hogwild import train_hogwild
from costtrain.run import _testing, pool


def _small(ds, n: int):
    return dataclasses.replace(ds, train_x=ds.train_x[:n].clone(), train_y=ds.train_y[:n].clone())


def _alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_second_run_reuses_the_warm_workers_and_starts_fast(fmnist):
    ds = _small(fmnist, 600)
    first = train_hogwild("mlp", ds, processes=2, threads=1, seed=0)
    pids = pool.current().pids()
    second = train_hogwild("mlp", ds, processes=2, threads=1, seed=0)
    assert pool.current().pids() == pids  # the same processes ran both
    assert first.status == second.status == "ok" and second.samples == 2 * 600
    # a re-run pays only the warm set-up; its one-off set-up still counts the workers' start
    assert second.warm_setup_seconds < 0.5 * max(first.setup_seconds, 1.0)
    assert second.setup_seconds > second.warm_setup_seconds
    assert abs(second.test_accuracy - first.test_accuracy) < 0.05  # same seeds, same work
    assert not _testing.spawned_children()  # nothing but the pool's idle workers
    pool.close_all()
    assert not _testing.spawned_children(include_pool=True)


def test_the_pool_grows_and_a_reloaded_class_gets_a_fresh_pool(fmnist):
    pool.close_all()
    p = pool.acquire(1)
    assert len(p.pids()) == 1
    assert pool.acquire(3) is p and len(p.pids()) == 3
    fake = type("MLP", (), {"__module__": "costtrain.data.models"})  # same name, another class
    from costtrain.data.models import MLP
    p.classes["costtrain.data.models.MLP"] = MLP
    assert p.accepts([MLP]) and not p.accepts([fake])
    assert pool.acquire(2, [fake]) is not p and not any(_alive(x) for x in p.pids())
    pool.close_all()
