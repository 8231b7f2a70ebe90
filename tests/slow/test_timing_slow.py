"""One definition per figure, checked on real runs of every trainer: total and parts, set-up
independent of order, a reused warm pool (the slow half of test_timing.py)."""
from __future__ import annotations

import time

import pytest

from costtrain.advice.compare import run_comparison
from costtrain.hogwild import train_hogwild
from costtrain.measure import preload
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


def test_a_planted_load_during_one_repeat_is_re_run_and_the_verdicts_still_come(fmnist):
    """Issue 32: a laptop always runs something. Another program takes a whole core during the
    first run of "baseline 2 threads": that run is busy (other work above 0.25 cores), is run
    again, and the verdicts come from the quiet runs; never "No verdict". On a box already busy
    from other work the ranking still comes, marked unreliable."""
    import os
    import signal
    import subprocess
    import sys

    from costtrain.advice.compare import verdicts
    load: list[int] = []

    def on_start(label):
        if label == "baseline 2 threads" and not load:
            # another program, not a child of this one (the load watch counts this process's
            # own children as the run's work): started through a shell that exits at once
            out = subprocess.run(["sh", "-c", f"{sys.executable} -c 'while True: pass' "
                                              ">/dev/null 2>&1 & echo $!"],
                                 capture_output=True, text=True, check=True).stdout
            load.append(int(out))
            time.sleep(0.5)  # it is using its core before the run starts

    def on_result(r):
        for pid in load:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        results = run_comparison(fmnist, model="simple", total_epochs=1, repeats=2,
                                 only=["baseline"], on_start=on_start, on_result=on_result)
    finally:
        on_result(None)
    by_label = {r.label: r for r in results}
    assert load, "the load was planted"
    planted = by_label["baseline 2 threads"]
    assert planted.extra["busy_reruns"] >= 1, planted.extra  # the planted run was not kept
    assert planted.extra["discarded_busy"][0]["load"]["other_cores"] > 0.25
    text = verdicts(results)
    assert text[0].startswith("Re-ran ") and "the verdicts use the quiet runs" in text[0], text
    assert not any(line.startswith("No verdict") for line in text), text
    assert any(line.startswith("One-off runs, set-up + training") for line in text), text
