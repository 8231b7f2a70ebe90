"""Hogwild! with real processes: it learns, samples add up, threads, bad input, original API."""
import dataclasses
import functools
import time

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from costtrain import hogwild
from costtrain.advice.compare import comparison_plan
from costtrain.advice.plots import plot_worker_losses
from costtrain.cli import main as cli_main
from costtrain.data.datasets import ClassicImageDataset, tensor_dataset
from costtrain.data.models import MLP
from costtrain.hogwild import train_hogwild
from costtrain.run import _testing
from costtrain.train import hogwild as hogwild_loop
from costtrain.train.legacy import OptimizerSpec, chart_losses, log_elapsed_time, train_model
from costtrain.utils import CosttrainError, num_cores, threads_per_process

_children = _testing.spawned_children


def _small(ds, n: int):
    return dataclasses.replace(ds, train_x=ds.train_x[:n].clone(), train_y=ds.train_y[:n].clone())


def test_learns_with_full_sharding_and_per_worker_curves(fmnist):
    r = train_hogwild("mlp", fmnist, processes=2, epochs_per_process=1, lr=0.05, eval_every=1500,
                      log_every=5, seed=0)
    assert r.status == "ok" and r.method == "hogwild" and r.label == "hogwild 2x1"
    assert r.test_accuracy > 0.6  # chance is 0.10
    assert r.samples == 2 * 3000  # 'full': every worker sees the whole training set
    assert r.extra["worker_samples"] == {"0": 3000, "1": 3000}
    for c in r.worker_curves.values():  # indexed by samples seen by that worker
        assert c["samples"] == sorted(c["samples"]) and c["samples"][-1] == 3000
        assert c["seconds"] == sorted(c["seconds"]) and len(c["loss"]) == len(c["samples"])
    assert r.loss_curve["samples"][-1] == 6000 and r.loss_curve["loss"][-1] < r.loss_curve["loss"][0]
    assert r.setup_seconds > 0 and r.train_seconds > 0 and r.eval_seconds > 0
    assert r.steady_samples_per_second > 0 and r.samples_per_second > 0
    ev = r.eval_curve  # worker 0 evaluates every 1500 samples trained by both workers
    assert ev["samples"] == sorted(ev["samples"]) and len(ev["samples"]) >= 4
    assert ev["samples"][0] >= 1500 and ev["samples"][-1] == 6000
    assert ev["seconds"][-2] <= r.train_seconds + 1e-4
    expected = threads_per_process(2)
    assert r.threads == expected and r.extra["worker_threads"] == {"0": expected, "1": expected}
    lines = plot_worker_losses(r).axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["worker 0", "worker 1"]
    assert not _children()


def test_shard_splits_the_data_and_warns_when_oversubscribed(fmnist):
    with pytest.warns(UserWarning, match="take turns on the cores.*use threads <= 1"):
        r = train_hogwild("mlp", _small(fmnist, 1000), processes=2, sharding="shard",
                          threads=num_cores(), epochs_per_process=2)
    assert r.samples == 2 * 1000  # 2 epochs of 1,000 samples, split between the workers
    assert r.extra["worker_samples"] == {"0": 1000, "1": 1000}
    assert r.extra["worker_threads"] == {"0": num_cores(), "1": num_cores()}


def test_shards_are_disjoint_and_cover_the_data():
    shards = [hogwild.shard_indices(103, r, 3, seed=1) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(103))
    assert hogwild.shard_indices(103, 0, 3, seed=1).tolist() != hogwild.shard_indices(103, 0, 3, seed=2).tolist()


def test_after_parent_autograd_the_users_model_is_trained_in_place(fmnist):
    net = MLP()
    net(fmnist.train_x[:32]).sum().backward()  # the parent has run autograd (and holds grads)
    before = net.net[1].weight.detach().clone()
    r = train_hogwild(net, _small(fmnist, 600), processes=2, threads=1,
                      optimizer=functools.partial(torch.optim.Adam, lr=1e-3))
    assert r.status == "ok" and r.config["model"] == "mlp" and r.extra["optimizer"] == "Adam"
    assert not torch.equal(before, net.net[1].weight) and net.net[1].weight.is_shared()


