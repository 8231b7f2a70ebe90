"""Where each configuration takes over: predicted time against job size, and the crossovers.

A configuration's one-off time for a job of ``n`` samples is a straight line,
``T(n) = set-up + n / steady rate`` (:mod:`costtrain.measure` defines both figures). Repeated
probes give each a *band*: the fastest probe's line below, the slowest's above,
``[set-up low + n / rate high, set-up high + n / rate low]``. Two configurations:

* the one with the higher steady rate takes over from the other at the job size where their
  median lines cross, ``n* = (set-up b - set-up a) / (1 / rate a - 1 / rate b)``; the range of
  ``n*`` comes from the band edges (the earliest and the latest crossing the probes allow);
* it **never** takes over when its steady rate is lower beyond noise (every probe of it slower
  than every probe of the other) and it starts no sooner;
* where the two bands overlap the probes **cannot tell** them apart at that job size
  (*within noise*); when the steady-rate ranges overlap, that holds for every long job.

Pure arithmetic on numbers (no torch): it is tested on planted lines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from .noise import Spread, spread

NEVER = math.inf  # the job size at which a line that never takes over would


@dataclass(frozen=True)
class Line:
    """One configuration's predicted one-off time against job size, from repeated probes."""

    label: str
    setup: Spread  # seconds, one-off (worker start-up included)
    rate: Spread  # steady samples per second

    @classmethod
    def of(cls, label: str, setups: Sequence[float], rates: Sequence[float]) -> Line:
        return cls(label, spread(setups), spread(rates))

    def seconds(self, n: float) -> float:
        """The median prediction for a job of `n` samples."""
        return self.setup.median + n / self.rate.median

    def band(self, n: float) -> tuple[float, float]:
        """(fastest, slowest) prediction the probes allow for `n` samples."""
        return self.setup.low + n / self.rate.high, self.setup.high + n / self.rate.low


def _cross(setup_a: float, rate_a: float, setup_b: float, rate_b: float) -> float | None:
    """Job size where ``setup_a + n / rate_a == setup_b + n / rate_b`` (n > 0), else None."""
    slope = 1 / rate_a - 1 / rate_b  # how much faster b's line climbs... or slower
    if slope == 0:
        return None
    n = (setup_b - setup_a) / slope
    return n if n > 0 else None


@dataclass(frozen=True)
class Crossing:
    """How `challenger` compares with `incumbent` over job sizes `lo` to `hi` samples.

    ``kind``:

    * ``takes over``: its median line drops below the incumbent's at ``at`` samples (it starts
      later and runs faster); ``low``-``high`` is where the bands allow the crossing (``high``
      inf: still within noise at the end of the range);
    * ``sooner below``: it is soonest for jobs under ``at`` samples only (it starts sooner and
      runs slower), with the same range;
    * ``never``: its median line stays above the incumbent's over the whole range, and the
      bands are apart at its end (the longest jobs, where the steady rates decide);
    * ``within noise``: the medians do not cross in the range, and the bands overlap at its
      end: the probes cannot tell; ``low`` is the smallest job from which they overlap (``lo``:
      over the whole range);
    * ``ahead``: it is sooner over the whole range, apart at its end (listed after for
      another reason).
    """

    incumbent: str
    challenger: str
    kind: str
    at: float | None = None
    low: float | None = None
    high: float | None = None


def _apart(a: Line, b: Line, n: float) -> bool:
    """Whether the two bands are apart at `n` samples."""
    a_lo, a_hi = a.band(n)
    b_lo, b_hi = b.band(n)
    return b_hi < a_lo or a_hi < b_lo


def _grid(lo: float, hi: float, points: int = 200) -> list[float]:
    return [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]


