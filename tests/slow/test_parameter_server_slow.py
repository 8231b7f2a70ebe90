"""The parameter server with real gloo process groups on loopback: sync, async, bounded
staleness, the CLI, concurrent runs (the slow half of test_parameter_server.py)."""
import dataclasses
import itertools
import re
import threading

import pytest
import torch

from costtrain.data.datasets import Dataset
from costtrain.data.models import MLP
from costtrain.run._testing import SlowEvalNet, spawned_children
from costtrain.train.engine import loss_fn
from costtrain.train.parameter_server import MODES, train_parameter_server, worker_batches
from costtrain.train.ps_ranks import PSConfig
from costtrain.utils import num_threads


def _small(ds: Dataset, n: int) -> Dataset:
    return Dataset(ds.name, ds.train_x[:n], ds.train_y[:n], ds.test_x[:500], ds.test_y[:500],
                   ds.classes, ds.mean, ds.std)


def test_sync_equals_large_batch_sgd(fmnist):
    """K workers in sync mode = one process doing SGD on the K batches concatenated."""
    ds = _small(fmnist, 1000)
    # 1000 samples over 3 workers: shards of 334/333/333; batch 111 gives worker 1 four steps
    # per epoch (the last with one sample) and the others three: uneven shards and batches.
    cfg = PSConfig(mode="sync", workers=3, epochs=2, batch_size=111, lr=0.05, momentum=0.5,
                   seed=7)
    torch.manual_seed(0)
    net, ref = MLP(), MLP()
    ref.load_state_dict(net.state_dict())

    opt = torch.optim.SGD(ref.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    streams = [list(worker_batches(ds, r, cfg)) for r in range(1, cfg.workers + 1)]
    rounds = list(itertools.zip_longest(*streams))
    with num_threads(1):
        for batch in rounds:
            xs, ys = zip(*[b for b in batch if b is not None])
            opt.zero_grad()
            loss_fn(ref(torch.cat(xs)), torch.cat(ys)).backward()
            opt.step()

    r = train_parameter_server(net, ds, mode="sync", workers=cfg.workers, epochs=cfg.epochs,
                               batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                               seed=cfg.seed, log_every=1, scale_lr=False)
    assert len(rounds) == 8 and r.extra["steps"] == 8
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.equal(net.net[1].weight, MLP().net[1].weight)  # it did train
    assert r.method == "ps-sync" and r.status == "ok" and r.label == "ps-sync 3w"
    assert r.samples == 2000 and r.config["workers"] == 3 and r.config["mode"] == "sync"
    assert sorted(r.worker_curves) == ["1", "2", "3"]
    assert [r.worker_curves[k]["samples"][-1] for k in "123"] == [668, 666, 666]
    assert r.loss_curve["samples"][-1] == 2000 and len(r.loss_curve["loss"]) == 8
    assert "staleness" not in r.extra


def test_async_trains_and_records_staleness(fmnist):
    r = train_parameter_server("mlp", fmnist, mode="async", workers=2, epochs=2, lr=0.05,
                               eval_every=1500, seed=1)
    assert r.method == "ps-async" and r.status == "ok" and r.samples == 6000
    assert r.test_accuracy > 0.6  # chance is 0.10
    assert r.loss_curve["loss"][-1] < r.loss_curve["loss"][0]
    st = r.extra["staleness"]
    steps = sum(st["histogram"].values())
    assert steps == r.extra["steps"] == 2 * 2 * 24  # every gradient of 2 workers, 24 steps/epoch
    assert st["max"] >= 1 and 0 < st["mean"] <= st["max"] and st["dropped"] == 0
    assert r.extra["comm_seconds"] > 0 and r.extra["compute_seconds"] > 0
    assert 0 < r.extra["comm_share"] < 1
    # periodic evaluation by the server, its time kept out of the training clock
    assert r.eval_curve["samples"][:4] == sorted(r.eval_curve["samples"][:4])
    assert len(r.eval_curve["samples"]) == 4 and r.eval_curve["samples"][-1] == 6000
    assert r.eval_seconds > 0 and r.eval_curve["seconds"][-1] <= r.train_seconds + 1e-4
    assert r.setup_seconds > 0 and r.samples_per_second > 0 and r.steady_samples_per_second > 0
    assert sum(c["samples"][-1] for c in r.worker_curves.values()) == 6000


@pytest.mark.parametrize("mode", MODES)
def test_waiting_for_the_servers_evaluation_is_not_communication(fmnist, mode):
    """The server evaluates between two answers while its workers wait in `recv`: that wait is
    reported apart (eval_wait_seconds) and left out of their communication time, comm_share
    and training clock, as the server leaves it out of its own."""
    sleep, ds = 0.4, _small(fmnist, 1200)  # 500 test images: one sleep per evaluation
    r = train_parameter_server(SlowEvalNet(sleep), ds, mode=mode, workers=2, epochs=1,
                               batch_size=64, lr=0.05, eval_every=300, seed=3)
    assert r.status == "ok" and len(r.eval_curve["samples"]) == 4  # at 300, 600, 900, 1200
    evaluating = 4 * sleep
    waited, comm = r.extra["eval_wait_seconds"], r.extra["comm_seconds"]
    if mode == "sync":  # every evaluation happens while both workers wait for their answer
        assert waited == pytest.approx(evaluating, rel=0.25)
    assert 0 < waited <= evaluating * 1.25
    assert comm < evaluating / 2 and r.extra["comm"]["seconds"] == pytest.approx(comm)
    assert r.extra["comm_share"] == pytest.approx(comm / (comm + r.extra["compute_seconds"]))
    for w in r.extra["per_worker"].values():
        assert w["comm_seconds"] >= 0 and w["eval_wait_seconds"] <= evaluating * 1.25
    # each worker's training clock leaves the wait out, as the server's does
    assert max(c["seconds"][-1] for c in r.worker_curves.values()) < r.train_seconds + sleep / 2


def test_bounded_staleness_drops_old_gradients(fmnist):
    r = train_parameter_server("mlp", _small(fmnist, 600), mode="async", workers=2, epochs=1,
                               max_staleness=0, seed=2)
    st = r.extra["staleness"]
    stale = sum(v for k, v in st["histogram"].items() if int(k) > 0)
    assert stale > 0 and st["dropped"] == stale
    assert r.extra["steps"] == sum(st["histogram"].values()) - stale
    # what was dropped was not trained: left out of the samples, the rate and the loss curve
    # (issue 32: it used to count all 600 and say nothing)
    assert 0 < st["dropped_samples"] < 600 and r.samples == 600 - st["dropped_samples"]
    assert r.loss_curve["samples"][-1] == r.samples
    assert r.samples_per_second == r.samples / r.train_seconds
    from costtrain.advice.report import summary
    assert f"{st['dropped']:,} of {sum(st['histogram'].values()):,} gradients were staler than " \
           f"--max-staleness 0 ({st['dropped_samples']:,} samples, not counted as trained)" \
        in summary(r)


def test_two_concurrent_runs_do_not_collide(fmnist):
    ds, out, errors = _small(fmnist, 500), {}, []

    def run(mode):
        try:
            out[mode] = train_parameter_server("mlp", ds, mode=mode, workers=1)
        except Exception as exc:  # reported below
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(m,)) for m in MODES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and sorted(out) == sorted(MODES)
    assert all(r.status == "ok" and r.samples == 500 for r in out.values())
    assert not spawned_children()


