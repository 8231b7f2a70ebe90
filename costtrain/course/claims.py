"""Claims that check themselves: what the course says about training, checked on this run.

A sentence of the course about how training behaves (faster, slower, grows, drops, scales,
pays off) is a :class:`Claim`: its words, the quantities it compares and how (``a`` against
``b`` with a relation), and a one-line *why that can happen* for a machine where it fails.
:func:`check` evaluates it on numbers the reader's own run just measured, with a noise rule:

* ``ranges``: repeated measurements on both sides. Held when every value of ``a`` is beyond
  every value of ``b`` in the claimed direction; did not hold when they are apart the other
  way; this run cannot tell when the ranges overlap;
* ``yardstick``: one run each, but the notebook measured how much one run moves (e.g. the
  same configuration run twice): held when the ratio (or, for accuracies, the difference) is
  beyond the yardstick in the claimed direction, did not hold beyond it the other way, else
  cannot tell;
* ``one run``: one run each and no yardstick: this run cannot tell, whatever the numbers;
* ``counted``: counted or computed quantities (bytes, samples, parameters): no noise.

The verdict is one short Markdown line to print under the sentence: *held on this machine*
(with the numbers), *did not hold on this machine* (with the numbers and the claim's
why-that-can-happen), or *this run cannot tell* (with the reason). Claims are plain data in
:data:`CLAIMS`, by id, so a test can enumerate them; notebooks call ``claim(id, a, b, ...)``.
No torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..advice.noise import spread
from ..advice.prose import md

HELD, NOT_HELD, CANNOT_TELL = "held on this machine", "did not hold on this machine", \
    "this run cannot tell"
RELATIONS = (">", "<")  # a > b: a is larger (faster, more accurate, ...); a < b: smaller
RULES = ("ranges", "yardstick", "one run", "counted")


@dataclass(frozen=True)
class Claim:
    """A sentence about how training behaves, and how to check it on a run."""

    id: str  # "notebook.short-name", e.g. "01.threads-fall-short"
    says: str  # the sentence, as the notebook states it
    a: str  # what `a` is, in words ("2 threads' steady samples/s")
    relation: str  # ">" or "<": the claim is `a` relation `b`
    b: str  # what `b` is
    why_not: str  # one line: why it can fail on some machine
    rule: str = "ranges"  # the noise rule (RULES)
    scale: str = "ratio"  # compare as a ratio a/b (rates, times) or a "difference" (accuracy)
    unit: str = ""  # for the numbers: "samples/s", "s", "%", "bytes"


@dataclass(frozen=True)
class Verdict:
    """A claim checked on this run."""

    claim: Claim
    word: str  # HELD, NOT_HELD or CANNOT_TELL
    numbers: str  # what was compared, as the line prints it
    reason: str = ""  # for CANNOT_TELL: why not

    def markdown(self) -> str:
        """The short line printed under the sentence."""
        text = f"**Claim:** {self.claim.says} *{self.word}*: {self.numbers}"
        if self.word == NOT_HELD:
            text += f". Why that can happen: {self.claim.why_not}"
        elif self.word == CANNOT_TELL and self.reason:
            text += f" ({self.reason})"
        return md(text.rstrip(".") + ".")

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return self.markdown()


def _values(x: float | Sequence[float]) -> list[float]:
    vals = [float(v) for v in (x if isinstance(x, (list, tuple)) else [x])]
    if not vals or any(math.isnan(v) for v in vals):
        raise ValueError(f"a claim needs measured numbers, got {x!r}: did the run finish?")
    return vals


def _num(v: float) -> str:
    """Three significant figures, thousands spelled out (``2,000``, ``1.35``, ``0.0412``)."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _fmt(values: list[float], unit: str) -> str:
    s = spread(values)
    u = f" {unit}" if unit and unit != "%" else unit
    if s.n == 1:
        return f"{_num(s.median)}{u}"
    return f"{_num(s.median)}{u} [{_num(s.low)}-{_num(s.high)}, {s.n} runs]"


