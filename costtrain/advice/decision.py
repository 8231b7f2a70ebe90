"""Your job, your machine, your decision: a one-page decision card from ``costtrain advise``.

:func:`decision_card` turns an :class:`~costtrain.advice.advise.Advice` (repeated short probes
of every method on this machine, the reader's job predicted from them) into
``decision_card.md`` and ``decision_card.png``. The card's first line is the job; then the
machine (and the load during the probes); the recommendation, or a tie where the ranges
overlap, with commands that run exactly the predicted job; where each configuration takes
over as the job grows (:mod:`costtrain.advice.takeover`); the ranked table with the rule it
follows; and what would change the answer. Every sentence is chosen by the probes' numbers
and the noise rule (ranges apart or not); none is written in advance.

Words chosen by thresholds (documented here, tested with opposite numbers):

* thread scaling, the measured speed-up of one process with all threads over one thread
  against the ideal (the thread count): at least :data:`NEAR_IDEAL` of the ideal "close to
  the ideal", at least :data:`PART_OF_IDEAL` "part of the ideal", below that "little of the
  ideal"; "no faster" when the speed-up's range reaches 1, "slower" when it lies below 1;
* another method once started: "faster", "slower" or "within noise" from its steady-rate
  range against the best single process's.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..utils import hardware_info
from .cost import money
from .noise import Spread, spread
from .prose import number
from .takeover import Line, crossing, epochs_text, samples_text, statements

NEAR_IDEAL = 0.85  # thread speed-up at least this share of the ideal: "close to the ideal"
PART_OF_IDEAL = 0.5  # at least this share: "part of the ideal"; below: "little of the ideal"
CHART_FROM = 64  # the time-vs-job-size chart starts at one batch...
CHART_TIMES = 100  # ... and ends at this many times the reader's job


def _money(x: float | None) -> str:
    """Money for Markdown: ``\\$`` so that no renderer reads a pair of dollars as LaTeX."""
    return "-" if x is None else money(x).replace("$", "\\$")


def _machine(hw: dict[str, Any]) -> str:
    gpu = f", GPU {hw['gpu']}" if hw.get("gpu") else ", no GPU"
    return (f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores{gpu}; "
            f"Python {hw.get('python', '?')}, torch {hw.get('torch', '?')}")


def _same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("cpu", "cores", "gpu", "torch"))


def _seconds(row) -> str:
    if row.predicted_seconds is None:
        return "-"
    if row.predicted_range:
        lo, hi = row.predicted_range
        return f"{row.predicted_seconds:.3g} s [{lo:.3g}-{hi:.3g}]"
    return f"{row.predicted_seconds:.3g} s"


def job_line(job: dict[str, Any]) -> str:
    """The job the card predicts, as its first line says it."""
    target = job.get("target_accuracy")
    images = job.get("train_samples") or 0
    asked = job.get("asked_samples")
    text = (f"{job.get('dataset', '?')}, {job.get('epochs', '?')} epoch(s) of {images:,} "
            f"training images = {job.get('samples', 0):,} samples, batch "
            f"{job.get('batch_size', '?')}, lr {job.get('lr', '?')}, seed {job.get('seed', '?')}")
    if job.get("model"):
        text = f"{job['model']} on " + text
    if target:
        text += f", to {100 * target:.1f} % test accuracy"
    if asked and asked != job.get("samples"):
        text += (f" (you asked for {asked:,} samples: the commands run whole epochs, so the "
                 "card predicts the job they run)")
    return text


def _load(advice) -> str:
    loads = [p.extra.get("load") or {} for p in advice.probes]
    loads = [x for x in loads if "other_cores" in x]
    if not loads:
        return "not measured"
    worst = max(loads, key=lambda x: x["other_cores"])
    busy = sum(bool(x.get("busy")) for x in loads)
    return (f"other work used up to {worst['other_cores']:.2f} of {worst.get('cores', '?')} "
            f"cores during the probes" + (f"; {busy} of {len(loads)} probe(s) ran on a busy "
                                          "machine: repeat when it is idle" if busy else ""))


def lines_of(advice) -> list[Line]:
    """Each ranked configuration's time-vs-job-size line, from its probes."""
    out = []
    for row in advice.rows:
        if row.status != "ok" or not row.samples_per_second:
            continue
        runs = [p for p in advice.probes if p.label == row.label and p.status == "ok"]
        setups = [p.setup_seconds for p in runs] or [row.setup_seconds]
        rates = [p.steady_samples_per_second for p in runs
                 if p.steady_samples_per_second > 0] or [row.samples_per_second]
        out.append(Line.of(row.label, setups, rates))
    return out


