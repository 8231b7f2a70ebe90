"""The sparse problem: generator, EmbeddingBag model, every trainer, Hogwild! collisions, CLI."""
from __future__ import annotations

import pytest
import torch

from costtrain.cli import main
from costtrain.data.datasets import load_dataset
from costtrain.data.models import build_model, model_name
from costtrain.data.sparse import (SparseLinear, batch_row_probability, collision_summary,
                                   expected_row_overlap, make_sparse_synthetic, planted_weights)
from costtrain.hogwild import train_hogwild
from costtrain.run import shared
from costtrain.train.baseline import train_baseline
from costtrain.utils import CosttrainError

TINY = dict(train=3000, test=500, features=4096, k=8)


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("sparse-synthetic", **TINY)


def test_generator_is_seeded_and_shaped():
    a = make_sparse_synthetic(**TINY, seed=3)
    b = make_sparse_synthetic(**TINY, seed=3)
    c = make_sparse_synthetic(**TINY, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    trx, tr_y, tex, te_y = a
    assert trx.shape == (3000, 8) and tex.shape == (500, 8) and trx.dtype == torch.int64
    assert 0 <= int(trx.min()) and int(trx.max()) < 4096
    assert set(tr_y.tolist()) == {0, 1}


def test_zipf_makes_some_features_common_and_zero_makes_them_uniform():
    skewed = make_sparse_synthetic(**TINY, zipf=1.0)[0].flatten().bincount(minlength=4096)
    flat = make_sparse_synthetic(**TINY, zipf=0.0)[0].flatten().bincount(minlength=4096)
    assert skewed.max() > 20 * flat.max()  # the most common feature dominates only with zipf


def test_label_noise_is_the_fraction_asked_for():
    features, classes = 512, 2
    x, y, _, _ = make_sparse_synthetic(train=20000, test=1, features=features, k=8,
                                       zipf=0.0, noise=0.2, seed=1)
    clean = planted_weights(features, classes, seed=1)[x].sum(1).argmax(1)
    assert 0.07 < (clean != y).float().mean() < 0.13  # half the noisy labels keep the class


def test_the_planted_model_is_recovered():
    features = 256
    ds = load_dataset("sparse-synthetic", train=20000, test=2000, features=features, k=8,
                      zipf=0.0, noise=0.05, data_seed=7)
    net = SparseLinear(features, 2)
    r = train_baseline(net, ds, epochs=3, threads=1)
    assert r.test_accuracy > 0.85  # the best possible is about 0.975 (5 % noise, half kept)
    w = planted_weights(features, 2, seed=7)
    learned, planted = net.weight.detach(), w  # the padding row left out
    margin = torch.stack([learned[:, 1] - learned[:, 0], planted[:, 1] - planted[:, 0]])
    assert torch.corrcoef(margin)[0, 1] > 0.8


def test_dataset_record_fits_the_trainers(tiny):
    assert tiny.input_shape == (4096,) and tiny.num_classes == 2 and tiny.features == 4096
    assert tiny.info["generator"]["k"] == 8
    sub = load_dataset("sparse-synthetic", **TINY, subset=1000, test_subset=100, seed=1)
    assert sub.train_x.shape == (1000, 8) and len(sub.test_y) == 100
    sub.share_memory_()
    # shared with the workers: an anonymous memory file (costtrain.run.shared), else torch's shm
    assert isinstance(sub.train_x, shared.SharedTensor) or sub.train_x.is_shared()
    with pytest.raises(CosttrainError, match="holds feature ids"):
        sub.raw_images()


def test_generator_settings_are_checked():
    with pytest.raises(CosttrainError, match="unknown generator setting.*kk"):
        load_dataset("sparse-synthetic", kk=3)
    with pytest.raises(CosttrainError, match="settings are for sparse-synthetic"):
        load_dataset("fashion-mnist", k=3)
    with pytest.raises(CosttrainError, match="k must be an integer >= 1"):
        load_dataset("sparse-synthetic", k=0)


def test_models_and_data_must_fit():
    assert isinstance(build_model("sparse-linear", (100,), 3), SparseLinear)
    assert model_name(SparseLinear(10, 2)) == "sparse-linear"
    with pytest.raises(CosttrainError, match="does not fit input shape"):
        build_model("sparse-linear", (1, 28, 28), 10)
    with pytest.raises(CosttrainError, match="does not fit input shape"):
        build_model("simple", (4096,), 2)
    with pytest.raises(CosttrainError, match="int64 feature ids"):
        SparseLinear(10, 2)(torch.zeros(2, 1, 28, 28))


def test_a_step_reads_and_writes_only_the_batch_rows():
    torch.manual_seed(0)
    net = SparseLinear(10_000, 2)
    torch.nn.init.normal_(net.bag.weight)
    before = net.bag.weight.detach().clone()
    x = torch.randint(10_000, (32, 5))
    loss = torch.nn.functional.cross_entropy(net(x), torch.randint(2, (32,)))
    loss.backward()
    g = net.bag.weight.grad
    assert g.is_sparse
    rows = g.coalesce().indices()[0]
    assert len(rows) <= 5 * 32 and set(rows.tolist()) == set(x.flatten().tolist())
    torch.optim.SGD(net.parameters(), lr=0.5).step()
    changed = (net.bag.weight.detach() != before).any(1).nonzero().flatten()
    assert set(changed.tolist()) <= set(x.flatten().tolist()) and len(changed) > 0


def test_the_padding_id_is_left_out_of_the_sum_and_never_written():
    torch.manual_seed(0)
    net = SparseLinear(100, 3)
    torch.nn.init.normal_(net.bag.weight)
    pad = 100  # the id `features` pads bags shorter than the batch's width
    short, padded = torch.tensor([[4, 7, 7]]), torch.tensor([[4, 7, 7, pad, pad]])
    assert torch.allclose(net(short), net(padded))
    torch.nn.functional.cross_entropy(net(padded), torch.tensor([1])).backward()
    assert net.bag.weight.grad.coalesce().indices()[0].tolist() == [4, 7]
    assert net.weight.shape == (100, 3) and net.bag.weight.shape == (101, 3)


def test_expected_row_overlap_follows_feature_frequencies():
    x = torch.tensor([[0, 1, 9], [0, 2, 9], [0, 3, 3]])  # 9 pads (features = 9)
    p = batch_row_probability(x, 9, batch_size=2)
    assert p[0] == 1 and p[4] == 0  # in every sample / in none
    assert p[3] == pytest.approx(1 - (2 / 3) ** 2)  # once per sample, though twice in a bag
    # against random pairs of batches: the share of A's rows that B also holds
    x = make_sparse_synthetic(train=20000, test=1, features=4096, k=8, zipf=1.0, seed=0)[0]
    g = torch.Generator().manual_seed(0)
    shares = []
    for _ in range(300):
        a, b = (x[torch.randint(len(x), (32,), generator=g)].unique() for _ in range(2))
        shares.append(torch.isin(a, b).double().mean().item())
    simulated = sum(shares) / len(shares)
    assert expected_row_overlap(x, 4096, 32) == pytest.approx(simulated, rel=0.1)
    uniform = make_sparse_synthetic(train=20000, test=1, features=4096, k=8, zipf=0.0)[0]
    assert expected_row_overlap(uniform, 4096, 32) < expected_row_overlap(x, 4096, 32) / 3


def test_sparse_models_refuse_momentum_and_get_plain_sgd(tiny):
    with pytest.raises(CosttrainError, match="momentum=0.5 with 'sparse-linear'"):
        train_hogwild("sparse-linear", tiny, processes=1, momentum=0.5)
    r = train_baseline("sparse-linear", tiny, threads=1)
    assert r.config["momentum"] == 0.0 and r.config["lr"] == SparseLinear.sparse_lr
    assert r.test_accuracy > 0.5


def test_one_worker_never_collides_and_dense_models_always_do():
    assert collision_summary([{"sampled_steps": 5}], 1, True, 10)["overlap_fraction"] == 0
    short = collision_summary([{}, {}], 2, True, 10)  # no step fell in a measured slot
    assert not short["measured"] and "shorter than about 0.2 s" in short["note"]
    dense = collision_summary([{}, {}], 2, False, 10)
    assert not dense["measured"] and dense["overlap_fraction"] == 1.0


def test_cli_refuses_sparse_options_for_image_data(capsys):
    assert main(["run", "--dataset", "fashion-mnist", "--sparse-k", "4", "--subset", "100"]) == 2
    assert "--sparse-k: only for --dataset sparse-synthetic" in capsys.readouterr().err
