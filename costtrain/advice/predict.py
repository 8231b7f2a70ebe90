"""From probe measurements to predictions for the whole job, ranked, with the reasons.

Pure functions of :class:`~costtrain.result.RunResult` numbers (no training here), so the
ranking can be checked on results built from known throughputs and learning curves:

* time = probe set-up + samples needed / measured steady samples per second;
* accuracy after ``n`` samples from a least-squares fit ``acc(n) = A - B / sqrt(n)`` of the
  probe's held-out evaluations (``A`` is the plateau the fit expects), so the samples needed
  for a target accuracy are ``(B / (A - target))**2``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import methods
from ..result import RunResult
from .cost import PriceBasis, as_fraction, money, price_basis

TRAINERS = {m.name: tuple(m.trainer.split(":")) for m in methods.METHODS.values()}
ACCURACY_TOLERANCE = 0.05  # expected accuracies closer than this are within probe noise
SHORT_PROBE = 0.5  # a probe with fewer samples than this share of the longest: accuracy not judged


def _job_kwargs(method: str, config: dict[str, Any], threads: int, epochs: int) -> dict[str, Any]:
    """Keyword arguments that run the whole job (`epochs` passes) in a probed configuration."""
    return (methods.find(method) or methods.DEFAULT).job_kwargs(method, config, threads, epochs)


# ----------------------------------------------------------------------- extrapolation
def fit_accuracy(eval_curve: dict[str, list]) -> tuple[float, float] | None:
    """Least-squares ``acc(n) = A - B / sqrt(n)`` over an eval curve; ``(A, B)`` with B >= 0."""
    pts = [(n ** -0.5, a) for n, a in zip(eval_curve.get("samples", []),
                                          eval_curve.get("accuracy", [])) if n > 0]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = -sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    if b <= 0:  # no measurable progress: expect what was measured
        return min(1.0, max(ys)), 0.0
    return min(1.0, my + b * mx), b


def accuracy_after(fit: tuple[float, float], samples: float) -> float:
    """Accuracy the fit expects after `samples` training samples."""
    a, b = fit
    return max(0.0, min(1.0, a - b / math.sqrt(max(samples, 1.0))))


def samples_to_reach(fit: tuple[float, float], target: float) -> float | None:
    """Samples the fit needs to reach `target`, or None if its plateau is below the target."""
    a, b = fit
    if target >= a:
        return None if a < target or b > 0 else 0.0
    return (b / (a - target)) ** 2


@dataclass
class Row:
    """One configuration's prediction for the whole job."""

    label: str
    method: str
    job: dict[str, Any]  # keyword arguments of the trainer for the whole job
    status: str = "ok"  # ok | failed | skipped
    samples_per_second: float = 0.0  # measured, steady state, all workers together
    setup_seconds: float = 0.0
    average_watts: float = 0.0
    energy_source: str = ""
    predicted_seconds: float | None = None
    predicted_cost: float | None = None
    expected_accuracy: float | None = None  # when the run stops: at the target or job end
    reaches_target: bool | None = None
    why: str = ""
    rank: int | None = None
    predicted_range: tuple[float, float] | None = None  # min-max over repeated probes

    @property
    def trainer(self) -> str:
        return methods.get(self.method).trainer.split(":")[1]

    def call(self) -> str:
        """The Python call that runs the whole job in this configuration."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.job.items())
        return f"{self.trainer}(net, data, {args})"

    def command(self) -> str:
        """The ``costtrain run`` command line for the whole job (built-in models and data)."""
        method = methods.get(self.method).name
        opts = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True or v == "default" and
                                                      k == "compile" else f" {v}")
                        for k, v in self.job.items()
                        if k != "pipeline" and v is not None and v is not False)
        return f"costtrain run --method {method} {opts}"


def rank_probes(probes: list[RunResult], *, job_samples: int, epochs: int = 1,
                target_accuracy: float | None = None,
                basis: PriceBasis | None = None) -> list[Row]:
    """Predict the whole job from each probe and rank the configurations.

    With a target accuracy, configurations predicted to reach it come first, soonest first;
    without one (or for those that miss it), the whole job (`job_samples`) soonest first,
    except that configurations expected to end clearly less accurate (by more than
    :data:`ACCURACY_TOLERANCE`) than the best come after the others. The accuracy of a probe
    much shorter than the longest (:data:`SHORT_PROBE`) is not judged at all.
    Time = probe set-up + samples / measured steady throughput; cost at the probe's average
    power (``probe.cost['average_watts']`` when measured, else ``basis.watts``).
    """
    basis = basis or price_basis()
    target = as_fraction(target_accuracy)
    longest = max((r.samples for r in probes if r.status != "failed"), default=0)
    rows = [_predict(r, job_samples, epochs, target, basis, r.samples >= SHORT_PROBE * longest)
            for r in probes]
    best_acc = max((r.expected_accuracy or 0.0 for r in rows
                    if r.status == "ok" and not r.reaches_target), default=0.0)

    def key(row: Row):
        if row.predicted_seconds is None:
            return (2, 0, 0.0)
        if target is not None and row.reaches_target:
            return (0, 0, row.predicted_seconds)
        worse = (row.expected_accuracy is not None
                 and row.expected_accuracy < best_acc - ACCURACY_TOLERANCE)
        return (int(target is not None), int(worse), row.predicted_seconds)
    rows.sort(key=key)
    for i, row in enumerate(rows, 1):
        row.rank = i
    return rows


def _predict(r: RunResult, job_samples: int, epochs: int, target: float | None,
             basis: PriceBasis, judge_accuracy: bool = True) -> Row:
    rate = r.steady_samples_per_second or (r.samples / r.train_seconds if r.train_seconds else 0)
    watts = r.cost.get("average_watts") or basis.watts
    source = r.cost.get("energy_source", "estimated")
    row = Row(r.label, r.method, _job_kwargs(r.method, r.config, r.threads, epochs),
              samples_per_second=rate, setup_seconds=r.setup_seconds, average_watts=watts,
              energy_source=source if source.startswith("measured") else f"estimated: {watts:g} W")
    if r.status == "failed" or rate <= 0:
        row.status, row.why = "failed", (r.error or "no throughput measured").splitlines()[0]
        return row
    fit = fit_accuracy(r.eval_curve) if judge_accuracy else None
    need: float | None = job_samples
    if target is not None:
        reached = [n for n, a in zip(r.eval_curve.get("samples", []),
                                     r.eval_curve.get("accuracy", [])) if a >= target]
        if reached:  # measured in the probe, however short: no extrapolation needed
            need, row.reaches_target = reached[0], True
        elif judge_accuracy:
            need = samples_to_reach(fit, target) if fit else None
            row.reaches_target = need is not None and need <= job_samples
        if not row.reaches_target:
            need = job_samples
    row.predicted_seconds = r.setup_seconds + need / rate
    row.predicted_cost = basis.cost(row.predicted_seconds, watts * row.predicted_seconds)
    row.expected_accuracy = accuracy_after(fit, need) if fit else None
    if target is not None and row.reaches_target:
        row.expected_accuracy = max(target, row.expected_accuracy or 0.0)
    row.why = _why(r, rate, need, fit, target, row)
    return row


def _why(r: RunResult, rate: float, need: float, fit, target, row: Row) -> str:
    parts = [f"{rate:,.0f} samples/s steady", f"set-up {r.setup_seconds:.1f} s"]
    if row.reaches_target is not None:
        parts.append(f"~{need:,.0f} samples to {100 * target:g} %" if row.reaches_target
                     else f"fit stays below {100 * target:g} % within the job")
    if not fit:
        parts.append(f"accuracy not judged: probe too short ({r.samples:,} samples)")
    else:
        parts.append(f"plateau ~{100 * fit[0]:.0f} % (fit of {len(r.eval_curve['samples'])} "
                     f"evals up to {r.samples:,} samples)")
    return "; ".join(parts)


def _target_not_predicted(ok: list[Row], target: float, epochs: int) -> str:
    """Why no row is predicted to reach `target`, saying what the probes could and could not tell.

    Probes are short: a fit that falls short of the target is a rough guess, and a probe too
    short to judge says nothing either way. Neither is a measurement that the target is out of
    reach (a full run may well get there), so the text must not read as one."""
    pct = f"{100 * target:g} %"
    judged = [r for r in ok if r.reaches_target is False]
    if not judged:
        why = (f"The probes were too short to tell when {pct} test accuracy would be reached, "
               f"which is not a sign that {epochs} epoch(s) cannot reach it")
    else:
        why = (f"The probes' short learning curves, extrapolated, stay below {pct} within "
               f"{epochs} epoch(s) for {len(judged)} of {len(ok)} configuration(s): a rough "
               "guess from a few early evaluations, not a measurement (a full run may get there)")
    return why + ", so the configurations are ranked by the time for the whole job."


def within_noise(a: Row, b: Row) -> bool | None:
    """Whether two rows' predicted ranges (repeated probes) overlap; None without repeats."""
    if a.predicted_range is None or b.predicted_range is None:
        return None
    return a.predicted_range[0] <= b.predicted_range[1] and b.predicted_range[0] <= a.predicted_range[1]


