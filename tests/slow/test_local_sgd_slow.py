"""Local SGD with real gloo process groups on loopback, from Python and the command line (the
slow half of test_local_sgd.py)."""
import math
import re

import pytest
import torch
from test_local_sgd import _small

from costtrain.data.models import MLP
from costtrain.run._testing import spawned_children
from costtrain.train.engine import loss_fn
from costtrain.train.local_sgd import LocalSGDConfig, local_batches, train_local_sgd
from costtrain.utils import num_threads


def test_average_every_step_equals_large_batch_sgd(fmnist):
    """H = 1: averaging the K models after every step is SGD (with momentum) on the K batches
    concatenated, at the unscaled learning rate: everything is linear in the gradients."""
    ds = _small(fmnist, 600)
    cfg = LocalSGDConfig(workers=2, average_every=1, epochs=2, batch_size=50, lr=0.05,
                         momentum=0.5, seed=7)
    torch.manual_seed(0)
    net, ref = MLP(), MLP()
    ref.load_state_dict(net.state_dict())
    opt = torch.optim.SGD(ref.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    streams = [list(local_batches(ds, r, cfg)) for r in range(cfg.workers)]
    with num_threads(1):
        for batch in zip(*streams):
            xs, ys = zip(*batch)
            opt.zero_grad()
            loss_fn(ref(torch.cat(xs)), torch.cat(ys)).backward()
            opt.step()
    r = train_local_sgd(net, ds, workers=2, average_every=1, epochs=2, batch_size=50, lr=0.05,
                        momentum=0.5, seed=7, scale_lr=False, log_every=1)
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert r.extra["steps"] == 12 and r.extra["averages"] == 12
    assert r.method == "local-sgd" and r.label == "local-sgd 2w H=1" and r.samples == 1200


def test_local_sgd_trains_and_counts_its_communication(fmnist):
    calls = []  # what a live plot receives: (rank, new samples, epoch, samples, loss)
    r = train_local_sgd("mlp", fmnist, workers=2, average_every=5, epochs=2, lr=0.05,
                        eval_every=1500, seed=1, on_progress=lambda *a: calls.append(a))
    assert r.status == "ok" and r.samples == 6000 and r.test_accuracy > 0.6  # chance: 0.10
    assert len(calls) == r.extra["averages"] and sum(c[1] for c in calls) == 6000
    assert [c[3] for c in calls][-1] == 6000 and {c[2] for c in calls} == {1, 2}
    assert all(math.isfinite(c[4]) for c in calls)
    steps = 2 * math.ceil(1500 / 64)  # 24 per epoch
    assert r.extra["steps"] == steps and r.extra["averages"] == math.ceil(steps / 5)
    c = r.extra["comm"]
    payload = sum(p.numel() * 4 for p in MLP().parameters())
    assert c["payload_bytes"] == payload and c["worker_steps"] == steps
    for rank in ("0", "1"):  # ring all-reduce, K = 2: one payload each way per average
        pr = c["per_rank"][rank]
        assert pr["bytes_sent"] == pr["bytes_received"] == r.extra["averages"] * payload
        assert pr["messages"] == r.extra["averages"] and pr["seconds"] > 0
    assert c["bytes_sent"] == 2 * r.extra["averages"] * payload
    assert c["bytes_sent_per_sample"] == pytest.approx(c["bytes_sent"] / 6000)
    assert "ring" in c["counted"]
    # rank 0 evaluated the averaged model at the first average after every 1500 samples
    assert len(r.eval_curve["samples"]) == 4 and r.eval_curve["samples"][-1] == 6000
    assert r.eval_curve["seconds"] == sorted(r.eval_curve["seconds"])
    assert sorted(r.worker_curves) == ["0", "1"] and r.setup_seconds > 0
    assert r.extra["comm_share"] < 1 and r.steady_samples_per_second > 0
    assert not spawned_children()


def test_parameter_server_counts_its_messages(fmnist):
    from costtrain.train.parameter_server import train_parameter_server
    r = train_parameter_server("mlp", _small(fmnist, 640), mode="sync", workers=2, epochs=1,
                               batch_size=64)
    c, n = r.extra["comm"], sum(p.numel() for p in MLP().parameters())
    msg, reply = 4 * (3 + n), 4 * (3 + n)  # header + gradient; version, go, evaluating + parameters
    assert c["worker_steps"] == 5 and c["payload_bytes"] == msg
    for rank in ("1", "2"):
        pr = c["per_rank"][rank]
        assert pr["bytes_sent"] == 5 * msg and pr["round_trips"] == 5
        assert pr["bytes_received"] == 6 * reply  # the initial parameters, then one per step
    assert c["per_rank"]["0"]["bytes_received"] == 10 * msg
    assert c["per_rank"]["0"]["bytes_sent"] == 12 * reply
    assert c["bytes_sent_per_sample"] == pytest.approx((10 * msg + 12 * reply) / 640)


def test_cli_runs_local_sgd_and_its_json_holds_the_communication(tmp_path, capsys):
    from costtrain.cli import main
    from costtrain.result import load_results
    out = tmp_path / "l.json"
    code = main(["run", "--method", "local-sgd", "--workers", "2", "--average-every", "4",
                 "--model", "mlp", "--subset", "600", "--no-progress", "--timeout", "30",
                 "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "local-sgd 2w H=4" in text and "B sent per sample" in text
    (r,) = load_results(out)
    assert r.method == "local-sgd" and r.samples == 600 and r.config["average_every"] == 4
    assert r.extra["comm"]["bytes_sent"] > 0 and r.extra["comm"]["per_rank"]["1"]["messages"]


def test_cli_failed_run_is_a_clear_error_and_keeps_the_partial_result(tmp_path, capsys):
    from costtrain.cli import main
    from costtrain.result import load_results
    from costtrain.run import pool
    out = tmp_path / "l.json"
    pool.close_all()  # fresh ranks start seconds apart: the 1 ms wait for the others fails
    code = main(["run", "--method", "local-sgd", "--workers", "2", "--model", "mlp",
                 "--subset", "300", "--no-progress", "--timeout", "0.001", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3 and "costtrain: error: local SGD run failed" in err  # a rank failed (cli.EXIT_FAILED)
    # which side of the join the 1 ms timeout hits first depends on timing: both are the clear error
    assert re.search(r"(could not|did not) join the local SGD group at 127\.0\.0\.1:", err), err
    (r,) = load_results(out)
    assert r.status == "partial" and r.method == "local-sgd" and r.samples == 0
    assert not spawned_children()
