"""The real WordNet 3.0 package trained by every trainer and the CLI (the slow half of
test_wordnet.py; skipped only where wordnet-base is not installed, outside CI)."""
from __future__ import annotations

import json

from costtrain.cli import main
from costtrain.data.datasets import load_dataset
from costtrain.hogwild import train_hogwild
from costtrain.train.baseline import train_baseline
from costtrain.train.local_sgd import train_local_sgd
from costtrain.train.parameter_server import train_parameter_server


def test_every_trainer_runs_the_real_text(wordnet):
    small = load_dataset("wordnet-supersense", subset=4000)
    base = train_baseline("sparse-linear", small, threads=1, epochs=2)
    majority = small.test_y.bincount().max().item() / len(small.test_y)
    assert base.test_accuracy > majority + 0.1, (base.test_accuracy, majority)
    r = train_hogwild("sparse-linear", small, processes=2, collision_every=1, timeout=120)
    assert r.status == "ok" and r.samples == 8000
    c = r.extra["collisions"]
    assert c["measured"] and c["sampled_steps"] > 0 and 0 <= c["row_overlap_fraction"] <= 1
    tiny = load_dataset("wordnet-supersense", subset=600)  # the server sends the whole table
    ps = train_parameter_server("sparse-linear", tiny, workers=2, timeout=120)
    local = train_local_sgd("sparse-linear", tiny, workers=2, timeout=120)
    assert ps.status == "ok" and ps.samples == 600 and local.status == "ok"
    assert ps.config["dataset"] == local.config["dataset"] == "wordnet-supersense"


def test_cli_hogwild_on_real_text_reports_rate_accuracy_and_collisions(wordnet, tmp_path):
    out = tmp_path / "h.json"
    assert main(["run", "--method", "hogwild", "--processes", "2", "--dataset",
                 "wordnet-supersense", "--model", "sparse-linear", "--subset", "20000",
                 "--collision-every", "1", "--no-progress", "--out", str(out)]) == 0
    (r,) = json.loads(out.read_text())
    assert r["steady_samples_per_second"] > 0 and 0 < r["test_accuracy"] <= 1
    c = r["extra"]["collisions"]
    assert c["measured"] and 0 <= c["overlap_fraction"] <= 1
    assert r["config"]["dataset"] == "wordnet-supersense" and r["samples"] == 40_000
