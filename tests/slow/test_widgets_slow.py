"""A Run panel's live plot redrawn from the progress messages of a real run (the slow half of
test_widgets.py)."""
from __future__ import annotations

import pytest

from costtrain import train_hogwild
from costtrain.course.widgets import LivePlot


def test_a_live_plot_is_redrawn_during_training_from_progress_messages(fmnist):
    live = LivePlot(min_interval=0.0, budget=1.0)
    live.start("hogwild 2x1")
    r = train_hogwild("simple", fmnist, processes=2, threads=1, log_every=1,
                      epochs_per_process=2, on_progress=live)  # long enough to redraw twice
    s = live.series["hogwild 2x1"]
    assert len(s["loss"]) >= 5 and s["samples"][-1] <= r.samples
    assert s["samples"] == sorted(s["samples"]) and s["seconds"] == sorted(s["seconds"])
    assert live.redraws >= 3  # the start, then at least twice while training
    live.finish(r)
    assert live.series["hogwild 2x1"]["acc"][-1] == pytest.approx(100 * r.test_accuracy)
