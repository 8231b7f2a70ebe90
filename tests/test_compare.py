"""The main comparison's plan (the levers notebook 01b kept, what it leaves out, what it starts)
and what notebook 04 reads from its runs: the advise probe's counterpart and the take-overs."""
from __future__ import annotations

import warnings

import pytest

from costtrain import methods
from costtrain.advice import advise
from costtrain.advice.compare import (comparison_plan, counterpart, not_compared, oversubscribed,
                                      processes_started, repeat_record, run_comparison, takeovers,
                                      verdicts)
from costtrain.advice.report import repeats_table
from costtrain.result import RunResult
from costtrain.run import guards

LEVERS = {"channels_last": True}


def test_the_single_process_levers_go_to_the_in_process_cpu_configurations_only():
    plain = {label: kw for label, _, kw in comparison_plan(2, cores=2)}
    carried = {label: kw for label, _, kw in comparison_plan(2, cores=2, single_process_levers=LEVERS)}
    assert set(carried) == {"baseline 1 thread + channels_last", "baseline 2 threads + channels_last",
                            *(label for label in plain if not label.startswith("baseline"))}
    assert carried["baseline 2 threads + channels_last"] == {**plain["baseline 2 threads"], **LEVERS}
    for label, kw in plain.items():  # Hogwild! and the parameter server: as before
        if not label.startswith("baseline"):
            assert carried[label] == kw
    # a lever that was not kept changes nothing
    assert comparison_plan(2, cores=2, single_process_levers={"channels_last": False}) == comparison_plan(2, cores=2)


def test_the_labels_are_suffixed_as_advise_suffixes_its_probes():
    probe = advise.Probe("baseline 2 threads", "baseline", {"threads": 2})
    (p, _), = advise._usable([probe], 1, LEVERS, [])
    assert p.label in {label for label, _, _ in comparison_plan(2, cores=2, single_process_levers=LEVERS)}


def test_what_the_comparison_leaves_out_is_named():
    assert [m.title for m in not_compared(2, cores=2)] == ["local SGD"]
    assert all(m.compare(2, 2) for m in methods.METHODS.values() if m not in not_compared(2, cores=2))


def test_the_processes_started_are_those_the_thread_check_counts(monkeypatch):
    assert processes_started("ps sync", {"workers": 2, "mode": "sync"}, cores=2) == (3, 1, "the server")
    assert processes_started("hogwild 4x1/2 shards", {"processes": 4}, cores=2) == (4, 1, "")
    assert processes_started("baseline 2 threads", {"threads": 2}, cores=2) == (1, 2, "")
    monkeypatch.setattr(guards, "num_cores", lambda: 2)
    plan = comparison_plan(2, cores=2)
    flagged = {label for label, *_ in oversubscribed(plan, cores=2)}
    assert flagged == {"hogwild 4x1/2 shards", "ps sync", "ps async"}
    for label, _, kw in plan:  # the warning fires for exactly the configurations named
        p, t, also = processes_started(label, kw, cores=2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            guards.check_threads(p, t, also=also)
        assert bool(caught) == (label in flagged), label


def run(label: str, method: str, processes: int, threads: int, setups, rates, trains=None) -> RunResult:
    """A comparison result with repeats: one-off set-ups and steady rates per repeat."""
    trains = trains or [6000 / x for x in rates]
    reps = [RunResult(method=method, label=label, config={"processes": processes}, threads=threads,
                      setup_seconds=s, train_seconds=t, eval_seconds=0.5, samples=6000,
                      steady_samples_per_second=x) for s, x, t in zip(setups, rates, trains)]
    r = reps[0]
    r.extra["repeats"] = [repeat_record(x) for x in reps]
    return r


def test_an_advise_probe_finds_its_comparison_run_by_configuration_not_label():
    results = [run("baseline 2 threads", "baseline", 1, 2, [0.01], [8000]),
               run("hogwild 1x2", "hogwild", 1, 2, [3.8], [7000]),
               run("hogwild 2x1", "hogwild", 2, 1, [4.7], [6000]),
               run("ps sync", "ps-sync", 3, 1, [7.0], [7000])]
    probe = RunResult(method="hogwild", label="hogwild 2 processes", config={"processes": 2}, threads=1)
    assert counterpart(probe, results).label == "hogwild 2x1"
    ps = RunResult(method="ps-sync", label="ps-sync 2 workers", config={"processes": 3}, threads=1)
    assert counterpart(ps, results).label == "ps sync"
    alone = RunResult(method="baseline", label="baseline 1 thread", config={"processes": 1}, threads=1)
    assert counterpart(alone, results) is None


def test_takeovers_come_from_the_repeats_and_need_them():
    quick = run("baseline 2 threads", "baseline", 1, 2, [0.01, 0.02], [8000, 8200])
    late_fast = run("hogwild 2x1", "hogwild", 2, 1, [4.0, 4.2], [16000, 16500])
    late_slow = run("ps sync", "ps-sync", 3, 1, [6.0, 6.5], [5000, 5200])
    said = takeovers([quick, late_fast, late_slow], epoch_samples=3000)
    assert len(said) == 2
    over = next(x for x in said if x.startswith("hogwild 2x1"))
    assert "takes over after" in over  # 4.1 s / (1/8100 - 1/16250) samples: about 67,000
    assert "never takes over" in next(x for x in said if x.startswith("ps sync"))
    once = [run("a", "baseline", 1, 1, [0.0], [8000]), run("b", "hogwild", 2, 1, [4.0], [16000])]
    assert takeovers(once, epoch_samples=3000) == []


def test_the_verdicts_and_the_repeats_table_lead_with_set_up_plus_training():
    # b is sooner end to end only because a evaluates longer: set-up + training ranks a first
    a = run("a", "baseline", 1, 2, [0.01, 0.01], [6000, 6000], trains=[1.0, 1.1])
    b = run("b", "hogwild", 2, 1, [0.3, 0.3], [6000, 6000], trains=[1.0, 1.1])
    for x in a.extra["repeats"]:
        x["total_seconds"] += 2.0
    one_off, end_to_end, _ = verdicts([a, b])
    head, _, verdict = one_off.partition(": ")
    assert head == ("One-off runs, set-up + training (each pays its own start-up; evaluation not "
                    "counted, as `costtrain advise` predicts)") and verdict.startswith("a is")
    assert end_to_end.partition(": ")[2].startswith("b is")
    header = repeats_table([a, b]).splitlines()[0]
    assert header.index("set-up + train s") < header.index("total s")


@pytest.mark.parametrize("levers", [LEVERS, None])
def test_run_comparison_runs_the_baseline_with_the_carried_levers(fmnist, levers):
    (r,) = run_comparison(fmnist, total_epochs=1, only=["baseline 1 thread"], single_process_levers=levers)
    assert r.label == "baseline 1 thread" + (" + channels_last" if levers else "")
    assert bool(r.config.get("channels_last")) is bool(levers) and r.status == "ok"
