"""Hogwild! scaling at constant total work, against one process and the classic example style.

    python benchmarks/hogwild.py [--repeats 3] [--subset N] [--total-epochs 2] [--classic-timeout 60]
        [--skip-startup] [--skip-scaling] [--json out.json]

First the two start-up targets (issue 14), each measured `--repeats` times, alternating:
(1) whole-process wall time of ``costtrain run --method baseline --epochs 2`` divided by that
of ``costtrain run --method hogwild --processes 2 --epochs-per-process 1`` (target >= 1.10,
accuracy within 1 point): the CLI starts the Hogwild! workers before it imports torch and
loads the data; (2) ``warm_setup_seconds`` of a second ``train_hogwild`` call in one process, which
finds the warm worker pool (target <= 0.5 s). Then the scaling table below.

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
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from costtrain.advice.compare import median_run
from costtrain.advice.noise import alternate, speedup_verdict, spread
from costtrain.advice.report import format_table, median_range
from costtrain.data.datasets import load_dataset
from costtrain.hogwild import split_work, train_hogwild
from costtrain.result import RunResult, save_results
from costtrain.run import pool
from costtrain.run.procs import WorkerError
from costtrain.train.baseline import train_baseline
from costtrain.utils import hardware_info, num_cores

HEADERS = ["run", "procs", "thr/proc", "setup s", "train s", "eval s", "total s", "steady/s",
           "test acc %", "steady vs (a)", "steady vs (b)", "total s median (min-max)"]
CLI_RUNS = {"baseline": ["--method", "baseline", "--epochs", "2"],
            "hogwild": ["--method", "hogwild", "--processes", "2", "--epochs-per-process", "1"]}


def cli_wall(args: list[str], common: list[str]) -> tuple[float, float]:
    """(whole-process wall seconds, test accuracy) of one ``costtrain run`` in a fresh Python."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "costtrain", "run", *args, *common, "--no-progress",
               "--out", str(out)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        return wall, json.loads(out.read_text())[0]["test_accuracy"]


def startup_targets(a, ds) -> list[str]:
    """Measure the two start-up targets; return the lines that report them."""
    common = [] if a.subset is None else ["--subset", str(a.subset)]
    walls: dict[str, list[float]] = {k: [] for k in CLI_RUNS}
    accs: dict[str, list[float]] = {k: [] for k in CLI_RUNS}
    for rep, name in alternate(list(CLI_RUNS), a.repeats):
        wall, acc = cli_wall(CLI_RUNS[name], common)
        walls[name].append(wall)
        accs[name].append(acc)
        print(f"  costtrain run --method {name} (repeat {rep + 1}): {wall:.1f} s, "
              f"{100 * acc:.2f} %", flush=True)
    base, hog = spread(walls["baseline"]), spread(walls["hogwild"])
    ratio = base.median / hog.median
    gap = 100 * (spread(accs["hogwild"]).median - spread(accs["baseline"]).median)
    lines = [f"(1) whole process, baseline 1x2 / hogwild 2x1: {ratio:.2f}x (medians "
             f"{base.text()} s / {hog.text()} s; target >= 1.10: "
             f"{'met' if ratio >= 1.10 else 'NOT met'}"
             f"{', within noise' if base.overlaps(hog) else ''}); accuracy {gap:+.2f} points",
             "    " + (speedup_verdict("hogwild", walls["hogwild"], "baseline", walls["baseline"])
                       if ratio >= 1 else
                       speedup_verdict("baseline", walls["baseline"], "hogwild", walls["hogwild"]))]
    pool.close_all()
    setups = []
    for i in range(a.repeats + 1):  # the first call starts the pool; the others find it warm
        r = train_hogwild(a.model, ds, seed=a.seed, processes=2, epochs_per_process=1)
        setups.append(r.warm_setup_seconds)  # what this call paid (setup_seconds is one-off)
        print(f"  train_hogwild call {i + 1} in one process: set-up paid {r.warm_setup_seconds:.2f}"
              f" s (one-off set-up {r.setup_seconds:.2f} s)", flush=True)
    warm = spread(setups[1:])
    lines.append(f"(2) set-up of later train_hogwild calls in one process: {warm.text()} s "
                 f"(first call {setups[0]:.2f} s; {setups[0] / warm.median:.0f}x less; target "
                 f"<= 0.5 s: {'met' if warm.median <= 0.5 else 'NOT met'})")
    return lines


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
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each configuration, alternating (default 3)")
    ap.add_argument("--skip-startup", action="store_true", help="skip the start-up targets")
    ap.add_argument("--skip-scaling", action="store_true", help="only the start-up targets")
    ap.add_argument("--json", default=None, help="save every result here")
    a = ap.parse_args()
    cores = num_cores()
    ds = load_dataset("fashion-mnist", subset=a.subset, seed=0)
    hw = hardware_info()
    print(f"# Hogwild! benchmark: {hw['cpu']}, {cores} cores, torch {hw['torch']}; {ds.name} "
          f"{len(ds.train_y):,} images x {a.total_epochs} epochs of work, model {a.model}, "
          f"{a.repeats} repeat(s) of each configuration, alternating", flush=True)
    startup = [] if a.skip_startup else startup_targets(a, ds)
    results = [] if a.skip_scaling else scaling(a, ds, cores)
    if startup:
        print("\nstart-up targets:")
        print("\n".join(startup))
    if a.json and results:
        print(f"results: {save_results(results, a.json)}")


