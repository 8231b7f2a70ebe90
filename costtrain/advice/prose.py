"""Sentences built from runs: the tables' own rounding, Markdown that renders as written, and
comparisons that say how sure they are.

Notebooks and reports quote measured numbers in sentences next to tables. Three rules keep the
two in step and the sentences honest:

* a number in a sentence is formatted by :func:`number` (or :func:`pct`, :func:`secs`), the
  function the tables use, so "63.8 %" under a table showing 63.8, never 63.7;
* Markdown built from text goes through :func:`md`, which escapes ``$`` outside code
  (JupyterLab reads ``$0.2/kWh ... $0.0000030`` as LaTeX);
* a comparison of configurations that ran once each says "one run each" and names no winner
  (:func:`one_run_sentence`); with repeats, :func:`ranking_sentence` names the leader only when
  its range does not overlap the runner-up's (:mod:`costtrain.advice.noise`).
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from ..measure import busy_note
from .noise import first_verdict, spread

ONE_RUN_NOTE = "One run each names no winner: repeat the runs before trusting a difference"
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def md(text: str) -> str:
    """`text` safe to show as Markdown in Jupyter: each ``$`` outside code written ``\\\\$``
    (an escaped backslash, then the dollar), so that the rendered text holds ``\\$``, which
    MathJax shows as a dollar sign and never pairs as math; a single ``\\$`` is not enough in
    JupyterLab (its Markdown renderer drops the backslash before MathJax reads the page).
    Text already escaped either way comes out the same."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else re.sub(r"(?:\\\\|\\)?\$", r"\\\\$", p)
                   for i, p in enumerate(parts))


def number(x: float) -> str:
    """A measured value as every table prints it: 3 significant digits below 10, one decimal
    below 1,000, else a whole number with thousands separators."""
    x = float(x)
    if x != x:  # nan
        return "-"
    if abs(x) < 10:
        return f"{x:.3g}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.1f}"


def pct(fraction: float) -> str:
    """A fraction (accuracy, share) as the tables print it in percent: ``63.8 %``."""
    return f"{number(100 * fraction)} %"


def span(values: Sequence[float], fmt=pct) -> str:
    """The range of `values` as the tables print them: ``43.1 % to 43.8 %``, or ``43.8 % in
    each`` when they all print the same."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return f"{lo} in each" if lo == hi else f"{lo} to {hi}"


def secs(seconds: float) -> str:
    """Seconds as the tables print them: ``4.07 s``, ``12.3 s``."""
    return f"{number(seconds)} s"


def rate(samples_per_second: float) -> str:
    """A throughput: ``5,519 samples/s``."""
    return f"{samples_per_second:,.0f} samples/s"


def values(result: Any, field: str) -> list[Any]:
    """`field` of every repeat of `result` (``extra['repeats']``, when each records it), else
    of the one run: an attribute, or a key of ``result.cost``."""
    reps = (getattr(result, "extra", None) or {}).get("repeats") or []
    if reps and all(isinstance(x, Mapping) and field in x for x in reps):
        return [x[field] for x in reps]
    if hasattr(result, field):
        return [getattr(result, field)]
    return [(getattr(result, "cost", None) or {}).get(field)]


def listing(values_by_label: Mapping[str, float], fmt=secs) -> str:
    """``a 2.82 s, b 3.44 s`` in the given order."""
    return ", ".join(f"{label} {fmt(v)}" for label, v in values_by_label.items())


def one_run_sentence(what: str, values_by_label: Mapping[str, float], fmt=secs,
                     detail: str = "", note: bool = True) -> str:
    """What configurations that ran once each measured, without a winner: one run decides
    nothing on a shared machine (the same configuration can vary by more than the gaps).
    `detail` (e.g. ratios) follows the values; `note=False` leaves out the closing warning
    (when a sentence before said it)."""
    if not values_by_label:
        raise ValueError("one_run_sentence() needs at least one configuration")
    more = f"; {detail}" if detail else ""
    if len(values_by_label) == 1:
        (label, v), = values_by_label.items()
        return f"{what}: {label} {fmt(v)} (one run){more}"
    return (f"{what}, one run each: {listing(values_by_label, fmt)}{more}"
            + (f". {ONE_RUN_NOTE}" if note else ""))


def machine_note(results: Sequence[Any]) -> str:
    """"The machine was busy during ...: these numbers are not reliable" (Markdown, bold lead),
    or "" when no run's load record says busy (:class:`costtrain.measure.LoadWatch`)."""
    note = busy_note(list(results))
    return f"**The machine was busy:** {note[len('the machine was busy '):]}." if note else ""


