"""The parameter server with real gloo process groups on loopback (small data, the MLP)."""
import socket

import psutil
import pytest
import torch

from costtrain.run._testing import spawned_children
from costtrain.run.group import interface_for
from costtrain.train.engine import shard_indices
from costtrain.train.parameter_server import train_parameter_server
from costtrain.utils import CosttrainError


def test_shards_are_disjoint_and_cover_the_data():
    shards = [shard_indices(1000, r, 3, seed=5) for r in range(3)]
    assert sorted(len(s) for s in shards) == [333, 333, 334]
    assert sorted(torch.cat(shards).tolist()) == list(range(1000))
    assert not torch.equal(shard_indices(1000, 0, 3, 6), shards[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(workers=0), "workers must be an integer >= 1"),
    (dict(workers=1.5), "workers must be an integer >= 1"),
    (dict(mode="hogwild"), "mode must be one of"),
    (dict(timeout=0), "timeout must be a positive"),
    (dict(lr=-1.0), "learning rate"),
    (dict(device="cuda:0"), "device"),
    (dict(max_staleness=-1), "max_staleness"),
    (dict(addr="192.0.2.1"), "cannot listen on '192.0.2.1'"),  # TEST-NET: not this machine
])
def test_bad_input_is_a_clear_error_before_any_process(fmnist, kwargs, message):
    with pytest.raises(CosttrainError, match=message):
        train_parameter_server("mlp", fmnist, **kwargs)
    assert not spawned_children()


def test_busy_port_is_a_clear_error_before_any_process(fmnist):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(CosttrainError, match=f"cannot listen on 127.0.0.1:{port}.*another"):
            train_parameter_server("mlp", fmnist, port=port)
    assert not spawned_children()


def test_loopback_stays_on_loopback():
    name = interface_for("127.0.0.1")
    assert name is not None
    assert "127.0.0.1" in [a.address for a in psutil.net_if_addrs()[name]]


def test_linear_lr_scaling_is_for_sync_only():
    from costtrain.train.parameter_server import server_lr
    assert server_lr(0.01, "sync", 4, True) == pytest.approx(0.04)
    assert server_lr(0.01, "sync", 4, False) == 0.01
    assert server_lr(0.01, "async", 4, True) == 0.01


def test_a_wait_counts_the_evaluations_after_its_start_only():
    """What the server tells a worker it waited through: the evaluations (or their parts)
    after the worker's gradient arrived, never one that ended before."""
    from costtrain.train.engine import Evaluator
    ev = Evaluator(torch.zeros(0), torch.zeros(0), None)
    ev.spans = [(1.0, 2.0), (5.0, 6.5)]
    assert ev.seconds_since(0.0) == pytest.approx(2.5)  # waited through both
    assert ev.seconds_since(1.5) == pytest.approx(2.0)  # arrived during the first
    assert ev.seconds_since(3.0) == pytest.approx(1.5)
    assert ev.seconds_since(6.5) == 0.0 and ev.seconds_since(float("inf")) == 0.0