def scaling(a, ds, cores: int) -> list[RunResult]:
    """Baselines, Hogwild! 1..cores processes and the classic style; each `repeats` times,
    alternating; prints the table of median runs and the verdicts."""
    def baseline(threads: int, label: str) -> RunResult:
        r = train_baseline(a.model, ds, epochs=a.total_epochs, threads=threads, seed=a.seed)
        r.label = label
        return r

    def hogwild(p: int) -> RunResult:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # only above `cores` processes
            r = train_hogwild(a.model, ds, seed=a.seed, **split_work(a.total_epochs, p))
        r.label = f"hogwild {p}x{r.config['epochs_per_process']}" + (
            " shards" if r.config["sharding"] == "shard" else "")
        return r

    configs = [("a", lambda: baseline(1, "(a) 1 process 1 thread")),
               ("b", lambda: baseline(cores, f"(b) 1 process {cores} threads"))]
    configs += [(f"h{p}", lambda p=p: hogwild(p)) for p in range(1, (a.max_processes or cores) + 1)]
    configs += [(f"c{p}", lambda p=p: classic(ds, a.model, a.total_epochs, p, cores,
                                              a.classic_timeout, a.seed))
                for p in sorted({1, cores})]
    runs: dict[str, list[RunResult]] = {k: [] for k, _ in configs}
    for rep, (key, fn) in alternate(configs, a.repeats):
        r = fn()
        runs[key].append(r)
        print(f"  {r.label} (repeat {rep + 1}): {end_to_end(r):.1f} s", flush=True)
    med = {k: median_run(v) for k, v in runs.items()}
    ref_a, ref_b = med["a"], med["b"]
    hog = [med[k] for k in med if k.startswith("h")]
    classics = [med[k] for k in med if k.startswith("c")]
    results = [ref_a, ref_b, *hog, *classics]
    print()
    print(format_table([row(r, ref_a, ref_b) + [median_range([end_to_end_of(x) for x in
                                                              r.extra["repeats"]])]
                        for r in results], HEADERS))
    print()
    two = next((r for r in hog if r.config["processes"] == 2), None)
    if two is not None:
        ratio = two.steady_samples_per_second / ref_a.steady_samples_per_second
        print(f"steady-state throughput, 2 processes / 1 single-thread process: {ratio:.2f}x "
              f"(target >= 1.7x: {'met' if ratio >= 1.7 else 'NOT met'}); accuracy "
              f"{100 * (two.test_accuracy - ref_a.test_accuracy):+.2f} points (median runs)")
    best_h = min(hog, key=end_to_end)
    best_c = min(classics, key=end_to_end)
    speedup = end_to_end(best_c) / end_to_end(best_h)
    bound = "at least " if best_c.extra.get("timed_out_after") else ""
    print(f"end to end, best Hogwild! ({best_h.label}, {end_to_end(best_h):.1f} s) vs best classic "
          f"({best_c.label}, {end_to_end(best_c):.1f} s): {bound}{speedup:.2f}x faster "
          f"(target >= 2x: {'met' if speedup >= 2 else 'NOT met'}); accuracy "
          f"{100 * (best_h.test_accuracy - best_c.test_accuracy):+.2f} points")
    print("  " + speedup_verdict(best_h.label, [end_to_end_of(x) for x in best_h.extra["repeats"]],
                                 best_c.label, [end_to_end_of(x) for x in best_c.extra["repeats"]]))
    print("  " + speedup_verdict(best_h.label, [x["total_seconds"] for x in best_h.extra["repeats"]],
                                 ref_b.label, [x["total_seconds"] for x in ref_b.extra["repeats"]])
          + " (in-process; set-up on a warm pool)")
    return results


def end_to_end_of(rep: dict) -> float:
    """Wall seconds of one repeat record (a capped classic run: its lower bound)."""
    return max(rep["total_seconds"], rep.get("timed_out_after") or 0.0)


if __name__ == "__main__":
    main()
