"""The levers of one process, measured: each lever's steady ratio and break-even, the full grid
of layouts x levers, and `costtrain advise`'s pick against the grid's best point.

    python benchmarks/levers.py [--models simple sparse] [--repeats 3] [--subset 10000]
        [--sparse-train 30000] [--sparse-job-train 100000] [--job-epochs 2]
        [--advise-budget 120] [--cap-seconds 60]
        [--no-compile] [--json out.json]

For each model (``simple`` on Fashion-MNIST, ``sparse-linear`` on ``sparse-synthetic``) the grid
is every layout (one process with 1 thread, one process with every core, Hogwild! with one
process per core) x every set of levers this machine and model can use (none, each one alone,
all together; a 4x batch with the linear scaling rule on the all-cores baseline). Every run
trains one epoch of the same data; repeats alternate the whole grid (all once, then again).
Every Hogwild! run starts fresh worker processes and every compiled run compiles again
(``torch._dynamo.reset()``; Inductor's caches survive, so repeats compile faster than the
first), and each lever is charged the longest compile measured: what a one-off job pays.

From the medians the job (``--job-epochs`` passes over the *whole* dataset, the benchmarks' job for
Fashion-MNIST) is predicted as set-up + job samples / steady rate; each lever is judged with
:func:`costtrain.advice.payoff.judge` against the same layout without levers. Then
``costtrain.recommend(..., levers=True)`` runs within ``--advise-budget`` seconds and its pick
is looked up in the grid: the ratio of its predicted job time to the grid's best is printed.

Targets on the 2-core box: the tuned single process at least as fast as today's baseline (one
process, every core, no lever) on every model; advise's pick within 10 % of the grid's best.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import time
import warnings
from typing import Any

from costtrain.advice.advise import ProbeTimeout, deadline, lever_plan, recommend
from costtrain.advice.noise import alternate, spread
from costtrain.advice.payoff import Trial, judge
from costtrain.advice.report import format_table
from costtrain.data.datasets import load_dataset
from costtrain.data.models import build_model
from costtrain.errors import gist
from costtrain.hogwild import train_hogwild
from costtrain.result import RunResult, save_results
from costtrain.run import pool
from costtrain.train import levers
from costtrain.train.baseline import train_baseline
from costtrain.utils import hardware_info, num_cores

HEADERS = ["layout", "levers", "steady/s median [range]", "vs layout, no levers [pairs]",
           "vs today's baseline", "set-up s", "compile s", "break-even samples",
           "predicted job s", "test acc %", "verdict"]


@dataclasses.dataclass
class Config:
    layout: str  # as advise labels it: "baseline 1 thread", "hogwild 2 processes", ...
    trainer: str  # baseline | hogwild
    layout_kw: dict[str, Any]
    lever_label: str  # "none", "compile", "bf16 + compile", "batch 256 (lr x4)"
    lever_kw: dict[str, Any]
    runs: list[RunResult] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> tuple[str, frozenset]:
        return self.layout, frozenset(self.lever_kw.items())


def grid(net_name: str, input_shape, classes: int, cores: int, compile_ok: bool,
         batch_size: int) -> list[Config]:
    """Layouts x lever sets (see the module docstring)."""
    net = build_model(net_name, input_shape, classes)
    singles = [(label, kw) for label, kw in lever_plan(net) if compile_ok or "compile" not in kw]
    sets = [("none", {})] + singles
    if len(singles) > 1:
        sets.append((" + ".join(label for label, _ in singles),
                     {k: v for _, kw in singles for k, v in kw.items()}))
    layouts = [("baseline 1 thread", "baseline", {"threads": 1}),
               (f"baseline {cores} threads", "baseline", {"threads": cores}),
               (f"hogwild {cores} processes", "hogwild",
                {"processes": cores, "sharding": "shard", "threads": 1})]
    out = [Config(layout, trainer, kw, label, lkw) for layout, trainer, kw in layouts
           for label, lkw in sets]
    big = 4 * batch_size
    out.append(Config(layouts[1][0], "baseline", layouts[1][2], f"batch {big} (lr x4)",
                      {"batch_size": big, "base_batch": batch_size}))
    return out


def run(c: Config, ds, net_name: str, seed: int, batch_size: int, cap: float) -> RunResult:
    """One run of `c`, stopped after `cap` seconds (then a failed result: a busy machine can
    make a configuration crawl)."""
    kw = dict(c.layout_kw, **c.lever_kw)
    kw.setdefault("batch_size", batch_size)
    if "compile" in kw:
        levers.reset_compiled()
    try:
        with deadline(cap):
            if c.trainer == "hogwild":
                pool.close_all()  # a one-off job starts its workers
                return train_hogwild(net_name, ds, epochs_per_process=1, seed=seed,
                                     timeout=cap + 30, **kw)
            return train_baseline(net_name, ds, epochs=1, seed=seed, **kw)
    except ProbeTimeout:
        pool.close_all()
        return RunResult(method=c.trainer, config=kw, status="failed",
                         error=f"stopped at the cap of {cap:g} s")
    except Exception as exc:  # noqa: BLE001 a lever that breaks (e.g. a corrupt Inductor
        # cache: "file too short") is a finding: recorded in the table, the grid goes on
        pool.close_all()
        return RunResult(method=c.trainer, config=kw, status="failed",
                         error=f"failed: {type(exc).__name__}: {gist(exc, 200)}")


def rates(c: Config) -> list[float]:
    return [r.steady_samples_per_second for r in c.runs]


def complete(c: Config) -> bool:
    """Every repeat finished (none stopped at the cap)."""
    return all(r.status == "ok" and r.steady_samples_per_second > 0 for r in c.runs)


def failure(c: Config) -> str:
    """Why a configuration has no complete repeats: its first failed run's error."""
    return next((r.error or r.status for r in c.runs if r.status != "ok"), "no rate measured")