def crossing(incumbent: Line, challenger: Line, lo: float, hi: float) -> Crossing:
    """Where `challenger` overtakes `incumbent` (or why it never does) for jobs of `lo` to `hi`
    samples, by the median lines, with the bands' noise rule (see :class:`Crossing`)."""
    a, b = incumbent, challenger
    at = _cross(a.setup.median, a.rate.median, b.setup.median, b.rate.median)
    grid = _grid(lo, hi)
    if at is None or not lo < at < hi:  # the medians do not cross in the range
        if not _apart(a, b, hi):  # the longest jobs decide "never"/"ahead": here, no verdict
            tied = [n for n in grid if not _apart(a, b, n)]
            return Crossing(a.label, b.label, "within noise", at, tied[0])
        if b.seconds(hi) < a.seconds(hi):
            return Crossing(a.label, b.label, "ahead")
        return Crossing(a.label, b.label, "never", at)
    # the band edges: where the best of one meets the worst of the other (None: never)
    x = _cross(a.setup.high, a.rate.low, b.setup.low, b.rate.high)
    y = _cross(a.setup.low, a.rate.high, b.setup.high, b.rate.low)
    if b.rate.median > a.rate.median:  # starts later, runs faster
        return Crossing(a.label, b.label, "takes over", at, x or 0.0, y or NEVER)
    return Crossing(a.label, b.label, "sooner below", at, y or 0.0, x or NEVER)


@dataclass(frozen=True)
class Segment:
    """A range of job sizes over which one configuration is predicted soonest."""

    start: float  # samples
    end: float
    label: str
    tied_with: tuple[str, ...]  # configurations whose band overlaps the winner's there


def segments(lines: Sequence[Line], lo: float, hi: float, points: int = 400) -> list[Segment]:
    """The soonest configuration (median lines) from `lo` to `hi` samples, in segments, each
    with the configurations whose bands overlap the winner's band somewhere in it."""
    if not lines:
        return []
    grid = [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]
    out: list[Segment] = []
    for n in grid:
        best = min(lines, key=lambda ln: ln.seconds(n))
        b_lo, b_hi = best.band(n)
        tied = tuple(sorted(ln.label for ln in lines if ln is not best
                            and ln.band(n)[0] <= b_hi and b_lo <= ln.band(n)[1]))
        if out and out[-1].label == best.label:
            prev = out[-1]
            out[-1] = Segment(prev.start, n, prev.label, tuple(sorted(set(prev.tied_with) | set(tied))))
        else:
            out.append(Segment(n, n, best.label, tied))
    return out


def epochs_text(n: float, epoch_samples: int) -> str:
    """``about 5 epochs`` of `epoch_samples` for a job of `n` samples."""
    e = n / epoch_samples
    if e < 0.95:
        return f"{e:.2g} of an epoch"
    if e >= 100:  # "about 180 epochs", not "1.8e+02"
        return f"about {float(f'{e:.2g}'):,.0f} epochs"
    return f"about {e:.2g} epoch{'s' if round(e, 1) != 1 else ''}"


def samples_text(n: float) -> str:
    """A job size as people say it: ``310,000``, ``1.5 million``."""
    if math.isinf(n):
        return "never"
    if n >= 1e6:
        return f"{n / 1e6:.3g} million"
    return f"{round(n, -3 if n >= 10_000 else 0):,.0f}"


def _s(seconds: float) -> str:
    """A set-up in seconds, with the digits that tell 0.06 s from 0.09 s."""
    return f"{seconds:.2f}" if 0 < seconds < 1 else f"{seconds:.1f}"


