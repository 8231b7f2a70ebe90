"""Feedback while a run goes: the panel says what it does from the start, the live plot moves at
a steady pace whatever the workers report, never shows empty axes, and tables keep columns."""
from __future__ import annotations

import time

import pytest

from costtrain.course.widgets import LivePlot, NoWrap, run_panel, starting_note


def wait_for(condition, deadline: float = 60.0) -> bool:
    """Poll `condition` until it holds or the (generous) deadline passes."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Result:  # the fields LivePlot.finish reads from a RunResult
    eval_curve = {"samples": [100], "seconds": [0.5], "accuracy": [0.5]}
    setup_seconds, test_accuracy, total_seconds = 0.1, 0.5, 1.0


@pytest.mark.parametrize("label,words", [
    ("hogwild 2x1", "starting 2 worker process(es)"),
    ("ps-sync 3 worker(s)", "starting 3 worker process(es) and the server"),
    ("local-sgd H=8 2 worker(s)", "starting 2 worker process(es)"),
    ("baseline 1 thread", "building the model"),
])
def test_the_start_is_put_into_words(label, words):
    assert words in starting_note(label)


def test_no_empty_axes_before_the_first_report():
    from costtrain.course.widgets import W
    live = LivePlot(status=W.HTML())
    live.draw()
    assert not live._axes[0].axison  # the "press Run" text, not ticks at -0.04..0.04
    live.start("hogwild 2x1")
    try:
        assert "starting 2 worker process(es)" in live.status.value
        assert not live._axes[0].axison and not live._twins[1].axison
        live(0, 64, 0, 64, 2.3)
        live.draw()
        assert live._axes[0].axison
    finally:
        live.finish(Result())
    assert "done, 50.0 % test accuracy" in live.status.value


def test_the_plot_redraws_on_a_clock_not_per_message():
    live = LivePlot(min_interval=0.05, budget=1.0)
    live.start("ps-async 2w")
    try:
        first = live.redraws
        # no progress message at all (workers still starting): the plot still moves
        assert wait_for(lambda: live.redraws >= first + 3), "the ticker did not redraw"
        before = live.redraws
        for i in range(200):  # a burst of messages is recorded, not drawn one by one
            live(0, 64, 0, 64 * (i + 1), 2.0)
        assert live.redraws - before < 200
        assert len(live.series["ps-async 2w"]["loss"]) == 200
    finally:
        live.finish(Result())
    assert wait_for(lambda: not live._ticker.is_alive()), "finish() must stop the ticker"
    done = live.redraws
    time.sleep(0.3)
    assert live.redraws == done


def test_a_failed_run_stops_the_ticker_and_the_panel_says_what_it_ran():
    def train(v, live):
        live.start("hogwild 2x1")
        raise RuntimeError("a worker died")
    panel = run_panel("test-feedback", train, batch_size=64, lr=0.01)
    with pytest.raises(RuntimeError):
        panel.run()
    assert wait_for(lambda: not panel.live._ticker.is_alive())
    assert "costtrain-panel" in panel._dom_classes
    assert any("white-space: pre" in getattr(w, "value", "") for w in panel.children)


def test_a_wide_table_keeps_its_columns():
    t = NoWrap("run      total s\nhogwild  35.8 <x>")
    html = t._repr_html_()
    assert "white-space: pre" in html and "35.8 &lt;x&gt;" in html
    assert str(t) == "run      total s\nhogwild  35.8 <x>"