def predicted(c: Config, job: float) -> list[float]:
    """Predicted job seconds of each repeat: its set-up, with the longest compile measured in
    place of its own, + job / its rate."""
    if not complete(c):
        return [math.inf]
    worst = max(r.compile_seconds for r in c.runs)
    return [r.setup_seconds - r.compile_seconds + worst + job / r.steady_samples_per_second
            for r in c.runs]


def table(configs: list[Config], job: float, today: Config) -> tuple[list[list], dict]:
    none = {c.layout: c for c in configs if c.lever_label == "none"}
    rows, verdicts = [], {}
    for c in configs:
        s = spread(rates(c))
        base = none[c.layout]
        if not (complete(c) and complete(base) and complete(today)):
            rows.append([c.layout, c.lever_label, f"{s.median:,.0f} [{s.low:,.0f}-{s.high:,.0f}]"]
                        + ["-"] * 7 + ["; ".join(dict.fromkeys(
                            f"{x.layout} | {x.lever_label}: {failure(x)}"
                            for x in (c, base, today) if not complete(x)))])
            continue
        pairs = spread([a / b for a, b in zip(rates(c), rates(base))])
        vs_layout = s.median / spread(rates(base)).median
        vs_today = s.median / spread(rates(today)).median
        compile_s = max(r.compile_seconds for r in c.runs)
        verdict = "-"
        even = None
        if c is not base:
            v = judge(Trial(c.lever_label, rates(c), rates(base),
                            extra_setup=compile_s, kwargs=c.lever_kw,
                            accuracy=spread([r.test_accuracy for r in c.runs]).median,
                            base_accuracy=spread([r.test_accuracy for r in base.runs]).median),
                      job_samples=job, base_setup=spread([r.setup_seconds for r in base.runs]).median)
            verdicts[c.key] = v
            verdict = ("kept: " if v.kept else "dropped: ") + v.why.split(":")[0].split(",")[0]
            even = v.break_even
        rows.append([c.layout, c.lever_label, f"{s.median:,.0f} [{s.low:,.0f}-{s.high:,.0f}]",
                     f"{vs_layout:.2f}x [{pairs.low:.2f}-{pairs.high:.2f}]",
                     f"{vs_today:.2f}x", round(spread([r.setup_seconds for r in c.runs]).median, 2),
                     round(compile_s, 1),
                     "-" if even is None else "never" if math.isinf(even) else f"{even:,.0f}",
                     round(spread(predicted(c, job)).median, 1),
                     round(100 * spread([r.test_accuracy for r in c.runs]).median, 2), verdict])
    return rows, verdicts