def verdict(advice) -> tuple[str, str]:
    """The word for the top row and, where the probes cannot tell it from the runner-up, the
    sentence that says so and what would separate them."""
    from .predict import within_noise
    ok = [r for r in advice.rows if r.status == "ok"]
    rec = advice.recommended
    if rec is None or len(ok) < 2:
        return "Recommended", ""
    second = ok[1]
    noisy = within_noise(rec, second)
    if noisy is None:
        return ("Soonest predicted, one probe each" if rec is soonest(advice)
                else "Recommended, one probe each",
                f"One probe each names no winner: {second.label} is predicted at "
                f"{_seconds(second)}. Probe again (`costtrain advise --repeats 3`) before "
                "trusting the order.")
    if noisy:
        longer = [c for c in (crossing(_line(advice, rec.label), _line(advice, second.label),
                                       CHART_FROM, CHART_TIMES * advice.job["samples"]),)
                  if c.kind in ("takes over", "sooner below")]
        had = max(rec.probes, second.probes)
        counts = (f"{had} each" if rec.probes == second.probes
                  else f"{rec.probes} and {second.probes}")
        separate = (f"more probes than these {counts} (e.g. `--repeats {2 * had}`)" + (
            f", or a job beyond {samples_text(longer[0].high)} samples, where their bands part"
            if longer and longer[0].high < float("inf") else ""))
        return ("Tie (within noise)",
                f"{rec.label} ({_seconds(rec)}) and {second.label} ({_seconds(second)}) have "
                f"overlapping predicted ranges for this job: either is a fine choice. What "
                f"would separate them: {separate}.")
    return "Recommended", ""


def fastest_once_started(rows: Sequence) -> str:
    """Which configuration trains fastest once started (highest steady rate), said as far as
    the probes can tell: named only when its range of steady rates is above every other's;
    otherwise which ones it is within noise of (ranges overlap, or one probe each)."""
    ok = [r for r in rows if r.status == "ok"]
    if not ok:
        return ""
    top = max(ok, key=lambda r: r.samples_per_second)

    def rate(r) -> str:
        spread_ = (f", {r.rate_range[0]:,.0f}-{r.rate_range[1]:,.0f}" if r.rate_range
                   else ", one probe")
        return f"{r.label} ({r.samples_per_second:,.0f} samples/s{spread_})"

    others = [r for r in ok if r is not top]
    close = [r for r in others if top.rate_range is None or r.rate_range is None
             or r.rate_range[1] >= top.rate_range[0]]
    if not others:
        return f"Fastest once started: {rate(top)}, the only configuration measured."
    if not close:
        return f"Fastest once started: {rate(top)}, its range above every other's."
    return (f"Highest steady rate: {rate(top)}, within noise of "
            f"{', '.join(rate(r) for r in close)}: these probes cannot tell which of them "
            "trains faster once started.")


def check_landed(row, result) -> str:
    """Where one run of the whole job (`result`) landed against the prediction of `row` and,
    outside the predicted range, what differed from the probes: the steady rate or the set-up,
    each against the probes' range, and the other work the run measured on the machine."""
    took, predicted = result.one_off_seconds, row.predicted_seconds
    lo, hi = row.predicted_range or (predicted, predicted)
    where = ("inside" if lo <= took <= hi else "above" if took > hi else "below")
    text = (f"measured {number(took)} s of set-up + training against the predicted "
            f"{number(predicted)} s [{number(lo)} to {number(hi)}]: {took / predicted:.2f}x, "
            f"{where} the predicted range (one run).")
    if where == "inside":
        return text

    def against(value: float, median: float, span, unit: str, fmt: str) -> str:
        probes = (f"{span[0]:{fmt}}-{span[1]:{fmt}}" if span else f"{median:{fmt}}")
        return f"{value:{fmt}}{unit} against the probes' {probes}{unit}"

    rate = result.steady_samples_per_second or 0.0
    parts = []
    if rate and row.samples_per_second:
        trained = against(rate, row.samples_per_second, row.rate_range, " samples/s", ",.0f")
        parts.append(f"it trained at {trained} ({rate / row.samples_per_second:.2f}x their "
                     "median)")
    setup = against(result.setup_seconds, row.setup_seconds, row.setup_range, " s", ".2f")
    parts.append(f"its set-up took {setup}")
    load = result.extra.get("load") or {}
    other, cores = load.get("other_cores"), load.get("cores", "?")
    if load.get("busy"):
        then = (f" The machine was busy during the run (other work used {other:.1f} of {cores} "
                "cores): run it again when it is idle before trusting either number.")
    else:
        then = ((f" Other work used {other:.1f} of {cores} cores during the run, so the "
                 "machine's load does not explain the gap." if other is not None else "")
                + " One run: run it again; if it lands there again, read this machine's "
                f"predictions for this job as {took / predicted:.2f}x.")
    return f"{text} Against the probes: {'; '.join(parts)}.{then}"


