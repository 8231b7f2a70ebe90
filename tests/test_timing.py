"""One definition per figure, for every trainer (costtrain.measure): the total is the measured
wall time of the call, the parts do not overlap, the steady rate follows one window rule, and
no configuration's set-up depends on which configurations ran before it."""
from __future__ import annotations

import pytest

from costtrain.advice.compare import verdicts
from costtrain.measure import describe_load, time_to_accuracy
from costtrain.result import RunResult


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
    out = verdicts([a, busy])  # still busy after the re-runs: the ranking, marked unreliable
    assert out[0].startswith("Unreliable: the machine stayed busy during busy (other work used "
                             "1.2 of 2 cores during busy)"), out
    assert len(out) == 4 and out[1].startswith("One-off runs") and ": busy " in out[1]
    busy.extra["busy_reruns"] = 2
    assert verdicts([a, busy])[0].startswith("Re-ran 2 run(s) during which the machine was busy "
                                             "(other work above 0.25 cores, or more than 5 % of "
                                             "the CPU time stolen), at most 2 per configuration")
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


# --- a busy laptop still gets an answer (issue 32) -------------------------------------------

def _fake_plan(monkeypatch, busy_at: set[int]):
    """compare's plan as two instant fake trainers; the n-th run overall (0-based) in `busy_at`
    reports other work on 1.2 of 2 cores. Returns the list of labels in the order they ran."""
    import torch

    from costtrain.advice import compare
    from costtrain.data.datasets import Dataset
    ran: list[str] = []

    def trainer_for(label, seconds):
        def train(model, ds, **kw):
            r = RunResult(method="baseline", config={"epochs": 1}, label=label,
                          setup_seconds=0.1, train_seconds=seconds, total_seconds=seconds + 0.1,
                          samples=100, test_accuracy=0.5)
            r.extra["load"] = describe_load(1.2 if len(ran) in busy_at else 0.0, 0.0, 2)
            ran.append(label)
            return r
        return train
    monkeypatch.setattr(compare, "comparison_plan", lambda total_epochs, *a, **kw: [
        ("fast", trainer_for("fast", 1.0), {}), ("slow", trainer_for("slow", 3.0), {})])
    ds = Dataset("fake", torch.zeros(4, 1), torch.zeros(4, dtype=torch.long), torch.zeros(2, 1),
                 torch.zeros(2, dtype=torch.long), ["a", "b"], 0.0, 1.0)
    return ran, ds


def test_a_busy_repeat_is_run_again_and_the_verdicts_use_the_quiet_ones(monkeypatch):
    from costtrain.advice.compare import run_comparison
    ran, ds = _fake_plan(monkeypatch, busy_at={1})  # the first run of "slow" was busy
    seen = []
    results = run_comparison(ds, repeats=2, cold=False, on_result=seen.append)
    assert ran == ["fast", "slow", "slow", "fast", "slow"]  # the busy one, run again at once
    assert len(seen) == 5  # on_result still sees every run
    fast, slow = results
    assert slow.extra["busy_reruns"] == 1 and fast.extra["busy_reruns"] == 0
    assert len(slow.extra["repeats"]) == 2 and not any(x["load"]["busy"]
                                                       for x in slow.extra["repeats"])
    assert slow.extra["discarded_busy"][0]["load"]["busy"]
    text = verdicts(results)
    assert text[0].startswith("Re-ran 1 run(s) during which the machine was busy")
    assert text[1].startswith("One-off runs") and "Unreliable" not in " ".join(text)


def test_a_machine_that_stays_busy_gets_the_ranking_marked_unreliable(monkeypatch):
    from costtrain.advice.compare import BUSY_RERUNS, run_comparison
    ran, ds = _fake_plan(monkeypatch, busy_at=set(range(100)))  # busy throughout
    results = run_comparison(ds, repeats=2, cold=False)
    # each of the 4 planned runs re-ran until the bound (2 per configuration, 4 in all)
    assert len(ran) == 4 + 2 * BUSY_RERUNS
    assert [r.extra["busy_reruns"] for r in results] == [BUSY_RERUNS, BUSY_RERUNS]
    text = verdicts(results)
    assert text[0].startswith("Re-ran 4 run(s)") and text[1].startswith("Unreliable: the "
                                                                       "machine stayed busy")
    assert text[2].startswith("One-off runs") and ": fast " in text[2]  # still the ranking
