"""The command line end to end: real runs of ``run`` and ``compare`` in a subprocess (the slow
half of test_cli.py)."""
import json
import subprocess
import sys

import pytest
from test_cli import run_cli


def test_run_baseline_prints_summary_and_writes_json(tmp_path):
    out = tmp_path / "r.json"
    p = run_cli("run", "--method", "baseline", "--subset", "2000", "--epochs", "1",
                "--model", "mlp", "--no-progress", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "test accuracy" in p.stdout and "samples/s" in p.stdout
    data = json.loads(out.read_text())
    assert data[0]["method"] == "baseline" and data[0]["samples"] == 2000
    assert data[0]["test_accuracy"] > 0.4


def test_compare_prints_tables_costs_and_figures(tmp_path):
    out, figs = tmp_path / "c.json", tmp_path / "figs"
    p = run_cli("compare", "--only", "baseline 1", "--subset", "1500", "--model", "mlp",
                "--total-epochs", "1", "--target-accuracy", "30", "--no-progress",
                "--figures", str(figs), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "cost to target" in p.stdout and "samples/s" in p.stdout
    assert sorted(f.name for f in figs.iterdir()) == [
        "compare_accuracy_vs_time.png", "compare_cost.png", "compare_losses.png"]
    (r,) = json.loads(out.read_text())
    assert r["config"]["processes"] == 1 and r["cost"]["energy_source"]
    assert r["cost"]["time_to_target_seconds"] is not None  # 30 % is reached by an MLP
    assert len(r["eval_curve"]["samples"]) >= 2


def test_compare_repeats_alternate_and_report_medians_ranges_and_noise(tmp_path):
    out = tmp_path / "c.json"
    p = run_cli("compare", "--only", "baseline", "--repeats", "2", "--subset", "1000",
                "--model", "mlp", "--total-epochs", "1", "--no-progress", "--figures", "",
                "--out", str(out))
    assert p.returncode == 0, p.stderr
    order = [line.split(" on ")[0] for line in p.stdout.splitlines() if " on fashion-mnist" in line]
    order = [x for i, x in enumerate(order) if i == 0 or x != order[i - 1]]  # busy re-runs
    assert order == ["baseline 1 thread", "baseline 2 threads"] * 2 or len(set(order)) == 1
    assert "total s median (min-max)" in p.stdout
    # a verdict, or (other work competed for the cores meanwhile) the busy machine named instead
    assert "faster than" in p.stdout or "slower than" in p.stdout or "within noise" in p.stdout
    assert "No verdict" not in p.stdout  # a busy machine re-runs, then marks the ranking
    results = json.loads(out.read_text())
    assert all(len(r["extra"]["repeats"]) == 2 for r in results)
    assert all(r["total_seconds"] in [x["total_seconds"] for x in r["extra"]["repeats"]]
               for r in results)


def test_run_ps_sync_with_scaling_and_momentum_from_the_shell(tmp_path):
    """The CLI reaches the parameter server's keywords (issue: CLI at parity with the API)."""

    from costtrain.result import load_results
    out = tmp_path / "ps.json"
    cmd = [sys.executable, "-m", "costtrain", "run", "--method", "ps", "--mode", "sync",
           "--workers", "2", "--scale-lr", "--momentum", "0.3", "--model", "mlp", "--subset",
           "400", "--log-every", "2", "--no-progress", "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    (r,) = load_results(out)
    assert r.config["scale_lr"] is True and r.config["momentum"] == 0.3
    assert r.config["server_lr"] == pytest.approx(0.02)  # lr 0.01 x 2 workers
    p = subprocess.run(cmd[:-2] + ["--no-scale-lr", "--out", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert load_results(out)[0].config["server_lr"] == pytest.approx(0.01)
