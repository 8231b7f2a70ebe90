"""The sparse problem trained by every trainer and the CLI, with Hogwild! collisions measured
(the slow half of test_sparse.py)."""
from __future__ import annotations

import json

from test_sparse import tiny  # noqa: F401 (a fixture)

from costtrain.cli import main
from costtrain.data.datasets import load_dataset
from costtrain.hogwild import train_hogwild
from costtrain.train.parameter_server import train_parameter_server


def test_hogwild_runs_the_sparse_model_and_measures_collisions(tiny):
    r = train_hogwild("sparse-linear", tiny, processes=2, collision_every=1, timeout=120)
    assert r.status == "ok" and r.samples == 2 * 3000 and r.steady_samples_per_second > 0
    c = r.extra["collisions"]
    assert c["measured"] and c["sampled_steps"] > 0
    assert 0 <= c["overlap_fraction"] <= 1 and 0 <= c["row_overlap_fraction"] <= 1
    assert r.test_accuracy > 0.5


def test_collisions_are_more_frequent_with_fewer_features():
    rates = {}
    for features in (16, 2 ** 20):
        ds = load_dataset("sparse-synthetic", train=20000, test=100, features=features, k=4,
                          zipf=0.0)
        r = train_hogwild("sparse-linear", ds, processes=2, batch_size=16, collision_every=1,
                          timeout=120)
        rates[features] = r.extra["collisions"]["row_overlap_fraction"]
    # 16 rows: every step writes nearly all of them; 2**20 rows: 64 of a million per step.
    # How much the workers' steps overlap in time depends on the machine's load (measured:
    # 0.19 for 16 rows once on a busy 2-core box), hence no fixed level for the small table.
    assert rates[16] > max(0.02, 10 * rates[2 ** 20]) and rates[2 ** 20] < 0.01, rates


def test_parameter_server_densifies_sparse_gradients(tiny):
    r = train_parameter_server("sparse-linear", tiny, workers=2, timeout=120)
    assert r.status == "ok" and r.samples == 3000 and r.test_accuracy > 0.5
    assert r.config["momentum"] == 0.0


def test_cli_hogwild_on_the_sparse_problem(tmp_path, capsys):
    out = tmp_path / "x.json"
    assert main(["run", "--method", "hogwild", "--processes", "2", "--dataset",
                 "sparse-synthetic", "--model", "sparse-linear", "--sparse-features", "65536",
                 "--subset", "20000", "--no-progress", "--out", str(out)]) == 0
    (r,) = json.loads(out.read_text())
    assert r["steady_samples_per_second"] > 0
    assert 0 <= r["extra"]["collisions"]["overlap_fraction"] <= 1
    assert r["config"]["dataset"] == "sparse-synthetic"
