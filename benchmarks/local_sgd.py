"""Local SGD against the baseline and the parameter server: accuracy, bytes per sample, speed.

    python benchmarks/local_sgd.py [--subset N] [--epochs 2] [--workers 2] [--average-every 8]
        [--repeat 1] [--json out.json]

The baseline (one process, every core), the parameter server in sync mode and local SGD train
the same data for the same epochs (the same total samples) with the same SGD settings (the
distributed ones scale the learning rate by the workers, their default). The table shows
training time, throughput, test accuracy, bytes sent per training sample (all ranks, as counted
in ``extra['comm']``), seconds per worker communicating, and the *predicted* seconds per step on
this machine's loopback (measured once) beside the measured ones. The targets of issue 13 are
checked at the end: local SGD within 2 points of the baseline's accuracy, at least 8x fewer
bytes per sample than the parameter server in sync mode, and at least its throughput. With
``--repeat N`` the two distributed runs alternate N times and the throughput check compares
their medians (a busy machine's speed drifts: alternate, and quote medians with ranges).
"""
from __future__ import annotations

import argparse
import os
import statistics

from costtrain.advice.network import measure_loopback, measured_seconds_per_step, predict
from costtrain.advice.report import format_table
from costtrain.data.datasets import load_dataset
from costtrain.result import RunResult, save_results
from costtrain.train.baseline import train_baseline
from costtrain.train.local_sgd import train_local_sgd
from costtrain.train.parameter_server import train_parameter_server
from costtrain.utils import hardware_info, num_cores

HEADERS = ["run", "setup s", "train s", "samples/s", "test acc %", "B sent/sample",
           "comm s/worker", "ms/step", "predicted ms/step (loopback)"]


def row(r: RunResult, loopback) -> list:
    comm = r.extra.get("comm")
    pred = predict(r, loopback) if comm else None
    return [r.label, round(r.setup_seconds, 2), round(r.train_seconds, 2),
            round(r.samples_per_second), round(100 * r.test_accuracy, 2),
            round(comm["bytes_sent_per_sample"]) if comm else None,
            round(comm["seconds"], 2) if comm else None,
            round(1e3 * measured_seconds_per_step(r), 2) if comm else None,
            round(1e3 * pred.seconds_per_step, 2) if pred else None]


def check(name: str, ok: bool, detail: str) -> str:
    return f"  [{'met' if ok else 'MISSED'}] {name}: {detail}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--epochs", type=int, default=2, help="passes over the training set (2)")
    ap.add_argument("--workers", type=int, default=2, help="workers of ps and local SGD (2)")
    ap.add_argument("--average-every", type=int, default=8, help="local SGD's H (8)")
    ap.add_argument("--model", default="simple")
    ap.add_argument("--batch-size", type=int, default=64, help="per step and worker")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="alternate the ps-sync and local SGD runs this many times (1)")
    ap.add_argument("--json", default=None, help="save every result here")
    a = ap.parse_args()
    ds = load_dataset("fashion-mnist", subset=a.subset, seed=0)
    hw = hardware_info()
    load = os.getloadavg()
    print(f"# local SGD benchmark: {hw['cpu']}, {num_cores()} cores, torch {hw['torch']}; "
          f"{ds.name} {len(ds.train_y):,} images x {a.epochs} epochs, model {a.model}, batch "
          f"{a.batch_size} per worker, lr {a.lr}, momentum {a.momentum}; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start", flush=True)
    common = dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, momentum=a.momentum,
                  seed=a.seed)
    base = train_baseline(a.model, ds, **common)
    base.label = f"baseline {base.threads} threads"
    print(f"  {base.label}: {base.total_seconds:.1f} s", flush=True)
    pss, lss = [], []
    for _ in range(a.repeat):
        pss.append(train_parameter_server(a.model, ds, mode="sync", workers=a.workers, **common))
        print(f"  {pss[-1].label}: {pss[-1].total_seconds:.1f} s", flush=True)
        lss.append(train_local_sgd(a.model, ds, workers=a.workers,
                                   average_every=a.average_every, **common))
        print(f"  {lss[-1].label}: {lss[-1].total_seconds:.1f} s", flush=True)
    ps, ls = pss[0], lss[0]
    loopback = measure_loopback()
    results = [base] + [r for pair in zip(pss, lss) for r in pair]
    print()
    print(format_table([row(r, loopback) for r in results], HEADERS))
    print(f"\nloopback measured: {loopback.describe()}; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    gap = 100 * (base.test_accuracy - ls.test_accuracy)
    fewer = ps.extra["comm"]["bytes_sent_per_sample"] / ls.extra["comm"]["bytes_sent_per_sample"]
    rate = {k: sorted(r.samples_per_second for r in rs) for k, rs in (("ps", pss), ("ls", lss))}
    speed = statistics.median(rate["ls"]) / statistics.median(rate["ps"])
    print("targets (issue 13):")
    print(check("accuracy within 2 points of the baseline", gap <= 2.0,
                f"{100 * ls.test_accuracy:.2f} % vs {100 * base.test_accuracy:.2f} %"))
    print(check("bytes sent per sample >= 8x fewer than ps-sync", fewer >= 8,
                f"{fewer:.1f}x fewer"))
    print(check("throughput >= ps-sync", speed >= 1.0,
                f"{speed:.2f}x ps-sync's samples/s (medians of {a.repeat}: local SGD "
                f"{statistics.median(rate['ls']):.0f} [{rate['ls'][0]:.0f}-{rate['ls'][-1]:.0f}], "
                f"ps-sync {statistics.median(rate['ps']):.0f} [{rate['ps'][0]:.0f}-"
                f"{rate['ps'][-1]:.0f}])"))
    if a.json:
        print(f"results: {save_results(results, a.json)}")


if __name__ == "__main__":
    main()
