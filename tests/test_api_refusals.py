"""The Python API's documented exception instead of a traceback from deep inside: data types a
trainer cannot use, and the warm pool asked for a second job from another thread (real
processes)."""
from __future__ import annotations

import threading

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from costtrain import CosttrainError, train_hogwild
from costtrain.data.models import MLP
from costtrain.run import _testing, pool
from costtrain.train.legacy import train_model


class Stream(IterableDataset):
    """Samples that can only be read in order (no length, no indexing)."""

    def __iter__(self):
        for i in range(64):
            yield torch.randn(1, 28, 28), i % 10


def test_hogwild_refuses_a_stream_before_any_process_starts():
    for data in (Stream(), (s for s in Stream())):
        with pytest.raises(CosttrainError, match="got a stream"):
            train_hogwild("mlp", data, processes=2)
    assert not _testing.spawned_children()


def test_train_model_refuses_a_dataloader_over_an_iterable_dataset():
    with pytest.raises(CosttrainError, match="without a length.*map-style"):
        train_model(MLP(), DataLoader(Stream(), batch_size=8), 2, 1)
    assert not _testing.spawned_children()


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