def justify(rows: list[Row], *, job: dict[str, Any], basis: PriceBasis) -> str:
    """One paragraph, computed from the numbers, on why the top row is recommended."""
    ok = [r for r in rows if r.status == "ok"]
    if not ok:
        return "No configuration could be measured, so there is nothing to recommend."
    best, target = ok[0], job.get("target_accuracy")
    reached = target is not None and best.reaches_target
    goal = (f"reach {100 * target:g} % test accuracy" if reached
            else f"train {job['epochs']} epoch(s) ({job['samples']:,} samples)")
    text = []
    if target is not None and not reached:
        text.append(_target_not_predicted(ok, target, job["epochs"]))
    text.append(f"{best.label} is predicted to {goal} in {best.predicted_seconds:.3g} s (set-up "
                f"{best.setup_seconds:.1f} s, then {best.samples_per_second:,.0f} samples/s, the "
                f"steady rate measured in its probe) for {money(best.predicted_cost)} "
                f"({basis.describe()}; {best.average_watts:.0f} W, "
                f"{best.energy_source.split(':')[0]}).")
    faster = [r for r in ok[1:] if r.predicted_seconds < best.predicted_seconds]
    if faster:
        f = min(faster, key=lambda r: r.predicted_seconds)
        if reached and f.reaches_target is False:
            why = "is not expected to reach the target"
        elif reached:
            why = "its probe was too short to tell whether it reaches the target"
        else:
            why = (f"is expected to end clearly less accurate ({100 * f.expected_accuracy:.1f} "
                   f"% vs {100 * best.expected_accuracy:.1f} %)")
        text.append(f"{f.label} would be faster ({f.predicted_seconds:.3g} s"
                    + (", within noise" if within_noise(best, f) else "") + f") but {why}.")
    elif len(ok) > 1:
        nxt = ok[1]
        ratio = nxt.predicted_seconds / best.predicted_seconds
        noisy = within_noise(best, nxt)
        text.append(f"The runner-up, {nxt.label}, is predicted at {nxt.predicted_seconds:.3g} s "
                    f"({ratio:.2f}x as long)" + (
                        ": within noise, the repeated probes' ranges overlap; either is a fine "
                        "choice." if noisy else ", within the noise of short probes: either is "
                        "a fine choice." if ratio < 1.1 and noisy is None else "."))
    base = next((r for r in ok if r.label == "baseline 1 thread"), None)
    if base and base is not best:
        ratio = base.predicted_seconds / best.predicted_seconds
        text.append(f"One thread on one core would take {base.predicted_seconds:.3g} s "
                    f"({ratio:.2f}x {'longer' if ratio >= 1 else 'as long'}).")
    cheapest = min(ok, key=lambda r: r.predicted_cost)
    if cheapest is not best and cheapest.predicted_cost < 0.95 * best.predicted_cost:
        text.append(f"The cheapest is {cheapest.label} at {money(cheapest.predicted_cost)} "
                    f"({cheapest.average_watts:.0f} W).")
    if best.expected_accuracy is not None:
        text.append("Expected accuracies are extrapolated from a few evaluations in short "
                    "probes (fit acc = A - B/sqrt(samples)): a rough guide, unlike the "
                    "measured throughput.")
    return " ".join(text)
