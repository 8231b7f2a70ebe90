"""Local SGD with real gloo process groups on loopback (small data, the MLP)."""
import math
import socket

import pytest
import torch

from costtrain.data.datasets import Dataset
from costtrain.run._testing import spawned_children
from costtrain.train.local_sgd import LocalSGDConfig, local_batches, train_local_sgd
from costtrain.utils import CosttrainError


def _small(ds: Dataset, n: int) -> Dataset:
    return Dataset(ds.name, ds.train_x[:n], ds.train_y[:n], ds.test_x[:500], ds.test_y[:500],
                   ds.classes, ds.mean, ds.std)


def test_every_worker_takes_the_same_steps_on_its_own_samples(fmnist):
    ds = _small(fmnist, 1001)
    ds.train_x = torch.arange(1001.0).view(-1, 1)  # each sample is its index
    cfg = LocalSGDConfig(workers=3, epochs=2, batch_size=64, seed=3)
    streams = [list(local_batches(ds, r, cfg)) for r in range(3)]
    per_epoch = math.ceil(333 / 64)  # shards of 334/334/333 cut to 333: equal steps
    assert [len(s) for s in streams] == [2 * per_epoch] * 3
    seen = [torch.cat([xb for xb, _ in s[:per_epoch]]).flatten().tolist() for s in streams]
    assert [len(set(s)) for s in seen] == [333] * 3  # each sample once per epoch
    assert not set(seen[0]) & set(seen[1]) and not set(seen[1]) & set(seen[2])


@pytest.mark.parametrize("kwargs, message", [
    (dict(workers=0), "workers must be an integer >= 1"),
    (dict(average_every=0), "average_every must be an integer >= 1"),
    (dict(average_every=2.5), "average_every must be an integer >= 1"),
    (dict(timeout=0), "timeout must be a positive"),
    (dict(lr=-1.0), "learning rate"),
    (dict(device="cuda:0"), "device"),
    (dict(addr="192.0.2.1"), "cannot listen on '192.0.2.1'"),  # TEST-NET: not this machine
])
def test_bad_input_is_a_clear_error_before_any_process(fmnist, kwargs, message):
    with pytest.raises(CosttrainError, match=message):
        train_local_sgd("mlp", fmnist, **kwargs)
    assert not spawned_children()


def test_busy_port_is_a_clear_error_before_any_process(fmnist):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(CosttrainError, match=f"cannot listen on 127.0.0.1:{port}"):
            train_local_sgd("mlp", fmnist, port=port)
