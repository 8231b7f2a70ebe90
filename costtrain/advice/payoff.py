"""Does a lever pay? Verdicts on repeated, alternating measurements (pure arithmetic).

A lever (``torch.compile``, bf16, channels_last, ...) is kept only when

1. it ran faster in every pair of repeats, each run with it beside one without it in the
   alternating order (the paired ratios of steady samples/s all above 1: a slow spell of the
   machine hits both runs of a pair alike). Slower in every pair is "slower"; faster in some
   pairs and not in others is "within noise", no reason to change anything; and
2. the whole job, charged the lever's one-off set-up (compile time), is predicted to finish
   sooner: ``setup + extra + samples / rate`` against ``setup + samples / base rate``, and
3. it learns as much from the same samples: its test accuracy (median) is at most
   :data:`ACCURACY_SLACK` below the configuration's without it, when both were measured. A
   larger batch (with the learning rate scaled alike) steps faster but can learn less per
   sample; samples/s alone would call it a win where time to an accuracy would not.

The break-even point of a lever with a one-off cost ``C`` seconds is the number of samples
after which its faster steps have paid ``C`` back: ``C / (1 / base rate - 1 / rate)``.
:func:`costtrain.advice.advise.recommend`, notebook ``01b_free_speedups`` and
``benchmarks/levers.py`` use these rules; the tests check them on made-up numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from .noise import Spread, spread

ACCURACY_SLACK = 0.01  # a lever may cost at most this much test accuracy (1 point) at equal samples


@dataclass
class Trial:
    """One lever measured against the same configuration without it, repeat by repeat."""

    label: str
    rates: list[float]  # steady samples/s with the lever, one per repeat
    base_rates: list[float]  # without it, the same repeats (run alternately)
    extra_setup: float = 0.0  # one-off seconds the lever adds (compile), charged once per job
    kwargs: dict[str, Any] = field(default_factory=dict)  # the trainer keywords that turn it on
    accuracy: float | None = None  # test accuracy with the lever (median)
    base_accuracy: float | None = None  # without it (median), the same samples


@dataclass
class Verdict:
    """Whether one lever paid, and by how much."""

    trial: Trial
    kept: bool
    why: str
    ratio: Spread  # steady rate with / without, per repeat pair (the text quotes the medians')
    job_seconds: float  # predicted for the job with the lever (its extra set-up included)
    base_seconds: float  # predicted for the job without it
    speedup: Spread  # base_seconds / job_seconds, per repeat pair
    break_even: float  # samples to pay back the extra set-up (0: none; inf: never)


def break_even_samples(extra_seconds: float, base_rate: float, rate: float) -> float:
    """Samples after which a one-off cost of `extra_seconds` is paid back by the faster rate."""
    if extra_seconds <= 0:
        return 0.0
    gain = 1 / base_rate - 1 / rate if base_rate > 0 and rate > 0 else 0.0
    return extra_seconds / gain if gain > 0 else math.inf


def judge(trial: Trial, *, job_samples: float, base_setup: float = 0.0) -> Verdict:
    """The verdict on one lever for a job of `job_samples` samples (see the module docstring)."""
    if not trial.rates or len(trial.rates) != len(trial.base_rates):
        raise ValueError(f"{trial.label}: need as many base repeats as lever repeats "
                         f"({len(trial.base_rates)} vs {len(trial.rates)}), at least one")
    on, off = spread(trial.rates), spread(trial.base_rates)
    ratio = spread([r / b for r, b in zip(trial.rates, trial.base_rates)])

    def job(rate: float, extra: float) -> float:
        return base_setup + extra + job_samples / rate if rate > 0 else math.inf
    with_lever, without = job(on.median, trial.extra_setup), job(off.median, 0.0)
    speedup = spread([job(b, 0.0) / job(r, trial.extra_setup)
                      for r, b in zip(trial.rates, trial.base_rates)])
    even = break_even_samples(trial.extra_setup, off.median, on.median)
    x = on.median / off.median if off.median > 0 else math.inf  # ratio of the medians
    lost = (trial.base_accuracy - trial.accuracy
            if trial.accuracy is not None and trial.base_accuracy is not None else 0.0)
    if ratio.high < 1.0:
        kept, why = False, (f"slower: {x:.2f}x the steady rate without it, slower in each of "
                            f"its {ratio.n} alternating pairs")
    elif lost > ACCURACY_SLACK and on.median > off.median:
        kept, why = False, (f"learns less: {x:.2f}x the steady rate, but {100 * lost:.1f} "
                            "points less test accuracy from the same samples "
                            f"({100 * trial.accuracy:.1f} % vs {100 * trial.base_accuracy:.1f} %)")
    elif ratio.low <= 1.0:
        slower = sum(r <= b for r, b in zip(trial.rates, trial.base_rates))
        kept, why = False, (f"within noise: {x:.2f}x the steady rate by the medians, faster in "
                            f"{ratio.n - slower} and not faster in {slower} of its {ratio.n} "
                            f"alternating pairs ({ratio.low:.2f}x to {ratio.high:.2f}x)")
    elif with_lever >= without:
        kept, why = False, (f"{x:.2f}x the steady rate, but its one-off "
                            f"{trial.extra_setup:.1f} s pay back only after {even:,.0f} samples; "
                            f"the job has {job_samples:,.0f}")
    else:
        kept, why = True, (f"{x:.2f}x the steady rate, faster in each of its {ratio.n} "
                           "alternating pairs"
                           + (f"; its one-off {trial.extra_setup:.1f} s pay back after "
                              f"{even:,.0f} samples" if trial.extra_setup > 0 else ""))
    return Verdict(trial, kept, why, ratio, with_lever, without, speedup, even)


def pick(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The kept lever (or combination) that finishes the job soonest; None if none was kept."""
    kept = [v for v in verdicts if v.kept]
    return min(kept, key=lambda v: v.job_seconds) if kept else None


def conclusion(verdicts: Sequence[Verdict], what: str = "this model") -> str:
    """One sentence: which levers to keep and which did not pay, from the verdicts."""
    kept = [v.trial.label for v in verdicts if v.kept]
    dropped = [v for v in verdicts if not v.kept]
    text = (f"keep {kept[0]}" if len(kept) == 1 else
            f"keep {' and '.join(kept)}, each of which paid alone (measured one at a time, not "
            "together)" if kept else "keep none of the levers tried")
    if dropped:
        text += "; " + "; ".join(f"{v.trial.label} did not pay ({v.why})" for v in dropped)
    return f"on this machine, for {what}, {text}."
