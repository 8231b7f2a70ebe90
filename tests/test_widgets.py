"""The widgets' contract (costtrain.course.widgets): controls only set values; a Run panel trains with
them, says so, remembers the student's choice and draws a live plot from real progress messages."""
from __future__ import annotations

import ipywidgets as W
import pytest

from costtrain import train_baseline
from costtrain.course.exercises import check_prediction
from costtrain.course.widgets import (epoch_splits, read_controls, run_panel,
                                      split_control, training_controls)


def test_controls_only_set_values():
    c = training_controls(method="hogwild", total_epochs=4, processes=2, batch_size=32, lr=0.05)
    assert read_controls(c) == dict(method="hogwild", processes=2, epochs_per_process=2,
                                    batch_size=32, lr=0.05)
    c.controls["split"].value = (4, 1)
    assert read_controls(c)["processes"] * read_controls(c)["epochs_per_process"] == 4
    assert epoch_splits(6) == [(1, 6), (2, 3), (3, 2), (6, 1)]
    with pytest.raises(ValueError, match="cannot share 4 epochs"):
        split_control(4, 3)
    with pytest.raises(ValueError, match="method must be one of"):
        training_controls(method="sgd")
    with pytest.raises(ValueError, match="learning rate"):
        training_controls(lr=5.0)
    with pytest.raises(ValueError, match="at least one value"):
        training_controls(batch_size=None, lr=None)


def test_split_readout_is_short_enough_to_read():
    s = split_control(4, 2)
    assert s.description == "processes × epochs"
    assert all(len(label) <= 7 for label, _ in s.options), s.options  # the readout is ~8 chars


def _panel(name, fmnist, calls):
    def train(v, live):
        calls.append(dict(v))
        live.start("baseline")
        r = train_baseline("simple", fmnist, threads=1, batch_size=v["batch_size"], lr=v["lr"],
                           log_every=2, on_progress=live)
        live.finish(r)
        return r
    return run_panel(name, train, batch_size=64, lr=0.01)


def test_run_panel_trains_with_what_the_controls_show_and_remembers_it(fmnist, capsys):
    calls = []
    panel = _panel("test-memory", fmnist, calls)
    kinds = [type(w) for w in panel.children]
    assert W.Image in kinds and W.Output in kinds
    (run,) = [b for b in panel.children[1].children if getattr(b, "description", "") == "Run"]
    assert "costtrain-run" in run._dom_classes
    assert "costtrain-live-plot" in panel.live.image._dom_classes
    panel.controls.controls["batch_size"].value = 128
    # the cell is run again (or Run All): the student's choice survives
    panel = _panel("test-memory", fmnist, calls)
    assert panel.values() == {"batch_size": 128, "lr": 0.01}
    before = panel.live.redraws
    r = panel.run()
    assert calls[-1] == {"batch_size": 128, "lr": 0.01} and r.config["batch_size"] == 128
    assert capsys.readouterr().out.strip().endswith("settings used: batch_size=128, lr=0.01")
    assert panel.live.redraws >= before + 2  # start and finish at least
    assert panel.live.image.value[:4] == b"\x89PNG"
    # the Run button does the same, printing into the panel's Output
    panel.controls.controls["lr"].value = 0.02
    run = [b for b in panel.children[1].children if getattr(b, "description", "") == "Run"][0]
    run.click()
    assert calls[-1] == {"batch_size": 128, "lr": 0.02}
    assert panel.last.config["lr"] == 0.02


def test_check_prediction(capsys):
    assert check_prediction(1.1, 1.0) is None  # a cell shows the sentence, not a stray True/False
    assert "off by 10 %" in capsys.readouterr().out
    check_prediction(2.0, 1.0, tolerance=0.5)
    assert capsys.readouterr().out.startswith("Not this time")
    check_prediction(None, 1.0)
    assert capsys.readouterr().out.startswith("Write your guess first")
    check_prediction(" More", "more")
    assert capsys.readouterr().out.startswith("Right")
    check_prediction("less", "more")
    assert capsys.readouterr().out.startswith("Not this time: your guess 'less', measured 'more'")


def test_a_panel_shows_amp_off_as_it_was_built_and_gives_the_trainer_none():
    from costtrain.course.widgets import settings_words
    calls = []
    panel = run_panel("test-amp-words", lambda v, live: calls.append(v), amp="off", lr=0.01)
    assert panel.values()["amp"] is None  # what the trainer gets
    assert "amp=off" in repr(panel) and "amp=None" not in repr(panel)
    assert settings_words({"amp": None, "lr": 0.01}) == "amp=off, lr=0.01"
    assert settings_words({"amp": "bf16"}) == "amp=bf16"
