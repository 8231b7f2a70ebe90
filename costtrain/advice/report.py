"""Plain-text summaries and tables of results (for the CLI, benchmarks and notebooks)."""
from __future__ import annotations

from typing import Sequence

from ..result import RunResult
from ..train.comm import describe
from .noise import spread
from .prose import number


def format_table(rows: Sequence[Sequence], headers: Sequence[str]) -> str:
    """A right-aligned plain-text table (first column left-aligned)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def _fmt(c) -> str:
    if isinstance(c, float):
        return number(c)  # the same rounding as the sentences beside the table
    return "-" if c is None else str(c)


RESULT_HEADERS = ("run", "threads", "setup s", "warm setup s", "train s", "eval s", "total s",
                  "samples/s", "steady/s", "test acc %")


def result_row(r: RunResult) -> list:
    """The row of `r` in :func:`results_table`: set-up one-off and warm, total the measured
    end-to-end time (never a sum of parts); floats unrounded: the table prints them with
    :func:`costtrain.advice.prose.number`, as sentences quoting them do."""
    return [r.label + (" (busy)" if (r.extra.get("load") or {}).get("busy") else ""),
            r.threads, float(r.setup_seconds), float(r.warm_setup_seconds),
            float(r.train_seconds), float(r.eval_seconds), float(r.total_seconds),
            round(r.samples_per_second), round(r.steady_samples_per_second),
            100 * float(r.test_accuracy)]


def results_table(results: Sequence[RunResult]) -> str:
    """One row per result: times split into set-up / train / eval, throughput, accuracy."""
    return format_table([result_row(r) for r in results], RESULT_HEADERS)


def summary(r: RunResult) -> str:
    """A few readable lines about one run."""
    c = r.config
    lines = [f"{r.label} on {c.get('dataset')} / {c.get('model')} ({r.device}, {r.threads} "
             f"thread(s) per process)",
             f"  samples trained : {r.samples:,} ({r.samples_per_second:,.0f}/s overall, "
             f"{r.steady_samples_per_second:,.0f}/s steady state)",
             f"  wall time       : {r.total_seconds:.2f} s end to end (set-up "
             f"{r.setup_seconds:.2f} s one-off, {r.warm_setup_seconds:.2f} s when re-run warm; "
             f"train {r.train_seconds:.2f} s; eval {r.eval_seconds:.2f} s)",
             f"  test accuracy   : {100 * r.test_accuracy:.2f} % (loss {r.test_loss:.4f})"]
    levers = [f"{k}={v}" for k in ("compile", "amp", "channels_last", "base_batch")
              if (v := c.get(k))]
    if levers:
        lines.insert(3, f"  levers          : {', '.join(levers)}"
                        + (f"; compiling took {r.compile_seconds:.2f} s of the set-up"
                           if c.get("compile") else ""))
    stale = r.extra.get("staleness") or {}
    if stale.get("dropped"):
        sent = sum((stale.get("histogram") or {}).values())
        lines.insert(2, f"  dropped         : {stale['dropped']:,} of {sent:,} gradients were "
                        f"staler than --max-staleness {c.get('max_staleness')} "
                        f"({stale.get('dropped_samples', 0):,} samples, not counted as trained)")
    if r.extra.get("comm"):
        lines.append(f"  communication   : {describe(r.extra['comm'])}")
    if (r.extra.get("load") or {}).get("busy"):
        lines.append(f"  machine         : busy ({r.extra['load']['note']}): these numbers are "
                     "not reliable; re-run when it is idle")
    if r.status != "ok":
        lines.append(f"  status          : {r.status}: {r.error}")
    if r.cost:
        lines.append(f"  cost            : {r.cost.get('summary', r.cost)}")
    return "\n".join(lines)


REPEAT_HEADERS = ("run", "runs", "set-up + train s median (min-max)",
                  "total s median (min-max)", "setup s median (min-max)",
                  "warm setup s median (min-max)", "train s median (min-max)",
                  "steady/s median (min-max)", "test acc % median (min-max)")


def median_range(values: Sequence[float]) -> str:
    """``12.3 (11.9-13.0)``: the median and the range of repeated values (one value: itself)."""
    s = spread(values)
    return number(s.median) if s.n < 2 else f"{number(s.median)} ({number(s.low)}-{number(s.high)})"


def repeats_table(results: Sequence[RunResult]) -> str:
    """One row per configuration: median and min-max over its repeats (``extra['repeats']``);
    set-up + train first, the one-off time the verdicts rank by (evaluation not counted)."""
    rows = []
    for r in results:
        reps = r.extra.get("repeats") or [dict(total_seconds=r.total_seconds,
                                               setup_seconds=r.setup_seconds,
                                               warm_setup_seconds=r.warm_setup_seconds,
                                               train_seconds=r.train_seconds,
                                               steady_samples_per_second=r.steady_samples_per_second,
                                               test_accuracy=r.test_accuracy)]
        rows.append([r.label, len(reps),
                     median_range([x.get("one_off_seconds", x["setup_seconds"] + x["train_seconds"])
                                   for x in reps]),
                     median_range([x["total_seconds"] for x in reps]),
                     median_range([x["setup_seconds"] for x in reps]),
                     median_range([x.get("warm_setup_seconds", x["setup_seconds"]) for x in reps]),
                     median_range([x["train_seconds"] for x in reps]),
                     median_range([x["steady_samples_per_second"] for x in reps]),
                     median_range([100 * x["test_accuracy"] for x in reps])])
    return format_table(rows, REPEAT_HEADERS)


def run_header() -> str:
    """Machine, date and package versions: what an executed notebook's first cell prints."""
    import datetime
    import importlib.metadata as md
    import os

    from ..utils import hardware_info
    hw = hardware_info()
    versions = []
    for pkg in ("costtrain", "torch", "numpy", "matplotlib", "ipywidgets"):
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            versions.append(f"{pkg} (not installed)")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    system = hw["platform"].split("-")[0]
    try:
        load = f", load average {os.getloadavg()[0]:.1f}"  # other work on the machine slows runs
    except (AttributeError, OSError):  # not on Windows
        load = ""
    return (f"ran {when} on {hw['cpu']}, {hw['cores']} core(s), {system}{load}, "
            f"Python {hw['python']}\n" + ", ".join(versions))