def ranking_sentence(what: str, values_by_label: Mapping[str, Sequence[float]], fmt=secs,
                     higher_is_better: bool = False, busy: str | None = None,
                     one_seed: bool = False) -> str:
    """Which configuration leads on `what` (medians of repeats), and whether the runner-up is
    within noise; falls back to :func:`one_run_sentence` when any configuration ran once, and
    names no leader when `busy` (a :func:`costtrain.measure.busy_note`) says the machine was,
    or when `one_seed` says every repeat trained with the same seed (an accuracy: the ranges
    then measure no seed noise, however far apart)."""
    if busy:
        medians = {k: spread(v).median for k, v in values_by_label.items()}
        return f"{what}: {listing(medians, fmt)}; no verdict: {busy}"
    if one_seed:
        medians = {k: spread(v).median for k, v in values_by_label.items()}
        return (f"{what} (medians): {listing(medians, fmt)}; no winner named: every repeat "
                "trained with the same seed and data order, so the ranges do not measure how far "
                "another seed would move them")
    if not values_by_label_repeated(values_by_label) or len(values_by_label) < 2:
        return one_run_sentence(what, {k: spread(v).median for k, v in values_by_label.items()}, fmt)
    s = {k: spread(v) for k, v in values_by_label.items()}
    order = sorted(s, key=lambda k: s[k].median, reverse=higher_is_better)
    first, second = order[0], order[1]

    def text(k: str) -> str:
        return f"{k} {fmt(s[k].median)} ({fmt(s[k].low)} to {fmt(s[k].high)}, {s[k].n} runs)"
    lead = "highest" if higher_is_better else "lowest"
    if s[first].overlaps(s[second]):
        return (f"{what} (medians): {text(first)} and {text(second)} are within noise, the ranges "
                "overlap, so neither is named the winner")
    return f"{what} (medians): {lead} {text(first)}, ahead of {text(second)}, beyond its range"


def ratio_sentence(a: str, a_value: float, b: str, b_value: float, what: str, fmt=secs) -> str:
    """``a 3.92 s and b 3.86 s, a ratio of 1.02 (one run each)``: a ratio without a verdict."""
    r = a_value / b_value if b_value else float("inf")
    return f"{what}: {a} {fmt(a_value)} and {b} {fmt(b_value)}, a ratio of {r:.2f} (one run each)"


def same_configuration(results: Sequence[Any], keys: Sequence[str] = (
        "dataset", "model", "epochs", "batch_size", "lr", "momentum", "pipeline", "processes",
        "train_samples")) -> list[list[Any]]:
    """Groups (2 or more) of `results` that ran the same configuration: method, threads and
    the config `keys` equal."""
    groups: dict[tuple, list[Any]] = {}
    for r in results:
        key = (r.method, r.threads, *(repr(r.config.get(k)) for k in keys))
        groups.setdefault(key, []).append(r)
    return [g for g in groups.values() if len(g) > 1]


def noise_sentence(results: Sequence[Any], field: str = "steady_samples_per_second",
                   fmt=rate) -> str | None:
    """How much one configuration that ran several times varied (the widest group), or None:
    the yardstick for any comparison of configurations that ran once each."""
    groups = same_configuration(results)
    if not groups:
        return None
    g = max(groups, key=lambda grp: spread([getattr(r, field) for r in grp]).high
            / max(spread([getattr(r, field) for r in grp]).low, 1e-12))
    s = spread([getattr(r, field) for r in g])
    return (f"one configuration ({g[0].method}, {g[0].threads} thread(s), the same settings) ran "
            f"{s.n} times here: "
            f"{fmt(s.low)} to {fmt(s.high)} ({s.high / max(s.low, 1e-12):.2f}x apart), so a gap between "
            "configurations that ran once each is a verdict only when it is well beyond that")


def target_sentence(seconds_by_label: Mapping[str, Sequence[float | None]], goal: str,
                    note: bool = True, busy: str | None = None) -> str:
    """Seconds to reach `goal` per configuration (None: not reached): a noise-aware verdict
    (:func:`costtrain.advice.noise.first_verdict`) when every configuration ran at least twice and
    the machine was not `busy`, else the values without a winner."""
    if values_by_label_repeated(seconds_by_label) and not busy:
        return first_verdict(dict(seconds_by_label), goal)
    reached = {k: v[0] for k, v in seconds_by_label.items() if v and v[0] is not None}
    missed = [k for k in seconds_by_label if k not in reached]
    if not reached:
        return f"no configuration reached {goal}"
    if busy:
        reached = {k: spread([x for x in seconds_by_label[k] if x is not None]).median
                   for k in reached}
        text = f"Seconds to {goal}: {listing(reached, secs)}; no verdict: {busy}"
    else:
        text = one_run_sentence(f"Seconds to {goal}", reached, note=note)
    return text + (f" ({', '.join(missed)} did not reach it)" if missed else "")


def values_by_label_repeated(values_by_label: Mapping[str, Sequence[Any]]) -> bool:
    """Whether every configuration has at least two values (repeats)."""
    return bool(values_by_label) and all(len(v) >= 2 for v in values_by_label.values())
