"""The warm pool asked for a second job from another thread while a real run trains (the slow
half of test_api_refusals.py)."""
from __future__ import annotations

import threading

import pytest

from costtrain import train_hogwild
from costtrain.run import pool


def test_a_second_threads_job_on_the_warm_pool_is_refused_and_the_first_finishes(fmnist):
    """Two threads of one process call train_hogwild at once: the second gets a clear
    PoolBusyError at once; the first run is untouched and finishes ok."""
    running, outcome = threading.Event(), {}

    def first() -> None:
        try:
            outcome["result"] = train_hogwild(
                "mlp", fmnist, processes=2, epochs_per_process=2, log_every=1,
                on_progress=lambda *a: running.set())
        except BaseException as exc:  # report it to the main thread
            outcome["error"] = exc
        finally:
            running.set()

    thread = threading.Thread(target=first, name="first-run")
    thread.start()
    try:
        assert running.wait(600)
        assert "error" not in outcome, outcome.get("error")
        with pytest.raises(pool.PoolBusyError, match="'first-run'.*one job at a time"):
            train_hogwild("mlp", fmnist, processes=2)
    finally:
        thread.join(600)
    assert "error" not in outcome, outcome.get("error")
    r = outcome["result"]
    assert r.status == "ok" and r.samples == 2 * 2 * len(fmnist.train_y)
    assert train_hogwild("mlp", fmnist, processes=2).status == "ok"  # the pool serves again
