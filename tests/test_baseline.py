import math

import pytest
import torch

from costtrain.data.models import SimpleNN
from costtrain.result import RunResult, load_results, save_results
from costtrain.train.baseline import train_baseline
from costtrain.utils import CosttrainError


def test_baseline_learns(fmnist):
    r = train_baseline("simple", fmnist, epochs=2, threads=1, lr=0.05, seed=0)
    assert r.test_accuracy > 0.55  # chance is 0.10
    assert r.samples == 6000 and r.samples_per_second > 0
    assert r.loss_curve["loss"][-1] < r.loss_curve["loss"][0]
    assert r.loss_curve["samples"] == sorted(r.loss_curve["samples"])
    assert r.setup_seconds > 0 and r.train_seconds > 0 and r.eval_seconds > 0
    assert r.threads == 1 and r.config["processes"] == 1


def test_deterministic_for_a_seed(fmnist):
    a = train_baseline("mlp", fmnist, epochs=1, threads=1, seed=3)
    b = train_baseline("mlp", fmnist, epochs=1, threads=1, seed=3)
    c = train_baseline("mlp", fmnist, epochs=1, threads=1, seed=4)
    assert a.loss_curve["loss"] == b.loss_curve["loss"]
    assert a.test_accuracy == b.test_accuracy
    assert a.loss_curve["loss"] != c.loss_curve["loss"]


def test_user_module_is_trained_in_place(fmnist):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    before = net[1].weight.detach().clone()
    r = train_baseline(net, fmnist, epochs=1, threads=1)
    assert not torch.equal(before, net[1].weight) and r.config["model"] == "Sequential"
    assert r.test_accuracy > 0.5


def test_periodic_evaluation_keeps_its_time_apart(fmnist):
    r = train_baseline("mlp", fmnist, epochs=1, threads=1, eval_every=1000)
    assert r.eval_curve["samples"][:3] == [1024, 2048, 3008][:3] or r.eval_curve["samples"][0] >= 1000
    assert len(r.eval_curve["samples"]) == 3
    assert r.eval_curve["samples"][-1] == 3000
    assert all(0 <= a <= 1 for a in r.eval_curve["accuracy"])
    assert r.eval_curve["seconds"][-1] <= r.train_seconds + 1e-4  # curves round to 0.1 ms


def test_threads_are_restored(fmnist):
    before = torch.get_num_threads()
    train_baseline("mlp", fmnist, epochs=1, threads=1)
    assert torch.get_num_threads() == before


def test_classic_pipeline_runs(fmnist):
    r = train_baseline("simple", fmnist, epochs=1, threads=1, pipeline="classic")
    assert r.samples == 3000 and r.config["pipeline"] == "classic" and r.test_accuracy > 0.2


@pytest.mark.parametrize("kw,match", [(dict(epochs=0), "epochs"), (dict(batch_size=0), "batch"),
                                      (dict(lr=0.0), "learning rate"), (dict(lr=math.nan), "learning rate"),
                                      (dict(device="cuda:7" if not torch.cuda.is_available() else "tpu"), "device"),
                                      (dict(pipeline="fast"), "pipeline"), (dict(threads=0), "threads")])
def test_bad_input(fmnist, kw, match):
    with pytest.raises(CosttrainError, match=match):
        train_baseline("simple", fmnist, **kw)


def test_result_json_round_trip(fmnist, tmp_path):
    r = train_baseline(SimpleNN(), fmnist, epochs=1, threads=1, eval_every=1500)
    path = r.save(tmp_path / "sub" / "r.json")
    back = RunResult.load(path)
    assert back == r
    assert load_results(save_results([r, r], tmp_path / "two.json")) == [r, r]
    assert not list(path.parent.glob(".*"))  # no temporary files left behind
