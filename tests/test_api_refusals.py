"""The Python API's documented exception instead of a traceback from deep inside: data types a
trainer cannot use, and the warm pool asked for a second job from another thread (real
processes)."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from costtrain import CosttrainError, train_hogwild
from costtrain.data.models import MLP
from costtrain.run import _testing
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