def statements(lines: Sequence[Line], winner: str, epoch_samples: int, lo: float,
               hi: float) -> list[str]:
    """One sentence per other configuration: where it takes over from `winner` (the one
    soonest for the reader's job), or why it does not, for jobs of `lo` to `hi` samples; every
    word chosen by the numbers and the bands' noise rule (:func:`crossing`)."""
    by = {ln.label: ln for ln in lines}
    w = by[winner]
    out = []
    for ln in lines:
        if ln.label == winner:
            continue
        c = crossing(w, ln, lo, hi)
        once = " (one probe each: a guide, not a verdict)" if min(w.rate.n, ln.rate.n) < 2 else ""
        rates = (f"steady {ln.rate.median:,.0f} [{ln.rate.low:,.0f}-{ln.rate.high:,.0f}] "
                 f"against {w.rate.median:,.0f} [{w.rate.low:,.0f}-{w.rate.high:,.0f}] "
                 f"samples/s, set-up {_s(ln.setup.median)} s against {_s(w.setup.median)} s"
                 f"{once}")
        if c.kind in ("takes over", "sooner below"):
            where = samples_text(c.at)
            rng = (f"range {samples_text(c.low)} to "
                   + (f"beyond {samples_text(hi)}: within noise up to there" if c.high > hi
                      else samples_text(c.high)))
            if c.kind == "takes over":
                out.append(f"{ln.label} takes over after {where} samples "
                           f"({epochs_text(c.at, epoch_samples)}; {rng}): {rates}.")
            else:
                out.append(f"{ln.label} is sooner only for jobs under {where} samples "
                           f"({epochs_text(c.at, epoch_samples)}; {rng}): {rates}.")
        elif c.kind == "never":
            why = ("its steady rate is lower" if ln.rate.median < w.rate.median
                   else "its longer set-up is not made up" if ln.setup.median > w.setup.median
                   else "it is slower")
            out.append(f"{ln.label} never takes over up to {samples_text(hi)} samples: {why} "
                       f"({rates}).")
        elif c.kind == "ahead":
            out.append(f"{ln.label} is predicted sooner over the whole range but listed after "
                       f"(see its mark in the table): {rates}.")
        elif c.low is not None and c.low > lo:
            out.append(f"{ln.label} and {winner} are within noise for jobs of "
                       f"{samples_text(c.low)} to {samples_text(hi)} samples ({rates}): the "
                       f"probes cannot tell whether it ever takes over (below {samples_text(c.low)}"
                       f" samples the median line of {'it' if ln.seconds(lo) < w.seconds(lo) else winner}"
                       " is sooner, beyond noise); more probes would.")
        else:
            out.append(f"{ln.label} and {winner} are within noise over the whole range, "
                       f"{samples_text(lo)} to {samples_text(hi)} samples ({rates}): the probes "
                       "cannot tell them apart; more probes would.")
    return out


def ranked(lines: Iterable[Line], n: float) -> list[Line]:
    """`lines` soonest first for a job of `n` samples (median predictions)."""
    return sorted(lines, key=lambda ln: ln.seconds(n))


def longer_job(lines: Sequence[Line], winner: str, lo: float, hi: float) -> str:
    """One sentence on what a longer job changes, up to `hi` samples: which configuration takes
    over from `winner` first; else whether `winner` stays soonest beyond noise, or the bands
    cannot tell (the same rule as :func:`statements`, summed up)."""
    w = next(ln for ln in lines if ln.label == winner)
    cs = [crossing(w, ln, lo, hi) for ln in lines if ln.label != winner]
    up = samples_text(hi)
    over = [c for c in cs if c.kind == "takes over"]
    if over:
        c = min(over, key=lambda c: c.at)
        high = f"beyond {up}" if c.high > hi else samples_text(c.high)
        return (f"{c.challenger} takes over from {winner} after {samples_text(c.at)} samples "
                f"(range {samples_text(c.low)} to {high}).")
    below = [c for c in cs if c.kind == "sooner below"]
    noisy = [c.challenger for c in cs if c.kind == "within noise"
             or (c.kind == "sooner below" and c.high > hi)]
    if noisy:
        return (f"{winner} is the soonest by the medians up to {up} samples, but within noise of "
                f"{', '.join(noisy)} for the longest of those jobs: the runs cannot tell whether "
                "a longer job changes the answer.")
    if below:
        edge = max(c.high for c in below)
        return (f"{winner} stays the soonest: {', '.join(c.challenger for c in below)} "
                f"{'is' if len(below) == 1 else 'are'} sooner only for smaller jobs, and from "
                f"{samples_text(edge)} samples to {up} {winner}'s band is below every other's.")
    return (f"no other configuration takes over from {winner} up to {up} samples; at the "
            "longest jobs its band is below every other's.")
