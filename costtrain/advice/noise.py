"""Repeated timings: the order to run them in, their median and range, and honest verdicts.

One timing decides nothing on a shared or busy machine (the same job can run 3-4x slower one
day than the day before). Repeat each configuration, run the repeats in turn (ABAB, not AABB,
so that a slow spell hits every configuration alike), quote the median with its min-max range,
and call a difference "within noise" when the ranges overlap.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements of one quantity."""

    median: float
    low: float
    high: float
    n: int

    def overlaps(self, other: Spread) -> bool:
        """Whether the two ranges share any value (the difference is within noise)."""
        return self.low <= other.high and other.low <= self.high

    def text(self, digits: int = 3) -> str:
        """``12.3 (11.9-13.0, 3 runs)``, or the single value for one run."""
        if self.n < 2:
            return f"{self.median:.{digits}g}"
        return f"{self.median:.{digits}g} ({self.low:.{digits}g}-{self.high:.{digits}g}, {self.n} runs)"


def spread(values: Sequence[float]) -> Spread:
    """Median, min and max of `values` (at least one)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("spread() needs at least one value")
    return Spread(statistics.median(vals), min(vals), max(vals), len(vals))


def alternate(configs: Sequence[T], repeats: int) -> list[tuple[int, T]]:
    """(repeat, config) in the order to run them: every config once, then again (ABAB)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    return [(rep, c) for rep in range(repeats) for c in configs]


def median_index(values: Sequence[float]) -> int:
    """Index of the value at the median (the lower middle one for an even count)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    return order[(len(order) - 1) // 2]


def speedup_verdict(fast: str, fast_seconds: Sequence[float], slow: str,
                    slow_seconds: Sequence[float], what: str = "end to end") -> str:
    """'A is 1.23x faster than B end to end (medians ...)' ('slower' when it is not), with
    'within noise' when the ranges overlap."""
    a, b = spread(fast_seconds), spread(slow_seconds)
    ratio = b.median / a.median if a.median > 0 else float("inf")
    how = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
    text = f"{fast} is {how} than {slow} {what} (median {a.text()} s vs {b.text()} s)"
    return text + (": within noise, the ranges overlap" if a.overlaps(b) else "")


def first_verdict(seconds_by_label: dict[str, Sequence[float | None]],
                  goal: str = "the target") -> str:
    """Which configuration reaches `goal` first (median seconds; None = never reached), and
    whether the runner-up is within noise."""
    reached = {k: [s for s in v if s is not None] for k, v in seconds_by_label.items()}
    reached = {k: v for k, v in reached.items() if v}
    if not reached:
        return f"no configuration reached {goal}"
    ranked = sorted(reached, key=lambda k: spread(reached[k]).median)
    best = spread(reached[ranked[0]])
    missed = {k: len(seconds_by_label[k]) - len(reached.get(k, [])) for k in seconds_by_label}
    text = f"{ranked[0]} reaches {goal} first, in {_seconds(best, missed[ranked[0]])}"
    close = [k for k in ranked[1:] if best.overlaps(spread(reached[k]))]
    if close:  # every one whose range overlaps the first's, not only the runner-up
        text += ", within noise of " + " and ".join(
            f"{k}, in {_seconds(spread(reached[k]), missed[k])}" for k in close
        ) + ": the ranges overlap"
    elif len(ranked) > 1:
        text += f", then {ranked[1]}, in {_seconds(spread(reached[ranked[1]]), missed[ranked[1]])}"
    return text


def _seconds(s: Spread, missed: int = 0) -> str:
    """``0.445 s (median; 0.347-0.447 s over 3 runs)``, or ``0.445 s (one run)``."""
    miss = f"; it missed the goal in {missed} run(s)" if missed else ""
    if s.n < 2:
        return f"{s.median:.3g} s (one run{miss})"
    return f"{s.median:.3g} s (median; {s.low:.3g}-{s.high:.3g} s over {s.n} runs{miss})"

