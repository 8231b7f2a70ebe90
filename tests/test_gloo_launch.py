"""The one launcher of the distributed methods (costtrain.train.launch): every check it makes before a
process starts holds for each method that uses it."""
import pytest

from costtrain.run._testing import spawned_children
from costtrain.run.guards import MAX_PROCESSES_PER_CORE, CosttrainWarning
from costtrain.train.local_sgd import train_local_sgd
from costtrain.train.parameter_server import train_parameter_server
from costtrain.utils import CosttrainError, num_cores

DISTRIBUTED = {"parameter server": train_parameter_server, "local SGD": train_local_sgd}


@pytest.mark.parametrize("method", DISTRIBUTED)
def test_too_many_workers_is_refused_before_any_process(fmnist, method):
    workers = MAX_PROCESSES_PER_CORE * num_cores() + 1
    with pytest.raises(CosttrainError, match=f"{method} processes on .* core.*"
                                             "more than is sensible"):
        DISTRIBUTED[method]("mlp", fmnist, workers=workers)
    assert not spawned_children()


@pytest.mark.parametrize("method", DISTRIBUTED)
def test_non_loopback_addr_and_too_many_threads_are_warned_before_any_process(fmnist, method):
    # 192.0.2.1 (TEST-NET) is no address of this machine: the run stops at listen, after the
    # warnings and before any process
    with pytest.warns(CosttrainWarning) as warned, \
            pytest.raises(CosttrainError, match="cannot listen on '192.0.2.1'"):
        DISTRIBUTED[method]("mlp", fmnist, workers=2, threads=num_cores() + 1,
                            addr="192.0.2.1")
    messages = [str(w.message) for w in warned]
    assert any("--addr 192.0.2.1 is not a loopback address" in m for m in messages), messages
    assert any("take turns on the cores" in m for m in messages), messages
    assert not spawned_children()


def test_a_second_run_finds_its_ranks_warm_and_still_reports_the_one_off_setup(fmnist):
    """The ranks of a parameter-server run stay in the warm pool; a local-SGD run after it
    joins a new group in the same processes (the timing target is benchmarks/timing.py's)."""
    from costtrain.data.datasets import Dataset
    from costtrain.run import pool
    small = Dataset(fmnist.name, fmnist.train_x[:400], fmnist.train_y[:400], fmnist.test_x[:200],
                    fmnist.test_y[:200], fmnist.classes, fmnist.mean, fmnist.std)
    pool.close_all()
    first = train_parameter_server("mlp", small, mode="async", workers=1, progress=False)
    pids = pool.current().pids()
    second = train_local_sgd("mlp", small, workers=2, progress=False)
    assert second.status == "ok" and pool.current().pids() == pids and len(pids) == 2
    assert first.extra["startup"]["cold"] and first.extra["startup"]["fresh_workers"] == 2
    start = second.extra["startup"]
    assert not start["cold"] and start["fresh_workers"] == 0 and start["unpaid"] > 0
    # the one-off figure keeps the reused workers' start-up; the warm one is what it waited
    assert second.setup_seconds == pytest.approx(start["measured_setup"] + start["unpaid"])
    assert second.warm_setup_seconds == pytest.approx(start["measured_setup"])


def test_gloo_interface_is_chosen_per_run_unless_the_user_set_it(monkeypatch):
    """A warm rank's next run may talk to another address: the interface it chose is unset
    after the group is made; one the user set is never touched."""
    import os

    from costtrain.run.group import interface_for, socket_interface
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    with socket_interface("127.0.0.1"):
        assert os.environ["GLOO_SOCKET_IFNAME"] == interface_for("127.0.0.1")
    assert "GLOO_SOCKET_IFNAME" not in os.environ
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "mine0")
    with socket_interface("127.0.0.1"):
        assert os.environ["GLOO_SOCKET_IFNAME"] == "mine0"
    assert os.environ["GLOO_SOCKET_IFNAME"] == "mine0"
