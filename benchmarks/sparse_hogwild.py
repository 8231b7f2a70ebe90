"""Hogwild! where it shines: the sparse model beside the dense net, 1..cores processes.

    python benchmarks/sparse_hogwild.py [--repeats 3] [--total-epochs 2] [--dense-subset 20000]
        [--train 100000] [--features 262144] [--k 16] [--max-processes N] [--json out.json]

Each model (``sparse-linear`` on ``sparse-synthetic``, ``simple`` on Fashion-MNIST) runs
(a) one process with one thread, (b) one process with every core and 1..cores Hogwild!
processes, every configuration doing the same total work (``--total-epochs``), so accuracy is
compared at equal samples. Repeats alternate the configurations (a, b, 1, 2, ..., then again)
so that a slow spell on a shared machine hits them all; the table shows medians with min-max
ranges of steady-state samples/s, of the per-repeat ratios to (a) and (b), of test accuracy
and of the sampled Hogwild! collision fractions.

Target on 2 cores: 2 Hogwild! processes >= 1.8x one single-thread process (steady state) on the
sparse model, test accuracy within 1 point.
"""
from __future__ import annotations

import argparse
import os
import statistics
import warnings
from typing import Callable

from costtrain.baseline import train_baseline
from costtrain.data import load_dataset
from costtrain.hogwild import split_work, train_hogwild
from costtrain.report import format_table
from costtrain.result import RunResult, save_results
from costtrain.utils import hardware_info, num_cores

HEADERS = ["model", "run", "steady/s", "vs (a) 1 thread", "vs (b) all cores", "test acc %",
           "overlap steps", "overlap rows"]


def spread(values: list[float], fmt: str = "{:.0f}", unit: str = "") -> str:
    """``median [min-max]`` of `values`."""
    if not values:
        return "-"
    m = statistics.median(values)
    return f"{fmt.format(m)}{unit} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def plan(model: str, total_epochs: int, cores: int, max_p: int) -> list[tuple[str, Callable]]:
    """(label, run(ds, seed) -> RunResult) for (a), (b) and 1..max_p Hogwild! processes."""
    runs = [("(a) 1 process 1 thread",
             lambda ds, s: train_baseline(model, ds, epochs=total_epochs, threads=1, seed=s)),
            (f"(b) 1 process {cores} threads",
             lambda ds, s: train_baseline(model, ds, epochs=total_epochs, threads=cores, seed=s))]
    for p in range(1, max_p + 1):
        kw = split_work(total_epochs, p)
        runs.append((f"hogwild {p} process{'es' if p > 1 else ''}",
                     lambda ds, s, kw=kw: train_hogwild(model, ds, seed=s, timeout=600, **kw)))
    return runs


def rows(model: str, labels: list[str], runs: dict[str, list[RunResult]]) -> list[list]:
    """One table row per configuration: medians and ranges over the repeats."""
    a, b = runs[labels[0]], runs[labels[1]]
    out = []
    for label in labels:
        rs = runs[label]
        rate = [r.steady_samples_per_second for r in rs]
        col = [r.extra.get("collisions", {}) for r in rs]
        measured = [c for c in col if c.get("measured")]
        out.append([model, label, spread(rate),
                    spread([x / y.steady_samples_per_second for x, y in zip(rate, a)], "{:.2f}", "x"),
                    spread([x / y.steady_samples_per_second for x, y in zip(rate, b)], "{:.2f}", "x"),
                    spread([100 * r.test_accuracy for r in rs], "{:.2f}"),
                    spread([c["overlap_fraction"] for c in measured], "{:.3f}"),
                    spread([c["row_overlap_fraction"] for c in measured], "{:.4f}")])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--total-epochs", type=int, default=2,
                    help="epochs of work each configuration does (default 2)")
    ap.add_argument("--dense-subset", type=int, default=20000,
                    help="Fashion-MNIST training images for the dense net (default 20000)")
    ap.add_argument("--train", type=int, default=100_000, help="sparse: training samples")
    ap.add_argument("--features", type=int, default=2 ** 18, help="sparse: features d")
    ap.add_argument("--k", type=int, default=16, help="sparse: non-zeros per sample")
    ap.add_argument("--max-processes", type=int, default=None,
                    help="largest Hogwild! process count (default: cores)")
    ap.add_argument("--models", nargs="*", default=["sparse-linear", "simple"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="save every result here")
    a = ap.parse_args()
    cores = num_cores()
    max_p = a.max_processes or cores
    data = {"sparse-linear": lambda: load_dataset("sparse-synthetic", train=a.train,
                                                       features=a.features, k=a.k),
            "simple": lambda: load_dataset("fashion-mnist", subset=a.dense_subset, seed=0)}
    sets = {m: data[m]() for m in a.models}
    hw = hardware_info()
    print(f"# sparse vs dense Hogwild!: {hw['cpu']}, {cores} cores, torch {hw['torch']}; "
          f"{a.repeats} repeats x {a.total_epochs} epochs of work; load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    for m, ds in sets.items():
        print(f"#   {m}: {ds.name}, {len(ds.train_y):,} training samples"
              + (f", d={ds.features:,}, k={ds.train_x.shape[1]}" if ds.features else ""))
    plans = {m: plan(m, a.total_epochs, cores, max_p) for m in a.models}
    runs: dict[str, dict[str, list[RunResult]]] = {m: {lbl: [] for lbl, _ in p}
                                                   for m, p in plans.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # above `cores` processes only
        for rep in range(a.repeats):
            for m, p in plans.items():
                for label, run in p:
                    r = run(sets[m], a.seed + rep)
                    r.extra["label"] = f"{m} {label}"
                    runs[m][label].append(r)
                    print(f"  repeat {rep + 1} {m:<13} {label:<24} "
                          f"{r.steady_samples_per_second:9.0f} samples/s  "
                          f"acc {100 * r.test_accuracy:.2f} %  load {os.getloadavg()[0]:.2f}",
                          flush=True)
    table = [row for m, p in plans.items() for row in rows(m, [lbl for lbl, _ in p], runs[m])]
    print()
    print(format_table(table, HEADERS))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if "sparse-linear" in runs and max_p >= 2:
        two, ref = runs["sparse-linear"]["hogwild 2 processes"], runs["sparse-linear"][
            "(a) 1 process 1 thread"]
        ratio = statistics.median(x.steady_samples_per_second / y.steady_samples_per_second
                                  for x, y in zip(two, ref))
        gap = statistics.median(100 * (x.test_accuracy - y.test_accuracy)
                                for x, y in zip(two, ref))
        print(f"sparse model, 2 processes / 1 single-thread process: {ratio:.2f}x steady state "
              f"(target >= 1.8x: {'met' if ratio >= 1.8 else 'NOT met'}); accuracy {gap:+.2f} "
              f"points (target within 1: {'met' if abs(gap) <= 1 else 'NOT met'})")
    if a.json:
        allr = [r for m in runs.values() for rs in m.values() for r in rs]
        print(f"results: {save_results(allr, a.json)}")


if __name__ == "__main__":
    main()
