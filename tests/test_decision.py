"""The ending: the decision card's rules on planted numbers (real ``advise`` probes:
slow/test_decision_slow.py; notebook 06 runs in slow/test_notebooks_slow.py)."""
from __future__ import annotations

from costtrain.advice.advise import Advice
from costtrain.advice.cost import price_basis
from costtrain.advice.decision import card_markdown, decision_card, verdict
from costtrain.advice.predict import Row


def _advice(*ranges) -> Advice:
    rows = [Row(f"config {i}", "baseline", {"epochs": 1}, predicted_seconds=10.0 + i,
                predicted_cost=0.001, predicted_range=rng, rank=i + 1)
            for i, rng in enumerate(ranges)]
    return Advice(rows=rows, recommended=rows[0], justification="", notes=[], probes=[],
                  job={"dataset": "fashion-mnist", "epochs": 1, "samples": 100},
                  basis=price_basis(), budget_seconds=1.0, elapsed_seconds=1.0)


def test_the_card_names_a_winner_only_when_the_probes_can_tell():
    word, sure = verdict(_advice(None, None))
    assert word == "Fastest predicted, one probe each" and "names no winner" in sure
    assert "config 1" in sure and "1.10x" in sure and "--repeats 3" in sure
    word, sure = verdict(_advice((9.0, 11.5), (10.5, 12.0)))
    assert word.startswith("Recommended, within noise") and "either is a fine choice" in sure
    assert verdict(_advice((9.0, 10.0), (10.5, 12.0))) == ("Recommended", "")
    assert verdict(_advice((9.0, 10.0))) == ("Recommended", "")
    text = card_markdown(_advice(None, None))
    assert "**Fastest predicted, one probe each:** config 0" in text and "**Recommended" not in text
    assert "**Recommended:** config 0" in card_markdown(_advice((9.0, 10.0), (10.5, 12.0)))


def test_a_card_without_any_probe_says_what_to_do(tmp_path):
    empty = Advice(rows=[], recommended=None, justification="", notes=[], probes=[],
                   job={"dataset": "fashion-mnist", "epochs": 1, "samples": 100},
                   basis=price_basis(), budget_seconds=1.0, elapsed_seconds=1.0)
    md, png = decision_card(empty, tmp_path)
    assert "No recommendation" in md.read_text() and "Raise the budget" in md.read_text()
    assert png.exists()