def soonest(advice):
    """The ok row with the lowest predicted one-off time (None without one): the recommendation
    unless the accuracy filter listed it after."""
    ok = [r for r in advice.rows if r.status == "ok"]
    return min(ok, key=lambda r: r.predicted_seconds) if ok else None


def why_not_soonest(advice) -> str:
    """Where the recommendation is not the soonest prediction: which one is, and why it was
    listed after; else ''."""
    first, rec = soonest(advice), advice.recommended
    if rec is None or first is None or first is rec:
        return ""
    return (f"**Why not the soonest:** {first.label} is predicted sooner ({_seconds(first)}, "
            f"{first.predicted_seconds / rec.predicted_seconds:.2f}x), but "
            f"{first.listed_after or 'it ranks after for its mark in the table'}.")


def _line(advice, label: str) -> Line:
    return next(ln for ln in lines_of(advice) if ln.label == label)


# ------------------------------------------------------------------ what would change it
def _best_single(advice):
    """The best single-process CPU row (the contender every other method must beat)."""
    from .. import methods
    return next((r for r in advice.rows if r.status == "ok"
                 and methods.get(r.method).in_process and "cuda" not in r.label), None)


def _rates(advice, label: str) -> Spread | None:
    rates = [p.steady_samples_per_second for p in advice.probes
             if p.label == label and p.status == "ok" and p.steady_samples_per_second > 0]
    return spread(rates) if rates else None


def _once_started(other: Spread, ref: Spread) -> str:
    """'faster', 'slower' or 'within noise' once started, from the two rate ranges (one probe
    a side cannot tell)."""
    if other.n < 2 or ref.n < 2:
        return ("faster (one probe each: not beyond noise) than" if other.median > ref.median
                else "slower (one probe each: not beyond noise) than")
    if other.overlaps(ref):
        return "within noise of"
    return "faster than" if other.median > ref.median else "slower than"


def thread_line(advice) -> str | None:
    """More threads in one process: the measured speed-up against the ideal."""
    from .. import methods
    singles = [r for r in advice.rows if r.status == "ok" and methods.get(r.method).in_process
               and "cuda" not in r.label and r.job.get("threads")]
    if len(singles) < 2:
        return None
    one = min(singles, key=lambda r: r.job["threads"])
    many = max(singles, key=lambda r: r.job["threads"])
    a, b = _rates(advice, many.label), _rates(advice, one.label)
    if a is None or b is None or many.job["threads"] == one.job["threads"]:
        return None
    ideal = many.job["threads"] / one.job["threads"]
    ratio, low, high = a.median / b.median, a.low / b.high, a.high / b.low
    share = ratio / ideal
    word = ("close to the ideal" if share >= NEAR_IDEAL else "part of the ideal"
            if share >= PART_OF_IDEAL else "little of the ideal")
    if a.n < 2 or b.n < 2:
        word = f"{word} by this one probe each, which cannot tell beyond noise"
    elif high < 1.0:
        word = "slower than one thread, beyond noise"
    elif low <= 1.0:
        word = "no faster beyond noise: its range reaches 1x"
    elif crossed := [t for t in (NEAR_IDEAL, PART_OF_IDEAL) if low / ideal < t <= high / ideal]:
        word = (f"{word} by the median, but its range ({100 * low / ideal:.0f}-"
                f"{100 * high / ideal:.0f} % of the ideal) straddles the {100 * crossed[0]:.0f} % "
                "threshold: within noise of it")
    return (f"**More threads.** One process with {many.job['threads']} threads trained "
            f"{ratio:.2f}x [{low:.2f}-{high:.2f}] the samples/s of {one.job['threads']} thread "
            f"(ideal {ideal:g}x): {word} ({100 * share:.0f} % of it; thresholds "
            f"{100 * NEAR_IDEAL:.0f} % and {100 * PART_OF_IDEAL:.0f} %).")


