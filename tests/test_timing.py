"""One definition per figure, for every trainer (costtrain.measure): the total is the measured
wall time of the call, the parts do not overlap, the steady rate follows one window rule, and
no configuration's set-up depends on which configurations ran before it."""
from __future__ import annotations

import time

import pytest

from costtrain.advice.compare import run_comparison, verdicts
from costtrain.hogwild import train_hogwild
from costtrain.measure import describe_load, preload, time_to_accuracy
from costtrain.result import RunResult
from costtrain.run import pool
from costtrain.train.baseline import train_baseline
from costtrain.train.local_sgd import train_local_sgd
from costtrain.train.parameter_server import train_parameter_server

TRAINERS = {
    "baseline": (train_baseline, dict(epochs=2, threads=2)),
    "hogwild 1x2": (train_hogwild, dict(processes=1, epochs_per_process=2, threads=2)),
    "hogwild 2x1": (train_hogwild, dict(processes=2, epochs_per_process=1)),
    "ps": (train_parameter_server, dict(workers=2, epochs=1, mode="async")),
    "local-sgd": (train_local_sgd, dict(workers=2, epochs=1, average_every=8)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINERS))
def test_total_is_the_measured_wall_time_and_parts_do_not_overlap(name, fmnist):
    trainer, kw = TRAINERS[name]
    preload()  # what every method pays once per process, outside every clock
    pool.close_all()  # a one-off (cold) run
    t = time.perf_counter()
    r = trainer("simple", fmnist, eval_every=1500, log_every=2, **kw)
    outer = time.perf_counter() - t
    assert r.status == "ok"
    assert r.total_seconds == pytest.approx(outer, rel=0.03)
    assert r.total_seconds == pytest.approx(r.wall_seconds)  # cold: nothing added back
    parts = r.setup_seconds + r.train_seconds + r.eval_seconds
    assert parts <= r.total_seconds * 1.01 + 0.01, (r.setup_seconds, r.train_seconds,
                                                   r.eval_seconds, r.total_seconds)
    assert r.warm_setup_seconds <= r.setup_seconds
    # one window rule: the steady rate leaves out warm-up, so it is not below the overall rate
    assert r.steady_samples_per_second >= 0.9 * r.samples_per_second
    # evaluation pauses are off the training clock: the curves end within the training time
    assert r.loss_curve["seconds"][-1] <= r.train_seconds * 1.02 + 0.05
    assert r.eval_curve["seconds"][-1] <= r.train_seconds * 1.02 + 0.05


