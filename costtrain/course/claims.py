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
          yardstick: float | None = None, busy: str | None = None) -> Verdict:
    """Evaluate `claim` on the measured `a` and `b` (one value or repeats each) with the
    claim's noise rule; `yardstick` is how much one run moves (a ratio such as 1.29 for
    rates, or a difference in the claim's unit for accuracies). `busy` (e.g.
    :func:`costtrain.measure.busy_note` of the runs compared) says other work competed for the
    cores meanwhile: then a timing claim cannot tell, whatever its numbers."""
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
    if busy and claim.rule != "counted":
        return Verdict(claim, CANNOT_TELL, head, busy.split(":")[0].strip() or "the machine was busy")
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
          yardstick: float | None = None, busy: str | None = None) -> Verdict:
    """Check the registered claim `id` on this run's numbers (a notebook's one call)."""
    if id not in CLAIMS:
        raise KeyError(f"no claim {id!r}; the claims are {', '.join(sorted(CLAIMS))}")
    return check(CLAIMS[id], a, b, yardstick=yardstick, busy=busy)


# --- the course's claims, by notebook (tests/test_claims.py enumerates them) -------------

SETUP: list[Claim] = [
    Claim("00.loss-falls", "The smoke run's training loss fell.",
          "the last logged training loss", "<", "the first", rule="counted",
          why_not="a learning rate far too large (the loss jumps) or too small (it barely moves) "
                  "for this batch size, or labels that do not match the images"),
    Claim("00.above-chance", "The smoke run's test accuracy is at least twice chance.",
          "test accuracy", ">", "twice chance", rule="counted", scale="difference", unit="%",
          why_not="a learning rate that makes the loss diverge, or test images that are not "
                  "normalised like the training images"),
]

BASELINE: list[Claim] = [
    Claim("01.threads-fall-short",
          "More intra-op threads fall short of one speed-up per thread on this net.",
          "the best thread count's steady samples/s ÷ 1 thread's", "<",
          "the ideal (one speed-up per thread of the largest count tried)", rule="yardstick",
          why_not="a larger batch or net gives every operation more work to split, and a 1-thread "
                  "run slowed by other work on the machine makes the others look better than "
                  "ideal"),
    Claim("01.transforms-cost-more",
          "For a net this small, the per-sample transforms of the classic pipeline take more "
          "training time than the maths.",
          "the transforms (classic minus in-memory training time)", ">",
          "the maths (in-memory training time)", rule="yardstick", unit="s",
          why_not="a larger net (more maths per image) or a fast Python and PIL on a slow "
                  "vector unit move the balance; so does other work on the machine during one "
                  "of the two runs"),
    Claim("01.pipeline-before-threads",
          "Removing the per-sample transforms gained more than the extra threads did: fix the "
          "data pipeline before parallelising.",
          "classic ÷ in-memory training time", ">",
          "the best thread count's steady samples/s ÷ 1 thread's", rule="yardstick",
          why_not="with many cores and a net large enough to split well, the threads can gain "
                  "more than the pipeline; with one thread count tried there is no thread gain"),
]

FREE_SPEEDUPS: list[Claim] = [
    Claim("01b.compile-cache",
          "Inductor's caches survive `torch._dynamo.reset()`, so the repeats compile faster than "
          "the kernel's first compile.",
          "the repeats' compile", "<", "the first compile", rule="yardstick", unit="s",
          why_not="a cold on-disk cache (a new PyTorch version, a cleared `/tmp`) or another job "
                  "slowing the repeats makes them as slow as the first"),
    Claim("01b.larger-batch-faster", "A larger batch trains more samples per second.",
          "the largest batch's steady samples/s", ">", "the smallest batch's",
          why_not="when the per-sample work already dominates each step (a larger net, or "
                  "batches already large) a larger batch adds little, and a busy machine blurs "
                  "the difference"),
    Claim("01b.less-than-batch-ratio",
          "The samples per second grow less than in proportion to the batch size.",
          "largest ÷ smallest batch, steady samples/s (medians)", "<",
          "largest ÷ smallest batch size", rule="yardstick",
          why_not="a step whose fixed part (Python, launching operations) dominates at the "
                  "smallest batch can speed up nearly in proportion, until the per-sample work "
                  "takes over; other work slowing the smallest batch's runs inflates the ratio"),
    Claim("01b.bf16-native-faster",
          "With native bf16 instructions, a bf16 matrix product is faster than float32.",
          "bf16 time", "<", "float32 time", rule="yardstick", unit="ms",
          why_not="other work holding a core that the product's threads wait for (a busy "
                  "machine slows a split product far more than its share), a product too small "
                  "to keep the bf16 units busy, or a PyTorch build without oneDNN's bf16 kernels "
                  "for this CPU"),
    Claim("01b.bf16-emulated-slower",
          "Without native bf16 instructions, a bf16 matrix product is slower than float32 "
          "(pytorch#146508).",
          "bf16 time", ">", "float32 time", rule="yardstick", unit="ms",
          why_not="a PyTorch that converts to float32 and back for the product pays little at "
                  "this size, and other work slowing the float32 repeats hides the gap"),
]

