"""Hogwild! scaling at constant total work, against one process and the classic example style.

    python benchmarks/hogwild.py [--subset N] [--total-epochs 2] [--classic-timeout 60] [--json out.json]

For 1..cores Hogwild! processes (each doing its share of `total-epochs` epochs) prints wall
time split into set-up / train / eval, steady-state samples/s and test accuracy, with ratios
against (a) one process with 1 thread, (b) one process with every thread (both in-process
baselines) and (c) the classic example style: a DataLoader with per-sample transforms and
PyTorch's default threads (every core) in every process, for 1 and `cores` processes, each
capped at `--classic-timeout` seconds of run time (a capped run is reported as a lower bound).

Targets on 2 cores, same total samples, accuracy within 1 point: steady-state throughput of
2 processes >= 1.7x one single-thread process; end to end >= 2x faster than the classic
style's best configuration.
"""
from __future__ import annotations

import argparse
import time
import warnings

from costtrain.baseline import train_baseline
from costtrain.data import load_dataset
from costtrain.hogwild import split_work, train_hogwild
from costtrain.procs import WorkerError
from costtrain.report import format_table
from costtrain.result import RunResult, save_results
from costtrain.utils import hardware_info, num_cores

HEADERS = ["run", "procs", "thr/proc", "setup s", "train s", "eval s", "total s", "steady/s",
           "test acc %", "steady vs (a)", "steady vs (b)"]


def classic(ds, model: str, total_epochs: int, processes: int, cores: int, timeout: float,
            seed: int) -> RunResult:
    """The classic example style, capped at `timeout` s (then a partial, lower-bound result)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # oversubscription: that is the point
        try:
            r = train_hogwild(model, ds, pipeline="classic", threads=cores, seed=seed,
                              timeout=timeout, **split_work(total_epochs, processes))
        except WorkerError as exc:
            if "did not finish within" not in str(exc) or getattr(exc, "result", None) is None:
                raise  # a real failure, not the cap
            r = exc.result
            r.extra["timed_out_after"] = round(time.perf_counter() - t0, 1)
    r.label = f"(c) classic {processes}p"
    return r


def row(r: RunResult, a: RunResult, b: RunResult) -> list:
    capped = r.extra.get("timed_out_after")
    total = f">{capped:.0f} (timed out)" if capped else round(r.total_seconds, 2)
    return [r.label, r.config.get("processes", 1), r.threads, round(r.setup_seconds, 2),
            round(r.train_seconds, 2), round(r.eval_seconds, 2), total,
            round(r.steady_samples_per_second), round(100 * r.test_accuracy, 2),
            f"{r.steady_samples_per_second / a.steady_samples_per_second:.2f}x",
            f"{r.steady_samples_per_second / b.steady_samples_per_second:.2f}x"]


def end_to_end(r: RunResult) -> float:
    """Wall seconds, or the lower bound for a capped run."""
    return max(r.total_seconds, r.extra.get("timed_out_after", 0.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", type=int, default=None,
                    help="training images (default: all 60,000)")
    ap.add_argument("--total-epochs", type=int, default=2,
                    help="epochs of work every configuration does in total (default 2)")
    ap.add_argument("--max-processes", type=int, default=None,
                    help="largest Hogwild! process count (default: cores)")
    ap.add_argument("--classic-timeout", type=float, default=60.0,
                    help="seconds after which a classic-style run is stopped (default 60)")
    ap.add_argument("--model", default="simple")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="save every result here")
    a = ap.parse_args()
    cores = num_cores()
    ds = load_dataset("fashion-mnist", subset=a.subset, seed=0)
    hw = hardware_info()
    print(f"# Hogwild! benchmark: {hw['cpu']}, {cores} cores, torch {hw['torch']}; {ds.name} "
          f"{len(ds.train_y):,} images x {a.total_epochs} epochs of work, model {a.model}",
          flush=True)

    def baseline(threads: int, label: str) -> RunResult:
        r = train_baseline(a.model, ds, epochs=a.total_epochs, threads=threads, seed=a.seed)
        r.label = label
        print(f"  {label}: {r.total_seconds:.1f} s", flush=True)
        return r

    ref_a = baseline(1, "(a) 1 process 1 thread")
    ref_b = baseline(cores, f"(b) 1 process {cores} threads")
    hogwild = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # only above `cores` processes
        for p in range(1, (a.max_processes or cores) + 1):
            r = train_hogwild(a.model, ds, seed=a.seed, **split_work(a.total_epochs, p))
            r.label = f"hogwild {p}x{r.config['epochs_per_process']}" + (
                " shards" if r.config["sharding"] == "shard" else "")
            print(f"  {r.label}: {r.total_seconds:.1f} s", flush=True)
            hogwild.append(r)
    classics = []
    for p in sorted({1, cores}):
        r = classic(ds, a.model, a.total_epochs, p, cores, a.classic_timeout, a.seed)
        print(f"  {r.label}: {end_to_end(r):.1f} s", flush=True)
        classics.append(r)
    results = [ref_a, ref_b, *hogwild, *classics]
    print()
    print(format_table([row(r, ref_a, ref_b) for r in results], HEADERS))

    print()
    two = next((r for r in hogwild if r.config["processes"] == 2), None)
    if two is not None:
        ratio = two.steady_samples_per_second / ref_a.steady_samples_per_second
        print(f"steady-state throughput, 2 processes / 1 single-thread process: {ratio:.2f}x "
              f"(target >= 1.7x: {'met' if ratio >= 1.7 else 'NOT met'}); accuracy "
              f"{100 * (two.test_accuracy - ref_a.test_accuracy):+.2f} points")
    best_h = min(hogwild, key=end_to_end)
    best_c = min(classics, key=end_to_end)
    speedup = end_to_end(best_c) / end_to_end(best_h)
    bound = "at least " if best_c.extra.get("timed_out_after") else ""
    print(f"end to end, best Hogwild! ({best_h.label}, {end_to_end(best_h):.1f} s) vs best classic "
          f"({best_c.label}, {end_to_end(best_c):.1f} s): {bound}{speedup:.2f}x faster "
          f"(target >= 2x: {'met' if speedup >= 2 else 'NOT met'}); accuracy "
          f"{100 * (best_h.test_accuracy - best_c.test_accuracy):+.2f} points")
    if a.json:
        print(f"results: {save_results(results, a.json)}")


if __name__ == "__main__":
    main()
