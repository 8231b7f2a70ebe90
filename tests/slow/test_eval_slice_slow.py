"""Every trainer's intermediate evaluations read the slice and its final one the whole test set;
Hogwild!'s evaluations pause every worker (the slow half of test_eval_slice.py)."""
from __future__ import annotations

import dataclasses
import math

import pytest
from test_eval_slice import TRAINERS, _poisoned, big_test_set  # noqa: F401 (a fixture)

from costtrain.hogwild import train_hogwild
from costtrain.run import _testing


@pytest.mark.parametrize("name", list(TRAINERS))
def test_every_trainer_evaluates_on_the_slice_and_finishes_on_the_whole_set(name, big_test_set):
    trainer, kw = TRAINERS[name]
    r = trainer("mlp", _poisoned(big_test_set), eval_every=150, seed=0, **kw)
    assert r.status == "ok"
    intermediate = r.eval_curve["loss"][:-1]  # the last point is the final evaluation
    assert len(intermediate) >= 2 and all(math.isfinite(v) for v in intermediate), intermediate
    assert math.isnan(r.test_loss) and math.isnan(r.eval_curve["loss"][-1])  # the whole set
    assert r.extra["eval_slice"] == {"samples": 2000, "of": 3000, "seed": 0}


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