PARAMETER_SERVER: list[Claim] = [
    Claim("02.plain-lr-behind",
          "At the same learning rate, sync with K workers ends behind the baseline at equal "
          "samples.",
          "sync at lr (test accuracy)", "<", "the baseline", rule="yardstick", scale="difference",
          unit="%", why_not="a job long enough for both to converge, or a learning rate already "
          "large for this net, leaves no gap beyond one run's noise"),
    Claim("02.scaled-lr-catches-up",
          "With the linear scaling rule (lr x K), sync ends more accurate than without it.",
          "sync at lr x K (test accuracy)", ">", "sync at lr", rule="yardstick",
          scale="difference", unit="%", why_not="a learning rate K times larger can be too large "
          "for the first steps of this net (Goyal et al. warm it up for that reason), or both "
          "have converged"),
    Claim("02.bigger-batch-smaller-share",
          "With a bigger batch per worker, the workers spend a smaller share of their time "
          "communicating and waiting.",
          "the share at the bigger batch", "<", "at the notebook's batch size", rule="yardstick",
          unit="%", why_not="on shared cores the wait for a turn can grow with the compute of "
          "the others, and a share this small moves with the machine's other work"),
    Claim("02.async-waits-less",
          "Async workers spend a smaller share of their time communicating and waiting than sync "
          "workers.",
          "async (share of the workers' time)", "<", "sync", rule="yardstick", unit="%",
          why_not="an async worker still waits in `recv` for the server's answer, and on shared "
          "cores the server's turn to run can take as long as the other workers' gradients"),
]

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

COMPARE: list[Claim] = [
    Claim("04.one-process-first",
          "The best one-process configuration finishes set-up + training sooner than the best "
          "multi-process one.",
          "the best multi-process configuration's set-up + training", ">",
          "the best one-process configuration's",
          "with more cores, a longer job or a quicker process start-up, what several processes "
          "gain in training can outweigh the start-up they add.", unit="s"),
    Claim("04.steady-rate",
          "Once started, the best one-process configuration also trains faster than every "
          "multi-process one, so a longer job does not make one of them take over.",
          "its steady rate", ">", "the fastest multi-process configuration's",
          "on more cores, or when each step touches only a few weights (notebook 03b), several "
          "processes can train faster once started; then a long enough job repays their "
          "start-up (the take-over sentences say where).", unit="samples/s"),
    Claim("04.advise-agrees",
          "`costtrain advise`, from its short probes, picks the configuration that finished "
          "set-up + training first in section 1.",
          "section 1's set-up + training of advise's pick", "<",
          "the best other configuration's",
          "the probes are short slices of the job and rank by their predictions; a "
          "configuration within noise of the winner can swap places with it, and a busy spell "
          "during the probes or the runs moves them too.", unit="s"),
]

BEYOND: list[Claim] = [
    Claim("05.network-model-checks",
          "The network model, fed each run's own compute and bytes and this machine's measured "
          "loopback, predicts the seconds per step measured here within 25 %.",
          "its largest miss", "<", "the allowed miss", rule="counted", unit="%",
          why_not="the model counts compute, bytes and round trips only: a busy machine, clocks "
          "that change within a run, or waits for a turn on shared cores make steps slower than "
          "it predicts"),
    Claim("05.larger-h-less-accurate",
          "Local SGD with the largest H ends less accurate at equal samples than with H = 1.",
          "the largest H (test accuracy)", "<", "H = 1", rule="yardstick", scale="difference",
          unit="%", why_not="a short job, a small learning rate or few workers keep the models "
          "close between averages; the drift costs accuracy only past some H (Stich 2019)"),
]

DECISION: list[Claim] = []

CLAIMS: dict[str, Claim] = {c.id: c for c in (*SETUP, *BASELINE, *FREE_SPEEDUPS,
                                              *PARAMETER_SERVER, *HOGWILD, *SPARSE_HOGWILD,
                                              *COMPARE, *BEYOND, *DECISION)}