def method_lines(advice) -> list[str]:
    """For each multi-process method probed: faster, slower or within noise once started
    than the best single process, and where it takes over."""
    from .. import methods
    ref = _best_single(advice)
    if ref is None:
        return []
    ref_rates = _rates(advice, ref.label)
    lines = {ln.label: ln for ln in lines_of(advice)}
    hi = CHART_TIMES * advice.job["samples"]
    out = []
    seen: set[str] = set()
    for row in advice.rows:
        m = methods.get(row.method)
        if row.status != "ok" or m.in_process or m.name in seen or "predicted" in row.label:
            continue
        seen.add(m.name)  # the best-ranked configuration of each method
        rates = _rates(advice, row.label)
        if rates is None or ref_rates is None:
            continue
        how = _once_started(rates, ref_rates)
        title = m.title[0].upper() + m.title[1:]
        text = (f"**{title}{'' if title[-1] in '.!?' else '.'}** {row.label} trained {how} "
                f"{ref.label} once started ({rates.median:,.0f} [{rates.low:,.0f}-"
                f"{rates.high:,.0f}] against {ref_rates.median:,.0f} [{ref_rates.low:,.0f}-"
                f"{ref_rates.high:,.0f}] samples/s) after {row.setup_seconds:.1f} s of set-up "
                f"against {ref.setup_seconds:.1f} s")
        c = crossing(lines[ref.label], lines[row.label], CHART_FROM, hi)
        if c.kind == "takes over" and c.high <= hi:
            text += (f": it takes over after {samples_text(c.at)} samples "
                     f"({epochs_text(c.at, advice.job.get('train_samples') or 1)}; range "
                     f"{samples_text(c.low)} to {samples_text(c.high)}).")
        elif c.kind == "takes over":  # the median lines cross, the bands never part
            text += (f": by the medians it takes over after {samples_text(c.at)} samples, but "
                     f"the bands stay within noise from {samples_text(c.low)} samples to "
                     f"{samples_text(hi)}: the probes cannot tell whether a longer job makes it "
                     "pay.")
        elif how == "faster than":
            text += ": it would take over beyond the charted range (100x this job)."
        elif how == "slower than":
            text += ": a longer job does not make it pay on this machine."
        else:
            text += ": the probes cannot tell whether a longer job would make it pay."
        out.append(text)
    return out


def sparse_line(findings: dict[str, Any] | None, hardware: dict[str, Any]) -> str:
    """What notebook 03b measured on this machine for a sparse model, or that it did not."""
    sparse = (findings or {}).get("03b_sparse_hogwild", {}).get("sparse_speedup")
    if not sparse or not _same_machine(sparse.get("hardware", {}), hardware):
        return ("**A sparse model.** Not measured on this machine: notebook 03b measures how "
                "Hogwild! scales when each step touches few weights.")
    spread_ = (f" [{sparse['low']:.2f}-{sparse['high']:.2f}, {sparse['runs']} runs]"
               if sparse.get("runs", 1) > 1 else " (one run)")
    return (f"**A sparse model.** Notebook 03b measured Hogwild! with {sparse['processes']} "
            f"processes at {sparse['ratio']:.2f}x{spread_} the steady samples/s of one process on "
            f"a sparse model on this machine ({sparse['verdict']}), against this card's dense "
            "net above.")


def gpu_line(advice) -> str:
    """Only what was measured: the GPU probe against the best CPU configuration."""
    gpu = [r for r in advice.rows if r.status == "ok" and "cuda" in r.label]
    cpu = _best_single(advice)
    if gpu and cpu:
        g = max(gpu, key=lambda r: r.samples_per_second)
        return (f"**A GPU.** {g.label} trained {g.samples_per_second / cpu.samples_per_second:.2f}x "
                f"the steady samples/s of {cpu.label}, measured here.")
    if advice.hardware.get("gpu"):
        return "**A GPU.** There is one, but no GPU probe ran: nothing measured."
    return "**A GPU.** None here: nothing measured."


def levers_line(advice) -> str | None:
    """The levers on the single-process contender: carried from notebook 01b, or tuned."""
    carried = advice.job.get("levers") or {}
    why = advice.job.get("levers_why")
    if carried:
        names = ", ".join(k for k, v in carried.items() if v)
        return (f"**Levers.** The single-process rows run with {names}: "
                f"{why or 'you passed them'}.")
    if why:
        return f"**Levers.** None on the single-process rows: {why}."
    return None


