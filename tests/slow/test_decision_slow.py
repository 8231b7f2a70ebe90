"""The decision card from real ``advise`` probes (the slow half of test_decision.py; notebook 06
runs in test_notebooks_slow.py)."""
from __future__ import annotations

import pytest

from costtrain import load_dataset
from costtrain.advice.advise import Probe, recommend
from costtrain.advice.decision import card_markdown, decision_card, verdict, what_would_change


@pytest.fixture(scope="module")
def advice():
    ds = load_dataset("fashion-mnist", subset=1200, test_subset=300, seed=1)
    from costtrain.run import pool
    pool.warm_up(2)  # a probe's time limit is seconds: on a busy machine a cold start exceeds it
    probes = [Probe("baseline 1 thread", "baseline", {"threads": 1}),
              Probe("hogwild 2 processes", "hogwild", {"processes": 2, "sharding": "shard"})]
    return recommend("mlp", ds, budget_seconds=60, epochs=2, probes=probes, progress=False)


def test_the_card_names_the_machine_the_choice_and_its_command(advice, tmp_path):
    md, png = decision_card(advice, tmp_path, name="card")
    text = md.read_text()
    assert text == card_markdown(advice)
    assert f"{advice.hardware['cpu']}, {advice.hardware['cores']} cores" in text
    rec = advice.recommended
    assert rec is not None and f"**{verdict(advice)[0]}:** {rec.label}" in text
    assert rec.command() in text and rec.command().startswith("costtrain run --method ")
    for row in advice.rows:
        assert f"| {row.label} |" in text
    assert "## What would change the answer" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_rules_of_thumb_are_computed_from_the_probes(advice):
    rules = " ".join(what_would_change(advice))
    hog = next(r for r in advice.probes if r.method == "hogwild" and r.status == "ok")
    one = next(r for r in advice.probes if r.method == "baseline" and r.status == "ok")
    ratio = hog.steady_samples_per_second / one.steady_samples_per_second
    assert f"Hogwild! with 2 processes trained {ratio:.2f}x" in rules
    assert f"after {hog.setup_seconds:.1f} s of set-up" in rules
    # a longer job helps only a method that is faster once started
    assert ("the longer the job, the less the start-up matters" in rules) == (ratio > 1)


def test_a_saved_advice_joins_the_class_table(advice, tmp_path):
    from costtrain.course.classroom import collect, table
    advice.save(tmp_path / "class" / "ada_advice.json")
    c = collect(tmp_path / "class")
    assert not c.refused and len(c.advice) == 1
    text = table(c)
    assert "What `costtrain advise` recommended" in text
    assert f"| {advice.recommended.label} |" in text and "ada_advice.json" in text