@pytest.mark.slow
def test_a_reused_warm_pool_still_reports_the_one_off_setup(fmnist):
    """How the figures are built (how much faster a warm start is: benchmarks/timing.py)."""
    pool.close_all()
    cold = train_hogwild("simple", fmnist, processes=2, epochs_per_process=1)
    started = max(m.start_seconds() for m in pool.current().members)  # what the workers cost
    warm = train_hogwild("simple", fmnist, processes=2, epochs_per_process=1)
    c, w = cold.extra["startup"], warm.extra["startup"]
    assert c["cold"] and c["fresh_workers"] == 2 and c["unpaid"] == 0 and c["waited"] > 0
    assert not w["cold"] and w["fresh_workers"] == 0 and w["waited"] == 0
    assert w["unpaid"] == pytest.approx(started)
    # the one-off set-up adds back what the reused workers cost to start; the warm one does not
    assert warm.setup_seconds == pytest.approx(w["measured_setup"] + w["unpaid"])
    assert warm.warm_setup_seconds == pytest.approx(w["measured_setup"])
    assert warm.total_seconds == pytest.approx(warm.wall_seconds + w["unpaid"])
    assert warm.warm_total_seconds == pytest.approx(warm.wall_seconds, rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("cold", [True, False])
def test_order_of_configurations_does_not_decide_setup(fmnist, cold):
    """The same plan in two orders: every run's one-off set-up includes its workers' start-up,
    paid (fresh workers) or added back (warm ones), whichever ran first (the old code reported
    0.06 s for the second configuration and 4 s for the first)."""
    only = ["hogwild 1x2", "hogwild 2x1"]
    for order in (only, only[::-1]):
        pool.close_all()
        res = run_comparison(fmnist, only=order, total_epochs=2, cold=cold)
        assert [r.label for r in res] == order  # --only keeps the order it is given
        for i, r in enumerate(res):
            start = r.extra["startup"]
            # every run started workers (and waited for them) or reused some whose start-up
            # is added back; the one-off set-up is what it measured plus that
            assert (start["fresh_workers"] and start["waited"] > 0) or start["unpaid"] > 0
            assert r.setup_seconds == pytest.approx(start["measured_setup"] + start["unpaid"])
            if cold or i == 0:  # started fresh, as a one-off run
                assert start["cold"] and start["fresh_workers"] == r.config["processes"]
    pool.close_all()


def _result(label: str, totals: list[float], warm: list[float], busy: bool = False) -> RunResult:
    r = RunResult(method="baseline", config={}, label=label, total_seconds=totals[0])
    r.extra["repeats"] = [dict(total_seconds=t, warm_total_seconds=w, time_to_target_seconds=None,
                               one_off_seconds=t - 1.0,
                               load=describe_load(1.2 if busy else 0.0, 0.0, 2))
                          for t, w in zip(totals, warm)]
    return r


def test_verdicts_say_within_noise_and_name_a_busy_machine():
    a = _result("a", [10, 11, 12], [9, 10, 11])
    b = _result("b", [11.5, 13, 14], [8, 9, 10])
    text = verdicts([a, b])
    assert text[0].startswith("One-off runs, set-up + training") and "within noise" in text[0]
    assert "evaluation not counted, as `costtrain advise` predicts" in text[0]
    assert text[1].startswith("End to end, the evaluations included") and "within noise" in text[1]
    assert text[2].startswith("If you re-run") and text[2].split(": ", 1)[1].startswith("b ")
    c = _result("c", [30, 31, 32], [30, 31, 32])
    assert "within noise" not in verdicts([a, c])[0]
    busy = _result("busy", [5, 5, 5], [5, 5, 5], busy=True)
    out = verdicts([a, busy])
    assert len(out) == 1 and out[0].startswith("No verdict: the machine was busy during busy")
    one = [RunResult(method="baseline", config={}, label=x, train_seconds=s, total_seconds=s)
           for x, s in (("x", 3.0), ("y", 2.0))]
    only = verdicts(one)
    assert len(only) == 1 and "one run each" in only[0] and "names no winner" in only[0]
    assert "y 2 s" in only[0]


def test_time_to_accuracy_interpolates_between_evaluations():
    curve = dict(samples=[1000, 2000, 3000], seconds=[1.0, 2.0, 3.0], accuracy=[0.5, 0.6, 0.8],
                 loss=[0, 0, 0])
    seconds, samples = time_to_accuracy(curve, 0.7)
    assert seconds == pytest.approx(2.5) and samples == 2500
    assert time_to_accuracy(curve, 0.5) == (1.0, 1000)  # reached at the first evaluation
    assert time_to_accuracy(curve, 0.9) == (None, None)


def test_load_record_names_other_work_and_steal():
    assert describe_load(0.1, 0.0, 2)["busy"] is False
    busy = describe_load(0.8, 0.0, 2)
    assert busy["busy"] and busy["note"] == "other work used 0.8 of 2 cores"
    assert "hypervisor" in describe_load(0.0, 0.2, 2)["note"]


def test_notebook_sentences_name_a_busy_machine_instead_of_a_leader():
    from costtrain.advice import prose
    from costtrain.measure import busy_note
    quiet = RunResult(method="baseline", config={}, label="quiet", total_seconds=3.0)
    quiet.extra["load"] = describe_load(0.0, 0.0, 2)
    loaded = RunResult(method="baseline", config={}, label="loaded", total_seconds=9.0)
    loaded.extra["load"] = describe_load(1.5, 0.0, 2)
    assert prose.machine_note([quiet]) == ""
    note = prose.machine_note([quiet, loaded])
    assert note.startswith("**The machine was busy:** during loaded") and "1.5 of 2 cores" in note
    busy = busy_note([quiet, loaded])
    text = prose.ranking_sentence("End to end", {"quiet": [3, 3.1], "loaded": [9, 9.2]}, busy=busy)
    assert "no verdict" in text and "lowest" not in text
    assert "ahead of" in prose.ranking_sentence("End to end", {"quiet": [3, 3.1], "loaded": [9, 9.2]})
    assert "no verdict" in prose.target_sentence({"quiet": [1.0, 1.2], "loaded": [2.0, 2.1]},
                                                 "70 %", busy=busy)
