"""Hogwild! where it shines: the sparse model on synthetic and on real text, beside the dense net.

    python benchmarks/sparse_hogwild.py [--repeats 3] [--total-epochs 2] [--dense-subset 20000]
        [--train 100000] [--features 262144] [--k 16] [--wordnet-subset N]
        [--max-processes N | --processes 2 ...]
        [--setups sparse-linear wordnet simple] [--collision-every 10] [--json out.json]

Each setup (``sparse-linear`` on ``sparse-synthetic``; ``wordnet``: ``sparse-linear`` on
``wordnet-supersense``, WordNet 3.0's noun supersenses, real text; ``simple`` on Fashion-MNIST)
runs (a) one process with one thread, (b) one process with every core and 1..cores Hogwild!
processes, every configuration doing the same total work (``--total-epochs``), so accuracy is
compared at equal samples. Repeats alternate the configurations (a, b, 1, 2, ..., then again,
every setup in each round) so that a slow spell on a shared machine hits them all; the table
shows medians with min-max ranges of steady-state samples/s, of the per-repeat ratios to (a)
and (b), of test accuracy and of the sampled Hogwild! collision fractions. For the sparse
setups it also prints the row overlap expected from the feature frequencies alone
(:func:`costtrain.data.sparse.expected_row_overlap`) and, for the real text, the accuracy of always
answering the largest class.

Targets on 2 cores, 2 Hogwild! processes against one single-thread process (steady state): the
synthetic sparse problem >= 1.8x, the real text >= 1.6x; test accuracy within 1 point at equal
samples; the real text's accuracy well above the majority class's.
"""
from __future__ import annotations

import argparse
import os
import statistics
import warnings
from typing import Callable

from costtrain.advice.report import format_table
from costtrain.data.datasets import load_dataset
from costtrain.data.sparse import expected_row_overlap
from costtrain.hogwild import split_work, train_hogwild
from costtrain.result import RunResult, save_results
from costtrain.train.baseline import train_baseline
from costtrain.utils import hardware_info, num_cores

HEADERS = ["setup", "run", "steady/s", "vs (a) 1 thread", "vs (b) all cores", "test acc %",
           "overlap steps", "overlap rows"]


def spread(values: list[float], fmt: str = "{:.0f}", unit: str = "") -> str:
    """``median [min-max]`` of `values`."""
    if not values:
        return "-"
    m = statistics.median(values)
    return f"{fmt.format(m)}{unit} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


MODELS = {"sparse-linear": "sparse-linear", "wordnet": "sparse-linear", "simple": "simple"}
TARGETS = {"sparse-linear": 1.8, "wordnet": 1.6}  # 2 processes / (a), steady state
BATCH = 64  # every run's batch size (the trainers' default)


