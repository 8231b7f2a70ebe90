"""Parameter server: steps/s, communication share and time to the baseline's accuracy.

    python benchmarks/parameter_server.py [--subset N] [--epochs 2] [--max-workers K]
        [--eval-every N] [--tolerance 0.02] [--momentum 0.5] [--no-scale-lr] [--json out.json]
    python benchmarks/parameter_server.py --seeds 1 2 3 [--subset 8000] [--workers 2 4]

First the baseline (one process with one thread, then with every core) trains on the same
data for the same epochs, evaluated every `--eval-every` samples; the all-core run's final test
accuracy minus `--tolerance` is the target, and "train vs baseline" compares training time with
that run. Then the parameter server in sync and async mode with 1..cores workers (plus the
server, which mostly waits and uses one thread), same data, same total work, the same SGD
settings on the server (sync multiplies the learning rate by the number of workers, whose
batch is that many times larger, unless `--no-scale-lr`). The table shows set-up / train /
eval time, optimizer steps/s, samples/s in steady state, the workers' share of time spent
communicating (sending the gradient, waiting for and receiving the parameters), the mean
staleness (async), test accuracy and the training time and samples needed to reach the target
(time to accuracy).

With ``--seeds``, the accuracy study instead (issue 14): for each seed the baseline (one
process, one thread), then sync and async with each of ``--workers`` workers, seeds taken in
turn (a configuration's runs are spread over the whole measurement, not back to back); prints
test accuracy per seed, the mean over seeds and the mean's distance from the baseline's, and
whether sync is within 2 points (the target). The study is
:func:`costtrain.advice.compare.accuracy_by_seed`, which the parameter-server notebook can call.
"""
from __future__ import annotations

import argparse
import math

from costtrain.advice.compare import accuracy_by_seed
from costtrain.advice.report import format_table
from costtrain.data.datasets import load_dataset
from costtrain.measure import time_to_accuracy
from costtrain.result import RunResult, save_results
from costtrain.train.baseline import train_baseline
from costtrain.train.parameter_server import train_parameter_server
from costtrain.utils import hardware_info, num_cores

HEADERS = ["run", "workers", "thr/worker", "setup s", "train s", "eval s", "steps/s",
           "steady/s", "comm %", "staleness", "test acc %", "to target s", "to target samples",
           "train vs baseline"]


def row(r: RunResult, base: RunResult, target: float) -> list:
    sec, samples = time_to_accuracy(r.eval_curve, target)
    steps = r.extra.get("steps") or r.config["epochs"] * math.ceil(
        r.config["train_samples"] / r.config["batch_size"])  # the baseline: one per batch
    st = r.extra.get("staleness")
    return [r.label, r.config.get("workers", "-"), r.threads, round(r.setup_seconds, 2),
            round(r.train_seconds, 2), round(r.eval_seconds, 2),
            round(steps / r.train_seconds, 1) if r.train_seconds else None,
            round(r.steady_samples_per_second),
            round(100 * r.extra["comm_share"], 1) if "comm_share" in r.extra else None,
            round(st["mean"], 2) if st else None, round(100 * r.test_accuracy, 2),
            None if sec is None else round(sec, 2), samples,
            f"{r.train_seconds / base.train_seconds:.2f}x"]


SEED_HEADERS = ["configuration", "lr (server)", "test acc % by seed", "mean %", "vs baseline"]


