"""Shared fixtures: small real data (the Fashion-MNIST files, subsampled; WordNet's nouns)
and writers of small files in the same formats (IDX, WordNet's data.noun)."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from costtrain.data.datasets import DataNotFoundError, load_dataset

# The slow tier is a folder: every test under tests/slow/ is marked `slow` (left out of `make
# check`; `make test` runs everything), and no test elsewhere may carry the mark. A test's tier is
# where its file lives, so renaming a test never moves it between tiers. Slow means: a notebook,
# a browser, torchrun, fault injection, or real training for several seconds (about 5 s or more
# on 2 busy cores, as pytest --durations shows).
SLOW_DIR = Path(__file__).resolve().parent / "slow"


def pytest_collection_modifyitems(config, items):
    misplaced = []
    for item in items:
        if SLOW_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slow)
        elif item.get_closest_marker("slow"):
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError("tests marked slow outside tests/slow/ (move them there, with what "
                                "they need, instead of marking them):\n  " + "\n  ".join(misplaced))


# The licence header of WordNet's data files: lines indented by two spaces (abridged here).
WORDNET_HEADER = ("  1 This software and database is being provided to you, the LICENSEE, by  \n"
                  "  2 Princeton University under the following license.  \n"
                  "  3   \n")


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


def data_noun_line(offset: int, lex: int, lemmas: list[str], gloss: str,
                   pointers: int = 1) -> str:
    """One line of WordNet's data.noun (wndb(5)): hex word count, pointers, ``| gloss``."""
    words = " ".join(f"{w} 0" for w in lemmas)
    ptrs = "".join(f" @ {offset + 1 + i:08d} n 0000" for i in range(pointers))
    return f"{offset:08d} {lex:02d} n {len(lemmas):02x} {words} {pointers:03d}{ptrs} | {gloss}  \n"


def write_data_noun(folder: Path, lines: list[str], header: bool = True) -> Path:
    """A data.noun in `folder` from `lines` (see :func:`data_noun_line`), licence first."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.noun"
    path.write_text((WORDNET_HEADER if header else "") + "".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def wordnet():
    """WordNet 3.0's nouns (wordnet-supersense) from the installed package; skipped only where
    it is not installed outside CI (CI installs it: .ci/run, make data)."""
    try:
        return load_dataset("wordnet-supersense")
    except DataNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide WordNet (.ci/run installs wordnet-base): {exc}")
        pytest.skip("WordNet 3.0 is not installed here (sudo apt-get install wordnet-base, or "
                    "COSTTRAIN_DATA / WNSEARCHDIR naming a folder with its data.noun)")


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """The course notebooks, each executed once by papermill for the whole session (at the CI
    parameters; 01-04 also at the second CI set), two at a time: tests/course_runs.py.
    ``course.run(name, which)`` is one run; the first request waits for all of them."""
    import course_runs
    return course_runs.execute(tmp_path_factory.mktemp("course"))
