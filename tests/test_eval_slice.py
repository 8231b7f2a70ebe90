"""Intermediate evaluations read a fixed, stratified slice of the test set, the same for every
trainer (tests/slow/test_eval_slice_slow.py runs every trainer on a planted test set)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from costtrain.data.datasets import load_dataset
from costtrain.hogwild import train_hogwild
from costtrain.train.baseline import train_baseline
from costtrain.train.engine import EVAL_SLICE, eval_slice, slice_of
from costtrain.train.local_sgd import train_local_sgd
from costtrain.train.parameter_server import train_parameter_server
from costtrain.utils import CosttrainError

TRAINERS = {
    "baseline": (train_baseline, dict(epochs=1, threads=1)),
    "hogwild": (train_hogwild, dict(processes=2, epochs_per_process=1, threads=1)),
    "ps": (train_parameter_server, dict(workers=2, epochs=1, mode="async")),
    "local-sgd": (train_local_sgd, dict(workers=2, epochs=1, average_every=2)),
}


@pytest.fixture(scope="module")
def big_test_set():
    """600 training images and 3,000 test images: more than the slice holds."""
    return load_dataset("fashion-mnist", subset=600, test_subset=3000, seed=0)


def test_the_slice_is_stratified_fixed_and_sorted(big_test_set):
    y = big_test_set.test_y
    idx = eval_slice(y)
    assert len(idx) == EVAL_SLICE == 2000 and len(set(idx.tolist())) == 2000
    assert idx.tolist() == sorted(idx.tolist())
    assert torch.equal(idx, eval_slice(y.clone()))  # fixed: no run's seed or state moves it
    whole, part = torch.bincount(y, minlength=10), torch.bincount(y[idx], minlength=10)
    assert (part - whole * 2000 / len(y)).abs().max() <= 1  # each class in proportion
    small = y[:500]
    assert torch.equal(eval_slice(small), torch.arange(500))  # a smaller set is read whole
    x, yy = slice_of(big_test_set.test_x[:500], small)
    assert x.data_ptr() == big_test_set.test_x.data_ptr() and len(yy) == 500
    with pytest.raises(CosttrainError, match="eval slice size"):
        eval_slice(y, 0)


def _poisoned(ds):
    """`ds` whose test images outside the slice are NaN: reading one makes the loss NaN."""
    x = torch.full_like(ds.test_x, float("nan"))
    idx = eval_slice(ds.test_y)
    x[idx] = ds.test_x[idx]
    return dataclasses.replace(ds, test_x=x)


def test_a_run_without_periodic_evaluation_records_no_slice(fmnist):
    r = train_baseline("mlp", fmnist, epochs=1, threads=1)
    assert "eval_slice" not in r.extra and r.eval_curve["samples"] == [r.samples]