def plan(model: str, total_epochs: int, cores: int, processes: list[int],
         collision_every: int = 10) -> list[tuple[str, Callable]]:
    """(label, run(ds, seed) -> RunResult) for (a), (b) and Hogwild! with each of `processes`."""
    runs = [("(a) 1 process 1 thread",
             lambda ds, s: train_baseline(model, ds, epochs=total_epochs, threads=1, seed=s,
                                           batch_size=BATCH)),
            (f"(b) 1 process {cores} threads",
             lambda ds, s: train_baseline(model, ds, epochs=total_epochs, threads=cores, seed=s,
                                           batch_size=BATCH))]
    for p in processes:
        kw = split_work(total_epochs, p)
        runs.append((f"hogwild {p} process{'es' if p > 1 else ''}",
                     lambda ds, s, kw=kw: train_hogwild(model, ds, seed=s, timeout=600,
                                                        batch_size=BATCH,
                                                        collision_every=collision_every, **kw)))
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
    ap.add_argument("--wordnet-subset", type=int, default=2 ** 16,
                    help="wordnet: training synsets (default: 65536 of the split's 65799, a "
                         "power of two, so that no epoch ends on a batch of a few samples, whose "
                         "step would weigh each of them many times and move the final accuracy "
                         "by points; 0: the whole split)")
    ap.add_argument("--max-processes", type=int, default=None,
                    help="Hogwild! with 1..this many processes (default: cores)")
    ap.add_argument("--processes", type=int, nargs="*", default=None,
                    help="Hogwild! process counts to run instead, e.g. 2 (a busy machine: fewer runs)")
    ap.add_argument("--setups", nargs="*", default=["sparse-linear", "wordnet", "simple"],
                    choices=list(MODELS), help="what to run (default: all three)")
    ap.add_argument("--collision-every", type=int, default=10,
                    help="Hogwild!: measure collisions in one 20 ms slot of this many")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="save every result here")
    a = ap.parse_args()
    cores = num_cores()
    procs = a.processes or list(range(1, (a.max_processes or cores) + 1))
    data = {"sparse-linear": lambda: load_dataset("sparse-synthetic", train=a.train,
                                                       features=a.features, k=a.k),
            "wordnet": lambda: load_dataset("wordnet-supersense", subset=a.wordnet_subset or None,
                                            seed=0),
            "simple": lambda: load_dataset("fashion-mnist", subset=a.dense_subset, seed=0)}
    sets = {m: data[m]() for m in a.setups}
    hw = hardware_info()
    print(f"# sparse vs dense Hogwild!: {hw['cpu']}, {cores} cores, torch {hw['torch']}; "
          f"{a.repeats} repeats x {a.total_epochs} epochs of work; load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    for m, ds in sets.items():
        print(f"#   {m}: {MODELS[m]} on {ds.name}, {len(ds.train_y):,} training samples"
              + (f", d={ds.features:,}, {(ds.train_x < ds.features).sum(1).double().mean():.1f} "
                 f"features per sample, rows a concurrent step also writes (expected from the "
                 f"frequencies, batch {BATCH}): {expected_row_overlap(ds.train_x, ds.features, BATCH):.4f}"
                 if ds.features else ""))
    plans = {m: plan(MODELS[m], a.total_epochs, cores, procs, a.collision_every)
             for m in a.setups}
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
    for m in [m for m in TARGETS if m in runs and 2 in procs]:
        verdict(m, runs[m], sets[m], TARGETS[m])
    if a.json:
        allr = [r for m in runs.values() for rs in m.values() for r in rs]
        print(f"results: {save_results(allr, a.json)}")


def verdict(setup: str, runs: dict[str, list[RunResult]], ds, target: float) -> None:
    """Print the targets of a sparse setup: 2 processes against (a), collisions, majority class."""
    two, ref = runs["hogwild 2 processes"], runs["(a) 1 process 1 thread"]
    ratios = [x.steady_samples_per_second / y.steady_samples_per_second for x, y in zip(two, ref)]
    gaps = [100 * (x.test_accuracy - y.test_accuracy) for x, y in zip(two, ref)]
    ratio, gap = statistics.median(ratios), statistics.median(gaps)
    print(f"{setup}, 2 processes / 1 single-thread process: {spread(ratios, '{:.2f}', 'x')} steady "
          f"state (target >= {target}x: {'met' if ratio >= target else 'NOT met'}); accuracy "
          f"{spread(gaps, '{:+.2f}')} points (target within 1: "
          f"{'met' if abs(gap) <= 1 else 'NOT met'})")
    rows = [r.extra["collisions"]["row_overlap_fraction"] for r in two
            if r.extra["collisions"].get("measured")]
    steps = [r.extra["collisions"]["sampled_steps"] for r in two]
    print(f"  collisions, 2 processes: {spread(rows, '{:.4f}')} of a step's rows written by the "
          f"other worker meanwhile ({spread(steps)} steps checked); expected from the "
          f"frequencies: {expected_row_overlap(ds.train_x, ds.features, BATCH):.4f}")
    if ds.name == "wordnet-supersense":
        majority = ds.test_y.bincount().max().item() / len(ds.test_y)
        acc = [100 * r.test_accuracy for r in two]
        print(f"  test accuracy {spread(acc, '{:.2f}')} % against {100 * majority:.2f} % for always "
              f"answering the largest class ({ds.classes[int(ds.test_y.bincount().argmax())]}): "
              f"{statistics.median(acc) - 100 * majority:+.2f} points")


if __name__ == "__main__":
    main()