def check(claim: Claim, a: float | Sequence[float], b: float | Sequence[float], *,
          yardstick: float | None = None) -> Verdict:
    """Evaluate `claim` on the measured `a` and `b` (one value or repeats each) with the
    claim's noise rule; `yardstick` is how much one run moves (a ratio such as 1.29 for
    rates, or a difference in the claim's unit for accuracies)."""
    if claim.relation not in RELATIONS or claim.rule not in RULES:
        raise ValueError(f"claim {claim.id}: relation must be one of {RELATIONS} and rule one "
                         f"of {RULES}")
    va, vb = _values(a), _values(b)
    sa, sb = spread(va), spread(vb)
    sign = 1 if claim.relation == ">" else -1
    if claim.scale == "ratio":
        ratio = sa.median / sb.median if sb.median else math.inf
        head = f"{claim.a} {_fmt(va, claim.unit)} against {claim.b} {_fmt(vb, claim.unit)}, {ratio:.2f}x"
    else:
        head = (f"{claim.a} {_fmt(va, claim.unit)} against {claim.b} {_fmt(vb, claim.unit)}, "
                f"{sa.median - sb.median:+.3g}{claim.unit}")

    def direction(x: float, y: float) -> int:
        return (x > y) - (x < y)
    if claim.rule == "counted":
        d = direction(sa.median, sb.median) * sign
        return Verdict(claim, HELD if d > 0 else NOT_HELD, head)
    if claim.rule == "ranges":
        if sa.n < 2 or sb.n < 2:
            return Verdict(claim, CANNOT_TELL, head, "one run on a side: no range to judge by")
        if sa.overlaps(sb):
            return Verdict(claim, CANNOT_TELL, head, "the ranges overlap: within noise")
        return Verdict(claim, HELD if direction(sa.median, sb.median) * sign > 0 else NOT_HELD,
                       head)
    if claim.rule == "yardstick":
        if yardstick is None:
            raise ValueError(f"claim {claim.id}: the yardstick rule needs yardstick=")
        if claim.scale == "ratio":
            r = sa.median / sb.median if sb.median else math.inf
            beyond = r > yardstick or r < 1 / yardstick
            d = direction(r, 1.0) * sign
            stick = f"one run moves up to {yardstick:.2f}x here"
        else:
            diff = sa.median - sb.median
            beyond = abs(diff) > yardstick
            d = direction(diff, 0.0) * sign
            stick = f"one run moves up to {yardstick:.2g}{claim.unit} here"
        if not beyond:
            return Verdict(claim, CANNOT_TELL, head, f"within noise: {stick}")
        return Verdict(claim, HELD if d > 0 else NOT_HELD, f"{head} ({stick})")
    return Verdict(claim, CANNOT_TELL, head, "one run each: a single run cannot tell")


def claim(id: str, a: float | Sequence[float], b: float | Sequence[float], *,
          yardstick: float | None = None) -> Verdict:
    """Check the registered claim `id` on this run's numbers (a notebook's one call)."""
    if id not in CLAIMS:
        raise KeyError(f"no claim {id!r}; the claims are {', '.join(sorted(CLAIMS))}")
    return check(CLAIMS[id], a, b, yardstick=yardstick)


# --- the course's claims, by notebook (tests/test_claims.py enumerates them) -------------

SETUP: list[Claim] = []

BASELINE: list[Claim] = []

FREE_SPEEDUPS: list[Claim] = []

PARAMETER_SERVER: list[Claim] = []

HOGWILD: list[Claim] = [
    Claim("03.processes-beat-threads",
          "Processes that share the parameters use the cores better than threads inside one "
          "process: they train the same work in less time.",
          "the training seconds of several processes", "<",
          "those of one process with every core's threads",
          "one process's threads may already keep the cores busy on this net, and the "
          "processes' writes to the same shared weights move between the cores' caches",
          unit="s"),
    Claim("03.races-cost-accuracy",
          "With more workers the races cost accuracy: at equal samples the run with the most "
          "processes ends below one process.",
          "the most processes' test accuracy", "<", "one process's",
          "at a small learning rate a lost or stale update is small next to SGD's own noise "
          "(the analyses cited in section 1 bound it by the step size and the staleness)",
          scale="difference", unit="%"),
    Claim("03.oversubscription-slows",
          "Processes that each use every core for their own threads train slower than with "
          "cores // processes threads each.",
          "all cores each", "<", "cores // processes threads each",
          "other work on the machine can slow both budgets alike, or the operating system can "
          "keep each process's threads on one core",
          rule="yardstick", unit="samples/s"),
    Claim("03.oversubscribed-slower",
          "More processes than cores take longer to train the same work than processes that "
          "fit the cores.",
          "the training seconds with more processes than cores", ">",
          "with processes that fit the cores",
          "the cores run as many threads at once either way, and while one process waits (for "
          "memory, for the operating system) another can use its core",
          unit="s"),
    Claim("03.cold-start-grows",
          "The cold start grows with the number of processes: starting more workers at once "
          "takes longer.",
          "the set-up of the most processes", ">", "the set-up of one process",
          "with a free core for every worker the processes start side by side, so starting "
          "several takes about as long as starting one",
          unit="s"),
]

