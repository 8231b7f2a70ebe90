"""Shared fixtures: small real data (the Fashion-MNIST files, subsampled) and IDX writers."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from costtrain.data import load_dataset


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """Write `array` (uint8) as an IDX file, gzipped when `gz`."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_dataset(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True,
                     seed: int = 0) -> Path:
    """A tiny but well-formed MNIST-style IDX dataset; class k images are brighter with k."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = (rng.integers(0, 40, (n, 28, 28)) + y[:, None, None] * 20).astype(np.uint8)
        sfx = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{sfx}", x, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{sfx}", y.astype(np.uint8), gz)
    return folder


@pytest.fixture(scope="session")
def fmnist():
    """Fashion-MNIST, 3,000 training and 1,000 test images (stratified, fixed seed)."""
    return load_dataset("fashion-mnist", subset=3000, test_subset=1000, seed=0)


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    return make_idx_dataset(tmp_path / "mini")
