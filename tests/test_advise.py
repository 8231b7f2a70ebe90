import math
import re

import pytest
import torch.nn as nn

from costtrain import cli
from costtrain.advice.advise import Probe, probe_plan, recommend
from costtrain.advice.cost import money, price_basis
from costtrain.advice.plots import plot_cost_to_target
from costtrain.advice.predict import (ACCURACY_SLACK, accuracy_after, accuracy_at, fit_accuracy,
                                      justify, rank_probes, samples_to_reach)
from costtrain.result import RunResult
from costtrain.utils import CosttrainError

A, B = 0.9, 3.0  # the synthetic learning curve: acc(n) = A - B / sqrt(n)


def probe_result(label: str, rate: float, setup: float = 1.0, plateau: float = A,
                 watts: float | None = None, method: str = "baseline", **config) -> RunResult:
    """A probe's RunResult built from known numbers: throughput, set-up and learning curve."""
    samples = [500, 1000, 2000, 4000]
    r = RunResult(method=method, config=config, threads=config.pop("threads", 1),
                  setup_seconds=setup, train_seconds=4000 / rate, samples=4000,
                  samples_per_second=rate, steady_samples_per_second=rate,
                  eval_curve={"samples": samples, "seconds": [n / rate for n in samples],
                              "accuracy": [plateau - B / math.sqrt(n) for n in samples],
                              "loss": [1.0] * 4})
    r.label = label
    if watts:
        r.cost = {"average_watts": watts, "energy_source": "measured: rapl"}
    return r


def test_fit_recovers_a_known_curve():
    fit = fit_accuracy(probe_result("x", 1000).eval_curve)
    assert fit == pytest.approx((A, B))
    assert accuracy_after(fit, 10_000) == pytest.approx(A - B / 100)
    assert samples_to_reach(fit, 0.85) == pytest.approx((B / 0.05) ** 2)
    assert samples_to_reach(fit, 0.95) is None
    flat = fit_accuracy({"samples": [100, 200, 300], "accuracy": [0.5, 0.4, 0.45]})
    assert flat == (0.5, 0.0)  # no progress measured: no improvement extrapolated


def test_ranking_follows_known_throughput():
    probes = [probe_result("slow", 1000), probe_result("fast", 4000),
              probe_result("medium", 2000)]
    rows = rank_probes(probes, job_samples=60_000)
    assert [r.label for r in rows] == ["fast", "medium", "slow"]
    for r, rate in zip(rows, (4000, 2000, 1000)):
        assert r.predicted_seconds == pytest.approx(1.0 + 60_000 / rate)
        assert r.expected_accuracy is None  # no extrapolated accuracy without a target
        assert r.probe_accuracy == pytest.approx(A - B / math.sqrt(4000))  # measured
        assert r.accuracy_samples == 4000 and not r.listed_after
        assert r.rank == rows.index(r) + 1


def test_time_to_target_from_the_fit():
    probes = [probe_result("a", 1000), probe_result("b", 3000)]
    rows = rank_probes(probes, job_samples=60_000, target_accuracy=87)
    need = (B / (A - 0.87)) ** 2  # 10,000 samples: beyond the probes, from the fit
    assert [r.label for r in rows] == ["b", "a"]
    assert rows[0].predicted_seconds == pytest.approx(1.0 + need / 3000)
    assert rows[0].reaches_target and "10,000 samples to 87 %" in rows[0].why
    # reached within the probe (0.853 at 4,000 samples): the measured crossing is used
    rows = rank_probes(probes, job_samples=60_000, target_accuracy=0.85)
    assert rows[0].predicted_seconds == pytest.approx(1.0 + 4000 / 3000)
    # one that never gets there comes after one that does, however fast it is
    rows = rank_probes([probe_result("fast", 8000, plateau=0.84), probe_result("slow", 1000)],
                       job_samples=60_000, target_accuracy=0.85)
    assert [(r.label, r.reaches_target) for r in rows] == [("slow", True), ("fast", False)]
    assert rows[1].predicted_seconds == pytest.approx(1.0 + 60_000 / 8000)  # the whole job


def test_setup_cost_crossover_is_where_arithmetic_puts_it():
    # 30 s of set-up at 8,000/s vs none at 1,000/s: equal at 30 / (1/1000 - 1/8000) = 34,286
    probes = [probe_result("big start", 8000, setup=30.0), probe_result("no start", 1000, setup=0)]
    assert rank_probes(probes, job_samples=30_000)[0].label == "no start"
    assert rank_probes(probes, job_samples=40_000)[0].label == "big start"


