"""Do the trainers measure the same thing? One definition per figure, checked with numbers.

    python benchmarks/timing.py [--subset 10000] [--repeats 3]

1. The same computation through two trainers: one process with every core's threads as the
   baseline (``train_baseline(threads=k)``) and as Hogwild! with one process
   (``train_hogwild(processes=1, threads=k)``). Their steady rates should agree within noise;
   so should their train seconds. Alternating repeats, medians [ranges].
2. Order does not decide set-up: ``run_comparison`` on hogwild 1xk and 2x1 in both orders
   (cold, as ``compare`` runs) and with the warm pool kept; the one-off set-up of each
   configuration, and the warm one.
3. Warm ranks for the distributed methods: ``train_parameter_server`` (async, 2 workers) and
   ``train_local_sgd`` (2 workers) called `repeats` times in a row in one process after closing
   the pool: the first pays the ranks' start-up, the later ones find them warm. Each call's
   measured set-up (what the call itself waited for), and the one-off set-up it reports.
Every run also records whether other work competed for the cores (``busy``).
"""
from __future__ import annotations

import argparse

from costtrain.advice.compare import run_comparison
from costtrain.advice.noise import alternate, spread
from costtrain.advice.report import format_table, median_range
from costtrain.data.datasets import load_dataset
from costtrain.hogwild import train_hogwild
from costtrain.run import pool
from costtrain.train.baseline import train_baseline
from costtrain.train.local_sgd import train_local_sgd
from costtrain.train.parameter_server import train_parameter_server
from costtrain.utils import hardware_info, num_cores


def same_computation(ds, k: int, repeats: int) -> None:
    configs = {f"baseline {k} threads": (train_baseline, dict(epochs=2, threads=k)),
               f"hogwild 1x2, {k} threads": (train_hogwild, dict(processes=1,
                                                                 epochs_per_process=2, threads=k))}
    runs: dict[str, list] = {c: [] for c in configs}
    pool.warm_up(1)  # Hogwild!'s worker start-up is not what this part compares
    for _, label in alternate(list(configs), repeats):
        trainer, kw = configs[label]
        r = trainer("simple", ds, **kw)
        runs[label].append(r)
        print(f"  {label}: steady {r.steady_samples_per_second:,.0f}/s, train "
              f"{r.train_seconds:.2f} s, busy={r.extra['load']['busy']}", flush=True)
    rows = [[label, median_range([r.steady_samples_per_second for r in rs]),
             median_range([r.samples_per_second for r in rs]),
             median_range([r.train_seconds for r in rs]),
             sum(r.extra["load"]["busy"] for r in rs)] for label, rs in runs.items()]
    print(format_table(rows, ["run", "steady/s", "overall/s", "train s", "busy runs"]))
    (a, ra), (b, rb) = runs.items()
    sa, sb = (spread([r.steady_samples_per_second for r in rs]) for rs in (ra, rb))
    print(f"steady rate {b} / {a}: {sb.median / sa.median:.2f}x "
          + ("(within noise: the ranges overlap)" if sa.overlaps(sb) else "(ranges apart)"))


def order(ds, k: int) -> None:
    plan = [f"hogwild 1x2", "hogwild 2x1"]
    rows = []
    for cold in (True, False):
        for seq in (plan, plan[::-1]):
            pool.close_all()
            for r in run_comparison(ds, only=seq, total_epochs=2, cold=cold):
                rows.append([("cold" if cold else "warm pool"), " then ".join(seq), r.label,
                             round(r.setup_seconds, 2), round(r.warm_setup_seconds, 2),
                             round(r.total_seconds, 2), round(r.wall_seconds, 2),
                             r.extra["load"]["busy"]])
    pool.close_all()
    print(format_table(rows, ["pool", "order", "run", "one-off setup s", "warm setup s",
                              "total s", "wall s", "busy"]))


def warm_ranks(ds, repeats: int) -> None:
    trainers = {"ps async 2 workers": lambda: train_parameter_server(
                    "simple", ds, mode="async", workers=2, progress=False),
                "local-sgd 2 workers": lambda: train_local_sgd("simple", ds, workers=2,
                                                               progress=False)}
    rows = []
    for label, train in trainers.items():
        pool.close_all()
        warm = []
        for i in range(repeats):
            r = train()
            rows.append([label, i + 1, "cold" if r.extra["startup"].get("cold") else "warm",
                         round(r.extra["startup"]["measured_setup"], 3),
                         round(r.setup_seconds, 2), r.extra["load"]["busy"]])
            warm += [r.extra["startup"]["measured_setup"]] if i else []
        if warm:
            print(f"  {label}: set-up of calls 2..{repeats} {median_range(warm)} s "
                  f"(target <= 0.5 s: {'met' if max(warm) <= 0.5 else 'missed'})", flush=True)
    pool.close_all()
    print(format_table(rows, ["run", "call", "ranks", "set-up s (this call)",
                              "one-off set-up s", "busy"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subset", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    hw, k = hardware_info(), num_cores()
    print(f"{hw['cpu']}, {hw['cores']} cores; {args.subset:,} images x 2 epochs", flush=True)
    ds = load_dataset("fashion-mnist", subset=args.subset, seed=0)
    print("\n1. the same computation through two trainers")
    same_computation(ds, k, args.repeats)
    print("\n2. order and set-up")
    order(ds, k)
    print("\n3. warm ranks for the parameter server and local SGD")
    warm_ranks(ds, args.repeats)


if __name__ == "__main__":
    main()
