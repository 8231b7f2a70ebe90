"""The decision card from real ``advise`` probes: ranges, the machine, and the card's command
run as a reader would, landing in its predicted range (the slow half of test_decision.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from costtrain import load_dataset
from costtrain.advice.advise import Probe, recommend
from costtrain.advice.decision import decision_card, verdict


@pytest.fixture(scope="module")
def advice():
    ds = load_dataset("fashion-mnist", subset=2000, test_subset=300, seed=1)
    from costtrain.run import pool
    pool.warm_up(2)  # a probe's time limit is seconds: on a busy machine a cold start exceeds it
    probes = [Probe("baseline 1 thread", "baseline", {"threads": 1}),
              Probe("hogwild 2 processes", "hogwild", {"processes": 2, "sharding": "shard"})]
    return recommend("mlp", ds, budget_seconds=60, epochs=3, probes=probes, progress=False,
                     repeats=3)


def test_real_probes_give_a_card_with_ranges_and_its_machine(advice, tmp_path):
    md, png = decision_card(advice, tmp_path, name="card")
    text = md.read_text()
    assert f"{advice.hardware['cpu']}, {advice.hardware['cores']} cores" in text
    assert "load: other work used up to" in text
    rec = advice.recommended
    assert rec is not None and rec.probes == 3 and rec.predicted_range is not None
    assert f"**{verdict(advice)[0]}:** {rec.label}" in text
    assert "--subset 2000" in rec.command() and "--epochs 3" in rec.command()


def test_the_cards_command_runs_the_predicted_job_in_the_predicted_time(advice, tmp_path):
    """Run the winner's command as a reader would (a fresh process): its set-up + training
    lands within the predicted range, or within 25 % of it where the range is narrower than
    this box's noise."""
    rec = advice.recommended
    out = tmp_path / "run.json"
    cmd = rec.command().split()[1:] + ["--no-progress", "--out", str(out)]
    assert "--model mlp" in rec.command()
    p = subprocess.run([sys.executable, "-m", "costtrain", *cmd], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    run = json.loads(out.read_text())
    run = run[0] if isinstance(run, list) else run
    assert run["samples"] == advice.job["samples"]  # exactly the job predicted
    measured = run["setup_seconds"] + run["train_seconds"]
    lo, hi = rec.predicted_range
    assert 0.75 * lo <= measured <= 1.25 * hi, (measured, rec.predicted_range)


def test_a_saved_advice_joins_the_class_table(advice, tmp_path):
    from costtrain.course.classroom import collect, table
    advice.save(tmp_path / "class" / "ada_advice.json")
    c = collect(tmp_path / "class")
    assert not c.refused and len(c.advice) == 1
    text = table(c)
    assert "What `costtrain advise` recommended" in text
    assert f"| {advice.recommended.label} |" in text and "ada_advice.json" in text