def test_only_measured_accuracy_at_equal_samples_demotes_and_the_reason_is_stated():
    def seeded(label: str, rate: float, plateau: float) -> list[RunResult]:
        return [probe_result(label, rate, plateau=plateau + d, seed=42 + k)
                for k, d in enumerate((-0.002, 0.0, 0.002))]
    worse = seeded("fast but worse", 4000, A - 5 * ACCURACY_SLACK)
    rows = rank_probes(worse + seeded("good", 1000, A), job_samples=10_000)
    assert [r.label for r in rows] == ["good", "fast but worse"]
    assert "learned 5.0 points less than good at 4,000 samples" in rows[1].listed_after
    assert "measured, 3 probes each" in rows[1].listed_after and not rows[0].listed_after
    text = justify(rows, job={"epochs": 1, "samples": 10_000, "target_accuracy": None},
                   basis=price_basis())
    assert text.startswith("good is predicted to train the job (10,000 samples) in 11 s")
    assert "fast but worse would be sooner (3.5 s) but its probes learned 5.0 points less" in text
    # the same gap from one probe each, or from repeats of one seed: no noise measured, no verdict
    for fast, good in (([worse[1]], [seeded("good", 1000, A)[1]]),
                       ([probe_result("fast but worse", 4000, plateau=A - 5 * ACCURACY_SLACK,
                                      seed=42)] * 3,
                        [probe_result("good", 1000, plateau=A, seed=42)] * 3)):
        rows = rank_probes(fast + good, job_samples=10_000)
        assert [r.label for r in rows] == ["fast but worse", "good"] and not rows[0].listed_after
    # within the slack, time decides
    rows = rank_probes([probe_result("fast", 4000, plateau=A - ACCURACY_SLACK / 2),
                        probe_result("good", 1000)], job_samples=10_000)
    assert [r.label for r in rows] == ["fast", "good"] and not rows[0].listed_after
    # repeats whose accuracy ranges overlap are within noise: not demoted however far the medians
    noisy = [probe_result("fast", 4000, plateau=p) for p in (0.80, 0.85, 0.90)]
    rows = rank_probes(noisy + [probe_result("good", 1000, plateau=p) for p in (0.86, 0.9, 0.91)],
                       job_samples=10_000)
    assert [r.label for r in rows] == ["fast", "good"]
    assert rows[0].accuracy_range is not None and not rows[0].listed_after
    # compared where every probe measured: a shorter probe is read at its own last evaluation
    short = [_short_probe("short", 4000, [0.1, 0.2, 0.3, 0.4 + d]) for d in (0, 0.01, 0.02)]
    for k, p in enumerate(short):
        p.config["seed"] = k
    rows = rank_probes(short + seeded("good", 1000, A), job_samples=10_000)
    assert rows[0].accuracy_samples == 1000 and [r.label for r in rows] == ["good", "short"]
    assert rows[0].probe_accuracy == pytest.approx(A - B / math.sqrt(1000))


def test_accuracy_is_read_off_a_curve_between_its_evaluations():
    curve = {"samples": [100, 200, 400], "accuracy": [0.2, 0.4, 0.5]}
    assert accuracy_at(curve, 200) == 0.4 and accuracy_at(curve, 300) == pytest.approx(0.45)
    assert accuracy_at(curve, 50) == 0.2 and accuracy_at(curve, 500) is None


def test_cost_uses_measured_power_and_failed_probes_come_last():
    basis = price_basis(price_per_kwh=0.3)
    failed = RunResult(method="hogwild", config={"processes": 2, "epochs_per_process": 1},
                       status="failed",
                       error="WorkerError: worker 1 died\ntraceback...")
    rows = rank_probes([failed, probe_result("hot", 2000, watts=100.0),
                        probe_result("cool", 1500, watts=20.0)],
                       job_samples=60_000, basis=basis)
    assert [r.label for r in rows] == ["hot", "cool", "hogwild 2x1"]
    hot, cool, dead = rows
    assert hot.predicted_cost == pytest.approx(0.3 * 100 * hot.predicted_seconds / 3.6e6)
    assert cool.predicted_cost < hot.predicted_cost
    assert dead.status == "failed" and dead.why == "WorkerError: worker 1 died"
    assert dead.call() == ("train_hogwild(net, data, processes=2, epochs_per_process=1, "
                           "sharding='shard', threads=1)")
    assert dead.command() == ("costtrain run --method hogwild --processes 2 "
                              "--epochs-per-process 1 --sharding shard --threads 1")
    text = justify(rows, job={"epochs": 1, "samples": 60_000, "target_accuracy": None},
                   basis=basis)
    assert f"The cheapest is cool at {money(cool.predicted_cost)} (20 W)" in text
    fig = plot_cost_to_target(rows)
    assert len(fig.axes[0].patches) == 2  # one bar per configuration that ran