def seeds_main(a, ds) -> None:
    """The ``--seeds`` study: accuracy per seed, means, the 2-point target for sync."""
    results = []

    def show(r: RunResult) -> None:
        print(f"  {r.label}: {100 * r.test_accuracy:.2f} % in {r.total_seconds:.1f} s", flush=True)
        results.append(r)
    rows = accuracy_by_seed(ds, seeds=a.seeds, workers=a.workers, modes=a.modes,
                            epochs=a.epochs, lr=a.lr, momentum=a.momentum,
                            scale_lr=not a.no_scale_lr, model=a.model, on_result=show)
    print()
    print(format_table([[r["label"], r["lr"], " / ".join(f"{100 * x:.1f}" for x in r["accuracies"]),
                         round(100 * r["mean"], 2), f"{100 * r['vs_baseline']:+.2f}"]
                        for r in rows], SEED_HEADERS))
    for r in rows:
        if " sync " in r["label"]:
            ok = r["vs_baseline"] >= -0.02
            print(f"{r['label']}: {100 * r['vs_baseline']:+.2f} points vs the baseline "
                  f"(target within 2: {'met' if ok else 'NOT met'})")
    if a.json:
        print(f"results: {save_results(results, a.json)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--epochs", type=int, default=2,
                    help="passes over the training set, for every run (default 2)")
    ap.add_argument("--max-workers", type=int, default=None,
                    help="largest number of workers (default: cores)")
    ap.add_argument("--modes", nargs="+", default=["sync", "async"], choices=["sync", "async"])
    ap.add_argument("--eval-every", type=int, default=None,
                    help="evaluate every this many samples (default: a tenth of the work)")
    ap.add_argument("--tolerance", type=float, default=0.02,
                    help="target = the baseline's final accuracy minus this (default 0.02)")
    ap.add_argument("--model", default="simple")
    ap.add_argument("--batch-size", type=int, default=64, help="per step and worker")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.5,
                    help="SGD momentum for the baseline and the server (default 0.5)")
    ap.add_argument("--no-scale-lr", action="store_true",
                    help="sync: keep lr (default: lr x workers, the linear scaling rule)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="accuracy study over these seeds instead (e.g. 1 2 3)")
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4],
                    help="with --seeds: worker counts (default 2 4)")
    ap.add_argument("--json", default=None, help="save every result here")
    a = ap.parse_args()
    cores = num_cores()
    ds = load_dataset("fashion-mnist", subset=a.subset, seed=0)
    if a.seeds:
        hw = hardware_info()
        print(f"# parameter-server accuracy by seed: {hw['cpu']}, {cores} cores; {ds.name} "
              f"{len(ds.train_y):,} images x {a.epochs} epochs, lr {a.lr}, momentum "
              f"{a.momentum}, scale lr {'off' if a.no_scale_lr else 'on'}", flush=True)
        return seeds_main(a, ds)
    every = a.eval_every or max(1, a.epochs * len(ds.train_y) // 10)
    hw = hardware_info()
    print(f"# parameter-server benchmark: {hw['cpu']}, {cores} cores, torch {hw['torch']}; "
          f"{ds.name} {len(ds.train_y):,} images x {a.epochs} epochs, model {a.model}, batch "
          f"{a.batch_size} per worker, lr {a.lr}, momentum {a.momentum}", flush=True)
    common = dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, momentum=a.momentum,
                  seed=a.seed, eval_every=every)
    results = []
    for threads in dict.fromkeys([1, cores]):
        r = train_baseline(a.model, ds, threads=threads, **common)
        r.label = f"baseline {threads} thread{'s' if threads > 1 else ''}"
        print(f"  {r.label}: {r.total_seconds:.1f} s", flush=True)
        results.append(r)
    base = results[-1]
    target = base.test_accuracy - a.tolerance
    print(f"  target: {100 * target:.2f} % ({base.label}: {100 * base.test_accuracy:.2f} %)",
          flush=True)
    for mode in a.modes:
        for k in range(1, (a.max_workers or cores) + 1):
            r = train_parameter_server(a.model, ds, mode=mode, workers=k,
                                       scale_lr=not a.no_scale_lr, **common)
            print(f"  {r.label}: {r.total_seconds:.1f} s", flush=True)
            results.append(r)
    print()
    print(format_table([row(r, base, target) for r in results], HEADERS))
    print(f"\ntarget accuracy {100 * target:.2f} % (baseline {100 * base.test_accuracy:.2f} % - "
          f"{100 * a.tolerance:g} points); 'to target' is training time, evaluation excluded; "
          "comm % = workers' time sending, waiting and receiving / (that + computing)")
    if a.json:
        print(f"results: {save_results(results, a.json)}")


if __name__ == "__main__":
    main()