def what_would_change(advice, findings: dict[str, Any] | None = None) -> list[str]:
    """Each line computed from the advice's own probes (or the course's findings on this
    machine), its words chosen by the thresholds and the noise rule."""
    out = [x for x in (thread_line(advice), levers_line(advice)) if x]
    out += method_lines(advice)
    out.append(sparse_line(findings, advice.hardware))
    out.append(gpu_line(advice))
    return out


# ------------------------------------------------------------------ the card
def card_markdown(advice, findings: dict[str, Any] | None = None) -> str:
    """The decision card as Markdown (no ``$`` pair a renderer could take for LaTeX)."""
    lines = ["# Your job, your machine, your decision", "",
             f"**Job:** {job_line(advice.job)}.", "",
             f"**Machine:** {_machine(advice.hardware)}; load: {_load(advice)}.", ""]
    here = hardware_info()
    if not _same_machine(advice.hardware, here):
        lines += [f"**Read on another machine:** this card was measured on the machine above; "
                  f"you are reading it on {_machine(here)}. Its numbers are that machine's: "
                  "run `costtrain advise` here for yours.", ""]
    rec = advice.recommended
    ok = [r for r in advice.rows if r.status == "ok"]
    if rec is None:
        lines += ["**No recommendation:** no configuration could be probed within the budget of "
                  f"{advice.budget_seconds:.0f} s. Raise the budget and run again.", ""]
    else:
        word, sure = verdict(advice)
        lines += [f"**{word}:** {rec.label}, predicted {_seconds(rec)} one-off (set-up + "
                  "training; evaluation not included), "
                  f"{_money(rec.predicted_cost)} ({advice.basis.describe().replace('$', chr(92) + '$')}).",
                  "", f"    {rec.command()}", ""]
        if sure:
            lines += [sure, ""]
        if why_not_soonest(advice):
            lines += [why_not_soonest(advice), ""]
        if len(ok) > 1:
            second = ok[1]
            lines += [f"**Runner-up:** {second.label}, {_seconds(second)} "
                      f"({second.predicted_seconds / rec.predicted_seconds:.2f}x):", "",
                      f"    {second.command()}", ""]
        lines += [f"**Why:** {advice.justification.replace('$', chr(92) + '$')}", ""]
        if len(ok) > 1:
            lo, hi = CHART_FROM, CHART_TIMES * advice.job["samples"]
            lines += ["## Where each configuration takes over", "",
                      f"Predicted one-off time = set-up + samples / steady rate, for jobs from "
                      f"{lo} to {samples_text(hi)} samples ({CHART_TIMES}x this job); the "
                      "ranges are the probes' fastest and slowest lines.", ""]
            lines += [f"- {s}" for s in statements(lines_of(advice), rec.label,
                                                   advice.job.get("train_samples") or 1, lo, hi)]
            lines += [""]
    lines += ["## The ranking", "",
              "Ranked by the predicted one-off time of this job (the median of each "
              "configuration's probes, [min-max]). Accuracy only as a filter on what the probes "
              "measured at equal samples: a configuration that learned more than 1 point less, "
              "beyond its noise, is listed after and marked.", "",
              "| rank | configuration | predicted set-up + training | set-up s | steady samples/s "
              "| probe acc % (measured) | cost | mark |", "|---|---|---|---|---|---|---|---|"]
    for r in advice.rows:
        rate = (f"{r.samples_per_second:,.0f}" + (f" [{r.rate_range[0]:,.0f}-{r.rate_range[1]:,.0f}]"
                                                  if r.rate_range else ""))
        acc = ("-" if r.probe_accuracy is None else f"{100 * r.probe_accuracy:.1f}"
               + (f" [{100 * r.accuracy_range[0]:.1f}-{100 * r.accuracy_range[1]:.1f}]"
                  if r.accuracy_range else "") + f" at {r.accuracy_samples:,}")
        mark = r.listed_after or (r.why if r.status != "ok" else "")
        lines.append(f"| {r.rank if r.status == 'ok' else r.status} | {r.label} | {_seconds(r)} "
                     f"| {r.setup_seconds:.2f} | {rate} | {acc} | {_money(r.predicted_cost)} "
                     f"| {mark} |")
    lines += ["", "## What would change the answer", ""]
    lines += [f"- {t}" for t in what_would_change(advice, findings)]
    n = len(advice.probes)
    lines += ["", f"*Predicted from {n} short probe(s) measured on this machine in "
              f"{advice.elapsed_seconds:.0f} s (budget {advice.budget_seconds:.0f} s). Set-up and "
              "throughput are measured; the job's time is set-up + samples / throughput.*"]
    if advice.notes:
        lines += [""] + [f"- note: {n.replace('$', chr(92) + '$')}" for n in advice.notes]
    return "\n".join(lines) + "\n"