def test_probe_plan_fits_the_machine():
    plan = probe_plan(cores=8, gpu=True)
    labels = [p.label for p in plan]
    assert labels[:3] == ["baseline 1 thread", "baseline 8 threads", "baseline cuda"]
    assert [p.kwargs["processes"] for p in plan
            if p.method == "hogwild" and "device" not in p.kwargs] == [2, 4, 8]
    assert {(p.kwargs["mode"], p.kwargs["workers"]) for p in plan if p.method == "ps"} == {
        ("sync", 2), ("async", 2), ("sync", 7), ("async", 7)}
    assert [p.label for p in probe_plan(cores=1, gpu=False)][:1] == ["baseline 1 thread"]
    assert not any(p.method == "hogwild" for p in probe_plan(cores=1, gpu=False))


def test_small_budget_skips_probes_and_says_so(fmnist):
    labels = [f"baseline {i}" for i in range(6)]
    advice = recommend("mlp", fmnist, budget_seconds=2.0, progress=False, repeats=1,
                       probes=[Probe(label, "baseline", {"threads": 1}) for label in labels])
    ran = list(dict.fromkeys(p.label for p in advice.probes))  # close ones may run again
    named = []  # the probes the notes say were skipped
    for note in advice.notes:
        if m := re.match(r"skipped (.+?): ", note):
            named.append(m.group(1))
        if m := re.search(r"was spent: skipped (.+?); raise", note):
            named += m.group(1).split(", ")
    # six probes, each guessed at 0.5 s of set-up alone, cannot all fit 80 % of 2 s
    assert len(ran) < 6 and named
    assert sorted(ran + named) == labels  # each probe either ran or is named as skipped, once
    rows = {r.label: r.status for r in advice.rows}
    assert all(rows.get(label, "skipped") == "skipped" for label in named)


def test_missing_trainer_is_skipped_with_a_note(fmnist):
    advice = recommend("mlp", fmnist, budget_seconds=5, progress=False, repeats=1, probes=[
        Probe("baseline 1 thread", "baseline", {"threads": 1}),
        Probe("ps-sync 2 workers", "ps", {"mode": "sync", "workers": 2})])
    assert advice.recommended is not None
    import importlib.util
    if importlib.util.find_spec("costtrain.train.parameter_server") is None:
        assert any("parameter_server" in n for n in advice.notes)


@pytest.mark.parametrize("kw,match", [(dict(budget_seconds=0), "budget"),
                                      (dict(epochs=0), "epochs"),
                                      (dict(samples=0), "samples"),
                                      (dict(epochs=2, samples=10), "epochs or as samples"),
                                      (dict(target_accuracy=150), "target accuracy"),
                                      (dict(instance="nope"), "unknown instance"),
                                      (dict(model=lambda: "not a net"), "nn.Module"),
                                      (dict(model="resnet"), "unknown model")])
def test_bad_input_fails_before_probing(fmnist, kw, match, monkeypatch):
    from costtrain.advice import advise

    def probe(*args, **kwargs):
        raise AssertionError("a probe ran before the input was checked")
    monkeypatch.setattr(advise, "_calibrate", probe)  # the first measurement
    monkeypatch.setattr(advise, "_run_probe", probe)
    kw = {"model": "mlp", **kw}
    with pytest.raises(CosttrainError, match=match):
        recommend(data=fmnist, progress=False, **kw)


def test_users_own_dataset_and_factory():
    import torch

    from costtrain.data.datasets import Dataset
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 3, 8, 8, generator=g)

    def split(n):
        y = torch.arange(n) % 4
        return centers[y] + 0.8 * torch.randn(n, 3, 8, 8, generator=g), y
    ds = Dataset("blobs", *split(2000), *split(400), classes=list("abcd"), mean=(0.0,) * 3,
                 std=(1.0,) * 3)
    advice = recommend(lambda: nn.Sequential(nn.Flatten(), nn.Linear(192, 4)), ds,
                       budget_seconds=8, epochs=2, target_accuracy=0.9, progress=False, repeats=1,
                       probes=[Probe("baseline 1 thread", "baseline", {"threads": 1})])
    best = advice.recommended
    assert best is not None and best.reaches_target, advice
    assert advice.job == {**advice.job, "dataset": "blobs", "samples": 4000}
    assert advice.probes[0].config["model"] == "Sequential"


