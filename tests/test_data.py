import gzip

import numpy as np
import pytest
import torch
from conftest import make_idx_dataset, write_idx

from costtrain.data.datasets import (CorruptDataError, DataNotFoundError, load_dataset, read_idx,
                                     search_paths, stratified_subset)
from costtrain.utils import CosttrainError


def test_reads_gz_and_plain_idx(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert (read_idx(write_idx(tmp_path / "a.gz", arr)) == arr).all()
    assert (read_idx(write_idx(tmp_path / "a", arr, gz=False)) == arr).all()


def test_loads_from_explicit_root_and_normalizes(idx_dir):
    ds = load_dataset("fashion-mnist", idx_dir)
    assert ds.train_x.shape == (60, 1, 28, 28) and ds.test_x.shape == (20, 1, 28, 28)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert ds.source == str(idx_dir)
    raw = read_idx(idx_dir / "train-images-idx3-ubyte.gz")
    assert torch.equal(ds.raw_images("train"), torch.from_numpy(raw.copy()))


def test_environment_variable_is_searched(idx_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("COSTTRAIN_DATA", str(idx_dir))
    monkeypatch.chdir(tmp_path)
    assert load_dataset("mnist").source == str(idx_dir)


def test_argument_wins_over_environment(tmp_path, monkeypatch):
    a = make_idx_dataset(tmp_path / "a", n_train=30)
    b = make_idx_dataset(tmp_path / "b", n_train=40)
    monkeypatch.setenv("COSTTRAIN_DATA", str(b))
    assert len(load_dataset("mnist", a).train_y) == 30


def test_uncompressed_files_and_torchvision_layout(tmp_path):
    make_idx_dataset(tmp_path / "FashionMNIST" / "raw", gz=False)
    assert len(load_dataset("fashion-mnist", tmp_path).train_y) == 60


def test_not_found_lists_what_was_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("COSTTRAIN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataNotFoundError) as e:
        load_dataset("mnist", tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "download" in msg
    assert all(str(p) in msg or str(p.resolve()) in msg for p in search_paths("mnist", tmp_path))


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nope")


def test_truncated_gzip_names_the_file(idx_dir):
    f = idx_dir / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(CorruptDataError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", idx_dir)


def test_short_payload_names_the_file(idx_dir):
    f = idx_dir / "t10k-labels-idx1-ubyte.gz"
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:-3]))
    with pytest.raises(CorruptDataError, match="t10k-labels.*truncated"):
        load_dataset("mnist", idx_dir)


def test_bad_magic_names_the_file(idx_dir):
    f = idx_dir / "train-labels-idx1-ubyte.gz"
    f.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + bytes(100)))
    with pytest.raises(CorruptDataError, match="train-labels.*magic"):
        load_dataset("mnist", idx_dir)


def test_mismatched_counts(tmp_path):
    d = make_idx_dataset(tmp_path / "m")
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(CorruptDataError, match="do not match"):
        load_dataset("mnist", d)


def test_cifar_batches(tmp_path):
    import pickle
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8),
                         b"labels": [0, 1, 2, 3]}, f)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.input_shape == (3, 32, 32)
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(CorruptDataError, match="test_batch"):
        load_dataset("cifar10", tmp_path)


def test_unknown_dataset_and_bad_subset(idx_dir):
    with pytest.raises(CosttrainError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(CosttrainError, match="subset"):
        load_dataset("mnist", idx_dir, subset=0)


def test_stratified_subset_keeps_proportions_and_is_seeded():
    labels = torch.tensor([0] * 800 + [1] * 200)
    idx = stratified_subset(labels, 100, seed=1)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert (labels[idx] == 1).sum().item() == 20
    assert torch.equal(idx, stratified_subset(labels, 100, seed=1))
    assert not torch.equal(idx, stratified_subset(labels, 100, seed=2))


def test_real_fashion_mnist(fmnist):
    assert fmnist.name == "fashion-mnist" and fmnist.num_classes == 10
    assert len(fmnist.train_y) == 3000 and len(fmnist.test_y) == 1000
    assert torch.bincount(fmnist.train_y).tolist() == [300] * 10
    assert abs(fmnist.train_x.mean().item()) < 0.1 and abs(fmnist.train_x.std().item() - 1) < 0.1


def test_sharing_one_dataset_from_several_threads_keeps_one_copy(idx_dir):
    """Two runs started at once on one dataset (threads, a notebook's background run) share it
    once: a second copy would replace the first, whose memory file closes while the first run
    is still handing it to its workers (CI saw a worker fail to map it)."""
    import threading
    ds = load_dataset("mnist", idx_dir)
    ds.train_x = ds.train_x.repeat(40, 1, 1, 1)  # copying takes long enough to overlap
    start, seen = threading.Barrier(6), []

    def share():
        start.wait()
        seen.append(ds.share_memory_().train_x)
    threads = [threading.Thread(target=share) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(seen) == 6 and all(t is ds.train_x for t in seen)