def bench_model(name: str, a: argparse.Namespace) -> list[RunResult]:
    cores = num_cores()
    if name == "simple":
        full = load_dataset("fashion-mnist")
        ds = load_dataset("fashion-mnist", subset=a.subset, seed=a.seed)
        net_name, job = "simple", a.job_epochs * len(full.train_y)
    else:  # the job: docs/benchmarks.md's sparse one (100,000 samples); each run: fewer
        full = load_dataset("sparse-synthetic", train=a.sparse_job_train)
        ds = load_dataset("sparse-synthetic", train=a.sparse_train)
        net_name, job = "sparse-linear", a.job_epochs * len(full.train_y)
    configs = grid(net_name, ds.input_shape, ds.num_classes, cores, not a.no_compile, a.batch_size)
    print(f"\n== {net_name} on {ds.name}: {len(ds.train_y):,} training samples per run, "
          f"{len(configs)} configurations x {a.repeats} alternating repeats; the job: {job:,} "
          f"samples; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    t0 = time.perf_counter()
    try:
        for rep, c in alternate(configs, a.repeats):
            r = run(c, ds, net_name, a.seed, a.batch_size, a.cap_seconds)
            r.label = f"{c.layout} | {c.lever_label}"
            c.runs.append(r)
            print(f"  [{rep + 1}/{a.repeats}] {r.label:<48} steady "
                  f"{r.steady_samples_per_second:>10,.0f}/s set-up {r.setup_seconds:6.2f} s "
                  f"(compile {r.compile_seconds:5.2f})  acc {100 * r.test_accuracy:5.2f} %  "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (timeout): report the full repeats so far
        done = min(len(c.runs) for c in configs)
        print(f"interrupted: reporting the {done} repeat(s) every configuration finished; "
              "advise is skipped", flush=True)
        if not done:
            return [r for c in configs for r in c.runs]
        for c in configs:
            del c.runs[done:]
        a.advise_budget = 0
    today = next(c for c in configs if c.layout == f"baseline {cores} threads" and c.lever_label == "none")
    rows, verdicts = table(configs, job, today)
    print(format_table(rows, HEADERS))
    pred = {c.key: spread(predicted(c, job)).median for c in configs}
    best = min(configs, key=lambda c: pred[c.key])
    passed = [c for c in configs
              if c.lever_label == "none" or c.key in verdicts and verdicts[c.key].kept]
    tuned = min([c for c in passed if c.trainer == "baseline"], key=lambda c: pred[c.key])
    sure = min(passed, key=lambda c: pred[c.key])
    acc = {c.key: spread([r.test_accuracy for r in c.runs]).median for c in configs if complete(c)}
    par = min([c for c in configs if acc.get(c.key, -1) >= acc.get(today.key, 0.0) - 0.01],
              key=lambda c: pred[c.key])  # learns as much per sample: within 1 point
    print(f"grid's best point for the job: {best.layout} with {best.lever_label} "
          f"({pred[best.key]:.1f} s predicted, by the medians); the best that passed the noise "
          f"rule: {sure.layout} with {sure.lever_label} ({pred[sure.key]:.1f} s); the best "
          f"within 1 point of today's baseline's test accuracy ({100 * acc.get(today.key, float('nan')):.1f} %): "
          f"{par.layout} with {par.lever_label} ({pred[par.key]:.1f} s)")
    print(f"tuned single process: {tuned.layout} with {tuned.lever_label}, {pred[tuned.key]:.1f} s "
          f"against today's baseline ({today.layout}, no lever) {pred[today.key]:.1f} s: "
          f"{pred[today.key] / pred[tuned.key]:.2f}x (target >= 1.00x; levers that did not pay "
          "are dropped, never kept)")
    results = [r for c in configs for r in c.runs]
    if a.advise_budget > 0:
        t1 = time.perf_counter()
        pool.close_all()  # advise's first Hogwild! probe starts its workers, as a one-off run does
        try:
            advice = recommend(net_name, full, epochs=a.job_epochs,
                               budget_seconds=a.advise_budget, batch_size=a.batch_size,
                               seed=a.seed, levers=True, progress=False)
        except Exception as exc:  # noqa: BLE001 report it with the grid measured so far
            print(f"advise failed: {type(exc).__name__}: {exc}", flush=True)
            return [r for c in configs for r in c.runs]
        rec = advice.recommended
        kw = advice.levers.pick.trial.kwargs if advice.levers and advice.levers.pick else {}
        key = (rec.label, frozenset(kw.items())) if rec else None
        print(f"advise ({time.perf_counter() - t1:.0f} s of a {a.advise_budget:g} s budget) picks: "
              f"{rec.label if rec else 'nothing'} with levers {kw or 'none'}")
        if advice.levers:
            print(advice.levers)
        if key in pred:
            print(f"advise's pick in the grid: {pred[key]:.1f} s predicted; the grid's best "
                  f"{pred[best.key]:.1f} s: ratio {pred[key] / pred[best.key]:.2f} (target <= 1.10); "
                  f"the best that passed the noise rule {pred[sure.key]:.1f} s: ratio "
                  f"{pred[key] / pred[sure.key]:.2f}; the best at today's accuracy "
                  f"{pred[par.key]:.1f} s: ratio {pred[key] / pred[par.key]:.2f}")
        else:
            print(f"advise's pick is not a point of the grid (advise predicted "
                  f"{rec.predicted_seconds if rec else float('nan'):.1f} s); the grid's best "
                  f"{pred[best.key]:.1f} s")
    print(f"{time.perf_counter() - t0:.0f} s; load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", choices=["simple", "sparse"], default=["simple", "sparse"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subset", type=int, default=10000, help="Fashion-MNIST images per run")
    ap.add_argument("--sparse-train", type=int, default=30000,
                    help="sparse-synthetic samples per run")
    ap.add_argument("--sparse-job-train", type=int, default=100000,
                    help="sparse-synthetic samples of the job (x --job-epochs; default: the "
                         "sparse benchmark of docs/benchmarks.md)")
    ap.add_argument("--cap-seconds", type=float, default=60.0,
                    help="stop a run after this long (a busy machine can make one crawl)")
    ap.add_argument("--job-epochs", type=int, default=2,
                    help="the job: passes over the whole dataset (default: 2, as in docs/benchmarks.md)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--advise-budget", type=float, default=120.0, help="0: skip advise")
    ap.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", default=None, help="save every run here")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # timeout: keep what was measured
    warnings.filterwarnings("ignore", message=".*threads on .* core.*")
    hw = hardware_info()
    native, has = levers.native_bf16()
    print(f"{hw['cpu']}, {hw['cores']} cores, torch {hw['torch']}; bf16 native: {native} ({has}); "
          f"C++ compiler: {levers.cxx_compiler()}")
    results = []
    for m in a.models:
        results += bench_model(m, a)
    if a.json:
        save_results(results, a.json)


if __name__ == "__main__":
    main()