def _short_probe(label: str, rate: float, accuracies: list[float]) -> RunResult:
    """A probe of 1,000 samples evaluated every 250 (shorter than half of probe_result's 4,000)."""
    samples = [250, 500, 750, 1000][:len(accuracies)]
    r = RunResult(method="baseline", config={}, threads=1, setup_seconds=1.0,
                  train_seconds=1000 / rate, samples=1000, samples_per_second=rate,
                  steady_samples_per_second=rate,
                  eval_curve={"samples": samples, "seconds": [n / rate for n in samples],
                              "accuracy": accuracies, "loss": [1.0] * len(samples)},
                  label=label)
    return r


JOB = {"epochs": 2, "samples": 20_000, "target_accuracy": 0.7}


def test_a_target_measured_in_a_short_probe_counts():
    # the 04 notebook's contradiction: a probe measured the target, yet the advice said that no
    # probe showed it within reach (a short probe's measurements were ignored with its fit)
    rows = rank_probes([probe_result("long, below", 2000, plateau=0.6),
                        _short_probe("short, above", 1000, [0.55, 0.66, 0.72, 0.75])],
                       job_samples=JOB["samples"], target_accuracy=0.7)
    assert [(r.label, r.reaches_target) for r in rows] == [("short, above", True),
                                                           ("long, below", False)]
    assert rows[0].predicted_seconds == pytest.approx(1.0 + 750 / 1000)  # measured crossing
    assert "~750 samples to 70 %" in rows[0].why
    text = justify(rows, job=JOB, basis=price_basis())
    assert text.startswith("short, above is predicted to reach 70 % test accuracy in 1.75 s")
    assert "within reach" not in text and "stay below" not in text


def test_advice_without_a_predicted_target_says_what_the_probes_could_tell():
    # all too short to judge: nothing is claimed about the target either way
    rows = rank_probes([_short_probe("a", 1000, [0.2, 0.3]), probe_result("b", 2000, plateau=0.9)],
                       job_samples=JOB["samples"], target_accuracy=0.99)
    rows = [r for r in rows if r.label == "a"]
    assert rows[0].reaches_target is None and "probe too short" in rows[0].why
    text = justify(rows, job={**JOB, "target_accuracy": 0.99}, basis=price_basis())
    assert text.startswith("The probes were too short to tell when 99 % test accuracy would be "
                           "reached, which is not a sign that 2 epoch(s) cannot reach it, so the "
                           "configurations are ranked by the time for the whole job.")
    # judged, and the fit stays below: said to be an extrapolation, as in the table's why column
    rows = rank_probes([probe_result("c", 1000, plateau=0.6), probe_result("d", 2000, plateau=0.65)],
                       job_samples=JOB["samples"], target_accuracy=0.7)
    assert all(r.reaches_target is False and "fit stays below 70 % within the job" in r.why
               for r in rows)
    text = justify(rows, job=JOB, basis=price_basis())
    assert text.startswith("The probes' short learning curves, extrapolated, stay below 70 % "
                           "within 2 epoch(s) for 2 of 2 configuration(s): a rough guess")
    assert "not a measurement" in text and "No probe showed" not in text


def test_probe_plan_with_a_gpu_tries_cuda_at_a_larger_batch_and_hogwild_on_cuda():
    from costtrain.advice.advise import CUDA_BATCH
    cuda = [p for p in probe_plan(cores=16, gpu=True) if p.kwargs.get("device") == "cuda"]
    assert [(p.method, p.kwargs.get("batch_size"), p.kwargs.get("processes")) for p in cuda] == [
        ("baseline", None, None), ("baseline", CUDA_BATCH, None), ("hogwild", None, 2)]
    assert CUDA_BATCH > 64 and all(p.kwargs["threads"] == 1 for p in cuda)
    assert len({p.label for p in cuda}) == 3
    assert not any(p.kwargs.get("device") == "cuda" for p in probe_plan(cores=16, gpu=False))


def _probe(label: str, rate: float, setup: float) -> RunResult:
    return RunResult(method="baseline", label=label, config={"epochs": 1, "threads": 1},
                     threads=1, setup_seconds=setup, train_seconds=10.0, samples=640,
                     steady_samples_per_second=rate)