WIDTH = 110  # characters per line of the PNG card's text (monospace, fits its 9.5-inch width)


def command_lines(command: str, width: int = WIDTH) -> list[str]:
    """`command` as shell lines of at most `width` characters, indented, continued with a backslash
    and never splitting an option from its value, so a reader can type or paste it whole."""
    import re
    words = re.findall(r"--\S+(?: (?!--)\S+)?|\S+", command)
    lines, line = [], "  "
    for w in words:
        if len(line) + len(w) + 3 > width and line.strip():
            lines.append(line + " \\")
            line = "    "
        line += ("" if line.isspace() else " ") + w
    return lines + [line]


def card_figure(advice, path: str | Path, findings: dict[str, Any] | None = None) -> Path:
    """The card as one PNG: the job, the machine, the recommendation and its command, and the
    predicted time against job size (log axes, a band per configuration, the job marked)."""
    import re
    import textwrap

    from matplotlib.figure import Figure
    rec = advice.recommended
    text = textwrap.wrap(f"Job: {job_line(advice.job)}", WIDTH)
    text += textwrap.wrap(f"Machine: {_machine(advice.hardware)}", WIDTH)
    if rec is not None:
        word, sure = verdict(advice)
        text += textwrap.wrap(f"{word}: {rec.label}, predicted {_seconds(rec)} (set-up + "
                              f"training), {'-' if rec.predicted_cost is None else money(rec.predicted_cost)}",
                              WIDTH)
        text += command_lines(rec.command())
        text += textwrap.wrap(re.sub(r"`", "", sure), WIDTH)
    else:
        text += ["No configuration could be probed within the budget: raise it and run again."]
    lines = lines_of(advice)
    fig = Figure(figsize=(9.5, 1.2 + 0.16 * len(text) + (4.2 if lines else 0.3)),
                 layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[0.5 + 0.16 * len(text), 4.2 if lines else 0.3])
    top.axis("off")
    top.text(0, 1, "Your job, your machine, your decision", fontsize=13, fontweight="bold",
             va="top", transform=top.transAxes, usetex=False)
    top.text(0, 0.82, "\n".join(text), fontsize=7.5, va="top", family="monospace",
             transform=top.transAxes, parse_math=False)
    if lines:
        _chart(bottom, lines, advice.job["samples"], rec.label if rec else None)
    else:
        bottom.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _chart(ax, lines: Sequence[Line], job: float, winner: str | None) -> None:
    """Predicted seconds against job size, one band per configuration, the job marked."""
    hi = CHART_TIMES * job
    grid = [CHART_FROM * (hi / CHART_FROM) ** (i / 199) for i in range(200)]
    for ln in lines:
        bands = [ln.band(n) for n in grid]
        mid = [ln.seconds(n) for n in grid]
        (p,) = ax.plot(grid, mid, lw=2.2 if ln.label == winner else 1.2, label=ln.label)
        ax.fill_between(grid, [b[0] for b in bands], [b[1] for b in bands], alpha=0.18,
                        color=p.get_color(), lw=0)
    ax.axvline(job, color="k", ls="--", lw=1)
    ax.text(job, 0.02, " your job", rotation=90, va="bottom", fontsize=8,
            transform=ax.get_xaxis_transform(), parse_math=False)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("job size (samples), one batch to 100x your job")
    ax.set_ylabel("predicted one-off seconds (set-up + training)")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.2)


def load_findings(path: str | Path) -> dict[str, Any]:
    """The course's findings on this machine (``out/findings.json``), {} when none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def decision_card(advice, out_dir: str | Path, name: str = "decision_card",
                  findings: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``NAME.md`` and ``NAME.png`` into `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{name}.md"
    md.write_text(card_markdown(advice, findings), encoding="utf-8")
    return md, card_figure(advice, out / f"{name}.png", findings)
