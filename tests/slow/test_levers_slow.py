"""The levers in real runs: torch.compile's set-up and warm-up, compiled Hogwild! workers, and
``advise`` tuning the levers of its pick (the slow half of test_levers.py)."""
from __future__ import annotations

import pytest
import torch
from test_levers import tiny  # noqa: F401 (a fixture)

from costtrain.data.models import build_model
from costtrain.hogwild import train_hogwild
from costtrain.train import levers
from costtrain.train.baseline import train_baseline


def test_compile_reports_its_seconds_apart_and_trains(tiny):
    """The first compiled step runs in set-up: compile_seconds is part of setup_seconds, the
    training loop is timed without it, and every sample is trained (a smaller last batch
    runs eagerly)."""
    eager = train_baseline("mlp", tiny, batch_size=96, seed=1)
    levers.reset_compiled()
    r = train_baseline("mlp", tiny, batch_size=96, compile=True, seed=1)
    assert r.status == "ok" and r.samples == eager.samples == 512  # 5 x 96 + a last batch of 32
    assert r.config["compile"] == "default" and eager.config["compile"] is None
    assert 0 < r.compile_seconds <= r.setup_seconds and eager.compile_seconds == 0
    assert r.test_accuracy > 0.3  # it learned
    # the warm-up step changed nothing: compiled and eager training agree to rounding
    assert r.loss_curve["loss"][0] == pytest.approx(eager.loss_curve["loss"][0], rel=1e-3)
    assert "compiling took" in cli_summary(r)


def cli_summary(r) -> str:
    from costtrain.advice.report import summary
    return summary(r)


def test_compile_warm_up_leaves_batchnorm_statistics_alone():
    net = build_model("cnn", (3, 32, 32), 10)
    before = [b.clone() for b in net.buffers()]
    fast = levers.Fast(net, levers.make_levers(compile=True), torch.device("cpu"), 4)
    levers.reset_compiled()
    assert fast.warm_up(torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))) > 0
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))
    assert all(p.grad is None for p in net.parameters())


def test_hogwild_workers_compile_before_the_start_signal(tiny):
    r = train_hogwild("mlp", tiny, processes=2, compile=True, timeout=300)
    assert r.status == "ok" and r.samples == 2 * 512
    assert 0 < r.compile_seconds <= r.setup_seconds and r.config["compile"] == "default"


def test_advise_tunes_the_levers_of_its_pick_and_says_which_it_keeps(fmnist):
    from costtrain.advice.advise import Probe, recommend
    advice = recommend("simple", fmnist, budget_seconds=30, progress=False, levers=True,
                       probes=[Probe("baseline 1 thread", "baseline", {"threads": 1})])
    assert advice.levers is not None and advice.recommended.label == "baseline 1 thread"
    text = str(advice)
    assert "Levers on baseline 1 thread" in text and "Recommended levers:" in text
    measured = {v.trial.label for v in advice.levers.verdicts}
    assert "channels_last" in measured or any("channels_last" in x for x in advice.levers.skipped)
    chosen = advice.levers.pick
    if chosen is not None:  # whatever was picked measured faster beyond noise
        assert min(chosen.trial.rates) > max(chosen.trial.base_rates)
        assert set(chosen.trial.kwargs.items()) <= set(advice.recommended.job.items())
    small = recommend("mlp", fmnist, budget_seconds=5, progress=False, levers=True)
    assert small.levers is None and any("levers not tuned" in n for n in small.notes)