class _Local(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(784, 10)
        self.hook = lambda x: x  # unpicklable state


class _NonLeaf(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(784, 10)
        self.scaled = self.fc.weight * 2  # computed with autograd


@pytest.mark.parametrize("kw,match", [
    (dict(processes=0), "processes must be"), (dict(processes=1.5), "processes must be"),
    (dict(epochs_per_process=0), "epochs"), (dict(processes=4 * num_cores() + 1), "sensible"),
    (dict(threads=0), "threads"), (dict(sharding="half"), "sharding"),
    (dict(pipeline="disk"), "pipeline"), (dict(timeout=0), "timeout"),
    (dict(device="mps"), "MPS tensors cannot be shared"), (dict(device="tpu"), "device"),
    (dict(net=_Local()), "cannot be sent to worker"), (dict(net=_NonLeaf()), "non-leaf"),
    (dict(net=torch.nn.ReLU()), "no trainable parameters"), (dict(net=42), "nn.Module"),
    (dict(optimizer=lambda p: torch.optim.SGD(p, lr=0.1)), "picklable|cannot be sent"),
    (dict(optimizer=lambda p: None), "picklable|cannot be sent"),
    (dict(batch_size=0), "batch"), (dict(lr=-1.0), "learning rate"),
])
def test_bad_input_fails_before_any_process_starts(fmnist, kw, match, monkeypatch):
    kw.setdefault("net", "mlp")

    def start(*args, **kwargs):
        raise AssertionError("worker processes would start before the input was checked")
    monkeypatch.setattr(hogwild_loop, "train_source", start)  # where the processes start
    with pytest.raises(CosttrainError, match=match):
        train_hogwild(data=_small(fmnist, 100), **kw)
    assert not _children()


def test_shard_with_more_processes_than_samples_fails(fmnist):
    with pytest.raises(CosttrainError, match="empty"):
        train_hogwild("mlp", _small(fmnist, 1), processes=2, sharding="shard", threads=1)


def test_cuda_request_without_cuda_is_clear(fmnist):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(CosttrainError, match="CUDA is not available"):
        train_hogwild("mlp", _small(fmnist, 100), device="cuda")


# ---------------------------------------------------------------- the original API

def test_original_api_train_model(fmnist, capsys):
    torch.manual_seed(0)
    model = MLP()
    loader = DataLoader(tensor_dataset(fmnist), batch_size=64, shuffle=True)
    test_loader = DataLoader(tensor_dataset(fmnist, "test"), batch_size=500)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    tracker, records = [123.0], []
    out = train_model(model, loader, 2, 1, optimizer, log_interval=10, loss_tracker=tracker,
                      seed=1, test_dataloader=test_loader, results=records)
    text = capsys.readouterr().out
    assert out is tracker and tracker[0] == 123.0 and len(tracker) > 5
    assert all(isinstance(v, float) and v > 0 for v in tracker[1:])
    assert "process 0  epoch 1" in text and "process 1  epoch 1" in text
    acc = [line for line in text.splitlines() if line.startswith("Test set:")]
    assert acc and float(acc[0].split("(")[1].rstrip("%)")) > 60
    assert "set-up" in text and "training" in text and "testing" in text
    # one definition of set-up for every API: the one-off one, with what a warm re-run pays
    (r,) = records
    assert f"set-up {r.setup_seconds:.2f} s one-off" in text
    assert f"{r.warm_setup_seconds:.2f} s when re-run warm" in text
    assert r.setup_seconds >= r.warm_setup_seconds and r.samples > 0
    assert "busy" in r.extra["load"]  # the load record every trainer keeps (busy_note reads it)
    assert not _children()


def test_original_api_with_a_classic_dataloader(fmnist, capsys):
    """A per-sample Dataset with num_workers > 0: warned, rebuilt in the worker, no logs."""
    ds = _small(fmnist, 300)
    loader = DataLoader(ClassicImageDataset(ds), batch_size=32, shuffle=False, num_workers=2)
    with pytest.warns(UserWarning, match="num_workers=2"):
        losses = train_model(MLP(), loader, 1, 1, None, log_interval=-1)
    text = capsys.readouterr().out
    assert len(losses) == 1 and "process 0" not in text  # 10 batches -> one loss value
    assert "no test set" in text


def test_optimizer_spec_rebuilds_param_groups():
    model = MLP()
    params = list(model.parameters())
    opt = torch.optim.SGD([{"params": params[:2], "lr": 0.5}, {"params": params[2:]}], lr=0.1,
                          momentum=0.9, nesterov=True)
    rebuilt = OptimizerSpec(opt, model)(params)
    assert type(rebuilt) is torch.optim.SGD and rebuilt.defaults["nesterov"] is True
    assert [g["lr"] for g in rebuilt.param_groups] == [0.5, 0.1]
    assert [len(g["params"]) for g in rebuilt.param_groups] == [2, len(params) - 2]
    with pytest.raises(CosttrainError, match="not the model's"):
        OptimizerSpec(torch.optim.SGD(MLP().parameters(), lr=0.1), model)


def test_original_api_bad_input():
    loader = DataLoader(TensorDataset(torch.zeros(8, 1, 28, 28), torch.zeros(8).long()), batch_size=4)
    with pytest.raises(CosttrainError, match="processes"):
        train_model(MLP(), loader, 0, 1, None)
    with pytest.raises(CosttrainError, match="DataLoader"):
        train_model(MLP(), [1, 2, 3], 1, 1, None)
    with pytest.raises(CosttrainError, match="optimizer"):
        train_model(MLP(), loader, 1, 1, "sgd")
    assert not _children()


def test_log_elapsed_time_and_chart_losses(capsys):
    assert log_elapsed_time(4, 1, 10.0, 12.5) == 2.5
    assert "4 process(es) x 1 epoch(s) per process: 2.50 s" in capsys.readouterr().out
    fig = chart_losses({"1 process x 4 epochs NN": [2.0, 1.0, 0.5], "4 x 1": [2.1, 0.9]})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["1 process x 4 epochs NN", "4 x 1"]
    assert ax.get_title() == "Comparing Training Losses Across Configurations"


# ---------------------------------------------------------------- CLI and comparison plan

def test_cli_run_hogwild(capsys):
    code = cli_main(["run", "--method", "hogwild", "--processes", "2", "--epochs-per-process",
                     "1", "--threads", "1", "--subset", "500", "--model", "mlp", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "hogwild 2x1" in out and "1,000" in out


def test_comparison_plan_has_the_original_configurations():
    plan = comparison_plan(total_epochs=2, cores=2)
    hw = {label: kw for label, trainer, kw in plan if trainer is train_hogwild}
    assert set(hw) == {"hogwild 1x2", "hogwild 2x1", "hogwild 4x1/2 shards"}
    for kw in hw.values():  # same total work as the baselines: 2 epochs
        per = 1 if kw.get("sharding") == "shard" else kw["processes"]
        assert per * kw["epochs_per_process"] == 2
    big = comparison_plan(total_epochs=4, cores=8)
    assert {label for label, t, _ in big if t is train_hogwild} == {
        "hogwild 1x4", "hogwild 4x1", "hogwild 2x2", "hogwild 8x1/2 shards"}


def test_original_api_finds_the_test_split_under_a_subset(tmp_path, capsys):
    """Subset(FashionMNIST(train=True), range(n)) -> the accuracy on FashionMNIST(train=False)."""
    import gzip
    import shutil

    from conftest import make_idx_dataset
    from torch.utils.data import Subset
    from torchvision import datasets, transforms
    raw = tmp_path / "FashionMNIST" / "raw"
    make_idx_dataset(tmp_path / "idx", n_train=200, n_test=50)
    raw.mkdir(parents=True)
    for gz in (tmp_path / "idx").glob("*.gz"):  # torchvision reads the unpacked files
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    train = datasets.FashionMNIST(str(tmp_path), train=True, transform=transforms.ToTensor())
    loader = DataLoader(Subset(train, range(120)), batch_size=20, shuffle=True)
    train_model(MLP(), loader, 1, 1, None, log_interval=-1)
    text = capsys.readouterr().out
    assert "Test set:" in text and "/50 (" in text  # the whole test split of the files
    assert "no test set" not in text
