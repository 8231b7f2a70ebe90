"""``advise`` end to end: real probes within a budget, from Python and the command line (the
slow half of test_advise.py)."""
import json
import re
import time

import pytest
import torch.nn as nn

from costtrain import cli
from costtrain.advice.advise import Probe, recommend


class TinyNet(nn.Module):
    """A user's own model class."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x):
        return self.fc(x)


def test_recommend_end_to_end_respects_budget_and_measurements(fmnist):
    budget = 15.0
    plan = [Probe("in-memory tensors", "baseline", {"threads": 1}),
            Probe("per-sample transforms", "baseline", {"threads": 1, "pipeline": "classic"}),
            Probe("hogwild 2 processes", "hogwild", {"processes": 2, "sharding": "shard"})]
    t0 = time.perf_counter()
    advice = recommend(TinyNet, fmnist, budget_seconds=budget, epochs=3, probes=plan,
                       progress=False, repeats=1)
    assert advice.elapsed_seconds <= time.perf_counter() - t0  # its own clock, not a speed claim
    ran = [p.label for p in advice.probes]
    skipped = [n for n in advice.notes if "skipped" in n]
    # each configuration once, plus the repeats `refine` adds to the close contenders when the
    # budget allows (how many depends on the machine's speed)
    assert set(ran) <= {p.label for p in plan}
    first = ran[:len(set(ran))]
    assert len(first) == len(set(first)), "a repeat ran before every configuration had its first probe"
    assert set(ran) == {p.label for p in plan} or skipped  # a probe left out is named
    ok = [r for r in advice.rows if r.status == "ok"]
    assert len(ok) >= 2, advice
    assert advice.recommended is ok[0]
    for r in ok:  # predictions are the probe's own measurements, extrapolated
        assert r.predicted_seconds == pytest.approx(r.setup_seconds + 9000 / r.samples_per_second)
        assert r.predicted_cost > 0 and 0 <= r.probe_accuracy <= 1
    for a in ok:  # higher measured rate and no more set-up => predicted sooner
        for b in ok:
            if a.samples_per_second > b.samples_per_second and a.setup_seconds <= b.setup_seconds:
                assert a.predicted_seconds < b.predicted_seconds
    # the known answer: the classic per-sample pipeline is the slower way to feed the same net
    memory, classic = (next(r for r in ok if r.label == name)
                       for name in ("in-memory tensors", "per-sample transforms"))
    assert memory.samples_per_second > classic.samples_per_second
    assert memory.rank < classic.rank and classic.job["pipeline"] == "classic"
    assert all(r.why for r in advice.rows)  # failed or skipped probes say why
    assert all(p.cost["energy_source"] for p in advice.probes if p.status == "ok")
    assert all(p.config["model"] == "TinyNet" for p in advice.probes if p.status == "ok")
    text = str(advice)
    if ok[0].probes == 1 or ok[1].probes == 1:  # one probe each: the fastest predicted, no verdict
        assert f"Soonest predicted, one probe each: {ok[0].label}" in text and "names no winner" in text
        assert "Recommended:" not in text
    else:  # refined: ranges decide between a recommendation and a tie
        assert f"Recommended: {ok[0].label}" in text or "Tie (within noise)" in text
    assert ok[0].label in advice.justification
    assert f"{ok[0].predicted_seconds:.3g} s" in advice.justification


def test_cli_advise(tmp_path, capsys):
    out = tmp_path / "advice.json"
    rc = cli.main(["advise", "--model", "mlp", "--subset", "1500", "--budget-seconds", "12",
                   "--target-accuracy", "60", "--instance", "aws-c7i.large", "--out", str(out),
                   "--figures", str(tmp_path / "figs"), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert re.search(r"^(Recommended|Tie \(within noise\)|Soonest predicted, one probe each): ",
                     text, re.M)
    assert text.count("Job: mlp on fashion-mnist, 1 epoch(s) of 1,500 training images") == 1
    assert "predicted s [range]" in text and "aws-c7i.large" in text
    saved = json.loads(out.read_text())
    assert saved["rows"] and saved["job"]["target_accuracy"] == 0.6
    assert saved["price_basis"]["name"] == "aws-c7i.large"
    for name in ("advise_accuracy_vs_time.png", "advise_cost.png", "decision_card.png"):
        assert (tmp_path / "figs" / name).stat().st_size > 1000
    card = (tmp_path / "figs" / "decision_card.md").read_text()
    assert card.splitlines()[2].startswith("**Job:** mlp on fashion-mnist")
    assert cli.main(["advise", "--instance", "nope", "--subset", "100"]) == 2


def test_cli_advise_for_several_machines(tmp_path, capsys):
    out = tmp_path / "advice.json"
    code = cli.main(["advise", "--model", "mlp", "--subset", "1000", "--budget-seconds", "40", "--repeats", "1",
                     "--machines", "4", "--link", "wan", "--no-progress", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "on 4 machines, wan (predicted)" in text and "4 machines on wan" in text
    data = json.loads(out.read_text())
    assert data["job"]["machines"] == 4 and "wan" in data["job"]["link"]