def test_repeated_probes_predict_the_median_with_a_range():
    probes = [_probe("a", 1000, 1.0), _probe("b", 900, 1.0), _probe("a", 1200, 1.0),
              _probe("b", 1100, 1.0), _probe("a", 800, 1.0), _probe("b", 1000, 1.0)]
    rows = rank_probes(probes, job_samples=60_000)
    a = next(r for r in rows if r.label == "a")
    assert a.probes == 3 and a.samples_per_second == 1000 and a.rate_range == (800, 1200)
    assert a.predicted_seconds == pytest.approx(1 + 60_000 / 1000)  # the median, not a probe's end
    assert a.predicted_range == pytest.approx((1 + 60_000 / 1200, 1 + 60_000 / 800))
    from costtrain.advice.predict import within_noise
    assert within_noise(*rows)
    far = rank_probes([_probe("fast", 5000, 1.0), _probe("fast", 5100, 1.0),
                       _probe("slow", 1000, 1.0), _probe("slow", 1050, 1.0)], job_samples=60_000)
    assert [r.label for r in far] == ["fast", "slow"] and within_noise(*far) is False
    # even repeats: the median of two is their mean, not the slower probe
    two = rank_probes([_probe("x", 1000, 0.0), _probe("x", 2000, 0.0)], job_samples=6000)
    assert two[0].predicted_seconds == pytest.approx((6 + 3) / 2)


def _distributed_probe(label: str, method: str, compute: float, payload: int, **config) -> RunResult:
    r = probe_result(label, 64 * 2 / compute, method=method, workers=2, batch_size=64, **config)
    r.extra = {"per_worker": {"0": {"compute_seconds": compute * 100}},
               "comm": {"payload_bytes": payload, "worker_steps": 100}}
    return r


def test_machines_on_a_link_are_predicted_rows():
    from costtrain.advice.advise import network_variants
    ls = _distributed_probe("local-sgd 2 workers H=8", "local-sgd", 0.05, 10_000_000,
                            average_every=8)
    ps = _distributed_probe("ps-sync 2 workers", "ps-sync", 0.05, 10_000_000, mode="sync")
    base = probe_result("baseline 1 thread", 5000)
    basis = price_basis(watts=30)
    variants = network_variants([base, ls, ps], 4, "wifi", basis)
    assert [v.label for v in variants] == ["local-sgd H=8 on 4 machines, wifi (predicted)",
                                           "ps-sync on 4 machines, wifi (predicted)"]
    # wifi 12.5 MB/s: ring 1.5 x 10 MB per average / 8 steps vs 2 x 3 x 10 MB every step
    v_ls, v_ps = variants
    assert v_ls.steady_samples_per_second == pytest.approx(4 * 64 / (0.05 + 1.5e7 / 12.5e6 / 8
                                                                     + 3 * 3e-3 / 8))
    assert v_ps.steady_samples_per_second == pytest.approx(4 * 64 / (0.05 + 6e7 / 12.5e6 + 3e-3))
    assert v_ls.config["workers"] == 4 and v_ls.cost["average_watts"] == 4 * 30
    rows = rank_probes([base, ls, ps] + variants, job_samples=60_000, basis=basis)
    assert rows[0].label == "baseline 1 thread"  # 5000/s here beats every predicted set-up
    predicted = [r for r in rows if "(predicted)" in r.label]
    assert len(predicted) == 2 and all(r.job["workers"] == 4 for r in predicted)
    assert "--average-every 8" in next(r for r in predicted if r.method == "local-sgd").command()


def test_bad_link_is_refused_before_probing(capsys):
    assert cli.main(["advise", "--machines", "2", "--link", "carrier-pigeon"]) == 2
    assert "link must be one of lan, wifi, wan" in capsys.readouterr().err


def test_close_contenders_are_probed_again_and_ranked_on_their_medians(fmnist, monkeypatch):
    """Two configurations that are the same computation cannot be told apart by one short probe
    each: advise probes them again (not the one far behind) and ranks them with ranges."""
    from costtrain.advice import advise

    # 3,000-sample probes of the same computation differ by up to 2.4x here (the first probe in
    # a process is the slowest); batches of 4 run 7-11x slower than batches of 64
    monkeypatch.setattr(advise, "NEAR", 4.0)
    same = {"threads": 1}
    advice = recommend("mlp", fmnist, budget_seconds=15, progress=False, repeats=1, probes=[
        Probe("one", "baseline", same), Probe("the same", "baseline", same),
        Probe("tiny batches", "baseline", dict(same, batch_size=4))])
    counts = {label: sum(p.label == label for p in advice.probes)
              for label in ("one", "the same", "tiny batches")}
    assert counts["one"] > 1 and counts["the same"] > 1 and counts["tiny batches"] == 1, counts
    assert any("probed again" in n and "one" in n and "the same" in n for n in advice.notes), \
        advice.notes
    rows = {r.label: r for r in advice.rows}
    assert rows["one"].predicted_range and rows["the same"].predicted_range
    assert rows["tiny batches"].predicted_range is None
