"""Intermediate evaluations read a fixed, stratified slice of the test set, the same for every
trainer; the final accuracy reads the whole set; Hogwild!'s evaluations pause every worker."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from costtrain.data.datasets import load_dataset
from costtrain.hogwild import train_hogwild
from costtrain.run import _testing
from costtrain.train.baseline import train_baseline
from costtrain.train.engine import EVAL_SLICE, eval_slice, slice_of
from costtrain.train.local_sgd import train_local_sgd
from costtrain.train.parameter_server import train_parameter_server
from costtrain.utils import CosttrainError

TRAINERS = {
    "baseline": (train_baseline, dict(epochs=1, threads=1)),
    "hogwild": (train_hogwild, dict(processes=2, epochs_per_process=1, threads=1)),
    "ps": (train_parameter_server, dict(workers=2, epochs=1, mode="async")),
    "local-sgd": (train_local_sgd, dict(workers=2, epochs=1, average_every=2)),
}


@pytest.fixture(scope="module")
def big_test_set():
    """600 training images and 3,000 test images: more than the slice holds."""
    return load_dataset("fashion-mnist", subset=600, test_subset=3000, seed=0)


def test_the_slice_is_stratified_fixed_and_sorted(big_test_set):
    y = big_test_set.test_y
    idx = eval_slice(y)
    assert len(idx) == EVAL_SLICE == 2000 and len(set(idx.tolist())) == 2000
    assert idx.tolist() == sorted(idx.tolist())
    assert torch.equal(idx, eval_slice(y.clone()))  # fixed: no run's seed or state moves it
    whole, part = torch.bincount(y, minlength=10), torch.bincount(y[idx], minlength=10)
    assert (part - whole * 2000 / len(y)).abs().max() <= 1  # each class in proportion
    small = y[:500]
    assert torch.equal(eval_slice(small), torch.arange(500))  # a smaller set is read whole
    x, yy = slice_of(big_test_set.test_x[:500], small)
    assert x.data_ptr() == big_test_set.test_x.data_ptr() and len(yy) == 500
    with pytest.raises(CosttrainError, match="eval slice size"):
        eval_slice(y, 0)


def _poisoned(ds):
    """`ds` whose test images outside the slice are NaN: reading one makes the loss NaN."""
    x = torch.full_like(ds.test_x, float("nan"))
    idx = eval_slice(ds.test_y)
    x[idx] = ds.test_x[idx]
    return dataclasses.replace(ds, test_x=x)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINERS))
def test_every_trainer_evaluates_on_the_slice_and_finishes_on_the_whole_set(name, big_test_set):
    trainer, kw = TRAINERS[name]
    r = trainer("mlp", _poisoned(big_test_set), eval_every=150, seed=0, **kw)
    assert r.status == "ok"
    intermediate = r.eval_curve["loss"][:-1]  # the last point is the final evaluation
    assert len(intermediate) >= 2 and all(math.isfinite(v) for v in intermediate), intermediate
    assert math.isnan(r.test_loss) and math.isnan(r.eval_curve["loss"][-1])  # the whole set
    assert r.extra["eval_slice"] == {"samples": 2000, "of": 3000, "seed": 0}


def test_a_run_without_periodic_evaluation_records_no_slice(fmnist):
    r = train_baseline("mlp", fmnist, epochs=1, threads=1)
    assert "eval_slice" not in r.extra and r.eval_curve["samples"] == [r.samples]


@pytest.mark.slow
def test_hogwild_evaluations_pause_every_worker(tmp_path, fmnist):
    """No worker takes a training step while the shared model is evaluated (the parent's
    evaluation sleeps 0.2 s per batch of 1,000, so a worker still training would be seen)."""
    net = _testing.StepClock(str(tmp_path), sleep=0.2)
    ds = dataclasses.replace(fmnist, train_x=fmnist.train_x[:1600], train_y=fmnist.train_y[:1600])
    r = train_hogwild(net, ds, processes=2, epochs_per_process=1, threads=1, batch_size=16,
                      eval_every=800, seed=0)
    assert r.status == "ok" and len(r.eval_curve["samples"]) >= 4  # 3 pauses + the final point
    spans = [tuple(map(float, line.split()))
             for line in (tmp_path / "evals").read_text().splitlines()]
    steps = [float(t) for rank in (0, 1) for t in (tmp_path / f"steps.{rank}").read_text().split()]
    first, last = min(steps), max(steps)
    during = [(a, b) for a, b in spans if first < a < last]  # the periodic ones
    assert len(during) >= 3
    inside = [t for t in steps for a, b in during if a <= t <= b]
    assert not inside, f"{len(inside)} training steps ran while the model was evaluated"
    # the pauses are evaluation time, off the training clock, and the points are on that clock
    assert r.eval_seconds >= 0.2 * len(during)
    assert r.eval_curve["seconds"] == sorted(r.eval_curve["seconds"])
    assert r.eval_curve["seconds"][-2] <= r.train_seconds + 1e-3
    samples = r.eval_curve["samples"][:-1]
    assert all(s >= 800 * (k + 1) for k, s in enumerate(samples))