SPARSE_HOGWILD: list[Claim] = [
    Claim("03b.sparse-beats-one-process",
          "Hogwild! trains the sparse model faster in steady state than the fastest single "
          "process.",
          "Hogwild!'s steady samples/s", ">", "the fastest single process's",
          "a small sparse step is mostly Python overhead in every process, and the rows the "
          "workers share pass between the cores' caches; a busy core slows one worker and "
          "with it the whole run",
          rule="yardstick", unit="samples/s"),
    Claim("03b.threads-no-help",
          "One process's extra threads do not pay on the sparse model's small steps: (b) "
          "trains it slower than (a).",
          "(b)'s steady samples/s", "<", "(a)'s",
          "the gather and scatter of a step's rows can be split over threads, more so at "
          "larger batches or larger k",
          rule="yardstick", unit="samples/s"),
    Claim("03b.sparse-gains-more",
          "Hogwild! gains more over one process using every core on the sparse model than on "
          "the dense net.",
          "the sparse model's speed-up over (b)", ">", "the dense net's",
          "one process's threads may use the cores poorly on a small dense net, which leaves "
          "Hogwild! more to gain there",
          rule="yardstick"),
    Claim("03b.end-to-end",
          "Hogwild! finishes this sparse job sooner end to end than the single process that "
          "finished first, its workers' start-up included.",
          "Hogwild!'s end-to-end seconds", "<", "the single process's",
          "its workers' start-up, paid once by a one-off run, is longer than the training time "
          "its faster steps save on a job this short (see the break-even)",
          rule="yardstick", unit="s"),
    Claim("03b.fade",
          "Hogwild!'s advantage over one process using every core fades as each sample holds "
          "more features.",
          "the speed-up over (b) at the largest k", "<", "at the smallest k",
          "a larger step gives (b)'s threads more to share, but it also gives each Hogwild! "
          "worker more work per step of Python overhead; which wins depends on the machine",
          rule="yardstick"),
    Claim("03b.collisions-grow",
          "Collisions grow with the features a step touches: at the largest k more of a step's "
          "rows were written by another worker meanwhile than at the smallest.",
          "the share of rows overlapped at the largest k", ">", "at the smallest k",
          "with a table far larger than a step's rows the chance of a shared row stays tiny at "
          "every k; or the workers seldom stepped at the same moment",
          rule="counted"),
    Claim("03b.sparse-accuracy",
          "Hogwild!'s races cost the sparse model accuracy: at equal samples it ends below (a).",
          "Hogwild!'s test accuracy", "<", "(a)'s",
          "each worker shuffles the data its own way, so Hogwild! saw the samples in another "
          "order than (a), and the order alone moves a short run's accuracy; with few shared "
          "rows the races are rare",
          rule="yardstick", scale="difference", unit="%"),
    Claim("03b.sampler-cost",
          "Measuring every slot slows Hogwild! down: the run that measures every slot trains "
          "slower than the same run measuring the default share.",
          "every slot measured", "<", "the default",
          "stamping and checking a step's rows is a little memory traffic next to a step's "
          "gather and scatter, and the runs were one each",
          rule="yardstick", unit="samples/s"),
]

COMPARE: list[Claim] = []

BEYOND: list[Claim] = []

DECISION: list[Claim] = []

CLAIMS: dict[str, Claim] = {c.id: c for c in (*SETUP, *BASELINE, *FREE_SPEEDUPS,
                                              *PARAMETER_SERVER, *HOGWILD, *SPARSE_HOGWILD,
                                              *COMPARE, *BEYOND, *DECISION)}
