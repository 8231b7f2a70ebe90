"""The one launcher of the distributed methods (costtrain.gloo): every check it makes before a
process starts holds for each method that uses it."""
import pytest

from costtrain._testing import spawned_children
from costtrain.checks import MAX_PROCESSES_PER_CORE, CosttrainWarning
from costtrain.local_sgd import train_local_sgd
from costtrain.parameter_server import train_parameter_server
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
    assert any("threads will fight over the cores" in m for m in messages), messages
    assert not spawned_children()