def test_cli_runs_the_parameter_server(tmp_path, capsys):
    from costtrain.cli import main
    from costtrain.result import load_results
    out = tmp_path / "ps.json"
    code = main(["run", "--method", "ps", "--mode", "async", "--workers", "2", "--model", "mlp",
                 "--subset", "600", "--no-progress", "--timeout", "30", "--out", str(out)])
    assert code == 0
    assert "ps-async 2w" in capsys.readouterr().out
    (r,) = load_results(out)
    assert r.method == "ps-async" and r.samples == 600 and r.config["workers"] == 2
    assert r.extra["staleness"]["histogram"]


def test_cli_failed_run_is_a_clear_error_and_keeps_the_partial_result(tmp_path, capsys):
    from costtrain.cli import main
    from costtrain.result import load_results
    from costtrain.run import pool
    out = tmp_path / "ps.json"
    # 1 ms is far too short for three fresh processes to meet: every rank gives up joining
    pool.close_all()
    code = main(["run", "--method", "ps", "--workers", "2", "--model", "mlp", "--subset", "300",
                 "--no-progress", "--timeout", "0.001", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3 and "costtrain: error: parameter server run failed" in err  # a rank failed
    # which side of the join the 1 ms timeout hits first depends on timing: both are the clear error
    assert re.search(r"(could not|did not) join the parameter server group at 127\.0\.0\.1:", err), err
    (r,) = load_results(out)
    assert r.status == "partial" and r.method == "ps-sync" and r.samples == 0
    assert not spawned_children()


def test_model_class_spawn_cannot_import_is_refused_before_any_process(tmp_path):
    import subprocess
    import sys
    script = (
        "import torch.nn as nn\n"
        "from costtrain.train.parameter_server import train_parameter_server\n"
        "class Local(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.fc = nn.Linear(784, 10)\n"
        "    def forward(self, x): return self.fc(x.flatten(1))\n"
        "train_parameter_server(Local(), 'fashion-mnist', subset=100, workers=1)\n")
    p = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0
    assert "CosttrainError" in p.stderr and "cannot import it" in p.stderr
    assert "spawn_main" not in p.stderr and "forkserver" not in p.stderr  # no worker started


def test_accuracy_by_seed_rows_add_up(fmnist):
    from costtrain.advice.compare import accuracy_by_seed
    small = dataclasses.replace(fmnist, train_x=fmnist.train_x[:600], train_y=fmnist.train_y[:600])
    seen = []
    rows = accuracy_by_seed(small, seeds=(1, 2), workers=(2,), modes=("sync",), epochs=1,
                            model="mlp", on_result=lambda r: seen.append(r.label))
    assert seen == ["baseline seed 1", "ps sync 2 workers seed 1",
                    "baseline seed 2", "ps sync 2 workers seed 2"]  # seeds taken in turn
    base, sync = rows
    assert base["label"] == "baseline" and base["lr"] == 0.01 and base["vs_baseline"] == 0
    assert sync["lr"] == 0.02  # the linear scaling rule, 2 workers
    assert len(sync["accuracies"]) == 2 and sync["mean"] == sum(sync["accuracies"]) / 2
    assert sync["vs_baseline"] == sync["mean"] - base["mean"]
    assert not spawned_children()
