"""Baseline throughput: the classic per-sample-transform DataLoader vs in-memory tensors.

    python benchmarks/baseline.py [--subset 20000] [--epochs 1] [--json out.json]

Prints samples/s (overall and steady state) for both data paths at 1 thread and all threads,
with ratios against the classic path at the same thread count. Target on 2 cores: in-memory
>= 1.8x the classic path.
"""
from __future__ import annotations

import argparse

from costtrain.advice.report import format_table
from costtrain.data.datasets import load_dataset
from costtrain.result import save_results
from costtrain.train.baseline import train_baseline
from costtrain.utils import hardware_info, num_cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", type=int, default=20000, help="training images (default 20000)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--model", default="simple")
    ap.add_argument("--json", default=None, help="save the results here")
    a = ap.parse_args()
    ds = load_dataset("fashion-mnist", subset=a.subset, seed=0)
    cores = num_cores()
    hw = hardware_info()
    print(f"# baseline benchmark: {hw['cpu']}, {cores} cores, torch {hw['torch']}; "
          f"{ds.name} {len(ds.train_y)} images x {a.epochs} epoch(s), model {a.model}")
    results, rows = [], []
    for threads in sorted({1, cores}):
        base = None
        for pipeline in ("classic", "memory"):
            r = train_baseline(a.model, ds, epochs=a.epochs, threads=threads, pipeline=pipeline,
                               seed=0)
            r.label = f"{pipeline} {threads}t"
            results.append(r)
            base = base or r.samples_per_second
            rows.append([pipeline, threads, round(r.train_seconds, 2), round(r.samples_per_second),
                         round(r.steady_samples_per_second), f"{r.samples_per_second / base:.2f}x",
                         round(100 * r.test_accuracy, 1)])
    print(format_table(rows, ["data path", "threads", "train s", "samples/s", "steady/s",
                              "vs classic", "test acc %"]))
    best = {p: max(r.samples_per_second for r in results if r.config["pipeline"] == p)
            for p in ("classic", "memory")}
    ratio = best["memory"] / best["classic"]
    print(f"best in-memory / best classic: {ratio:.2f}x (target >= 1.8x: "
          f"{'met' if ratio >= 1.8 else 'NOT met'})")
    if a.json:
        save_results(results, a.json)


if __name__ == "__main__":
    main()
