"""From probe measurements to predictions for the reader's job, ranked, with the rule stated.

Pure functions of :class:`~costtrain.result.RunResult` numbers (no training here), so the
ranking can be checked on results built from known throughputs and learning curves:

* one-off time for a job of ``n`` samples = set-up + ``n`` / steady samples per second
  (:mod:`costtrain.measure` defines both; periodic evaluation is not in it), computed for
  every probe of a configuration: the point estimate is the median over its probes, the
  range their min and max (one probe has no range);
* the ranking is by that time. Accuracy enters only as a stated filter on what the probes
  *measured* at equal samples: a configuration whose probes learned more than
  :data:`ACCURACY_SLACK` less than the best, beyond their noise, is listed after the others
  and marked with the reason;
* with a target accuracy, the samples needed come from the probes' evaluations (measured
  when a probe reached it, else a least-squares fit ``acc(n) = A - B / sqrt(n)``,
  extrapolated, and said so).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from .. import methods
from ..result import RunResult
from .cost import PriceBasis, as_fraction, money, price_basis
from .noise import spread

TRAINERS = {m.name: tuple(m.trainer.split(":")) for m in methods.METHODS.values()}
ACCURACY_SLACK = 0.01  # probes that learned more than this less (1 point), beyond noise: listed after
LEVERS = ("compile", "amp", "channels_last", "base_batch")  # recorded in a RunResult's config
SHORT_PROBE = 0.5  # a probe with fewer samples than this share of the longest: accuracy not judged


def _job_kwargs(method: str, config: dict[str, Any], threads: int, epochs: int) -> dict[str, Any]:
    """Keyword arguments that run the whole job (`epochs` passes) in a probed configuration,
    with the levers it was probed with (so its command and call run what was predicted)."""
    row = methods.find(method) or methods.DEFAULT
    kw = row.job_kwargs(method, config, threads, epochs)
    if row.levers:
        kw.update({k: config[k] for k in LEVERS if config.get(k)})
    return kw


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


def accuracy_at(eval_curve: dict[str, list], samples: float) -> float | None:
    """Held-out accuracy the curve measured at `samples`, interpolated between evaluations
    (None past its last one or with no evaluation)."""
    pts = list(zip(eval_curve.get("samples", []), eval_curve.get("accuracy", [])))
    if not pts or samples > pts[-1][0]:
        return None
    prev = (0, None)
    for n, a in pts:
        if n >= samples:
            if prev[1] is None or n == prev[0]:
                return a
            f = (samples - prev[0]) / (n - prev[0])
            return prev[1] + f * (a - prev[1])
        prev = (n, a)
    return None


# ----------------------------------------------------------------------- rows
@dataclass
class Row:
    """One configuration's prediction for the reader's job."""

    label: str
    method: str
    job: dict[str, Any]  # keyword arguments of the trainer for the whole job
    status: str = "ok"  # ok | failed | skipped
    samples_per_second: float = 0.0  # measured steady rate, median over the probes
    setup_seconds: float = 0.0  # one-off set-up, median over the probes
    average_watts: float = 0.0
    energy_source: str = ""
    predicted_seconds: float | None = None  # median over the probes' predictions
    predicted_cost: float | None = None
    expected_accuracy: float | None = None  # target mode: at the target (fit, extrapolated)
    reaches_target: bool | None = None
    why: str = ""
    rank: int | None = None
    predicted_range: tuple[float, float] | None = None  # min-max over the probes (>= 2)
    rate_range: tuple[float, float] | None = None
    setup_range: tuple[float, float] | None = None
    probes: int = 1
    probe_accuracy: float | None = None  # measured at `accuracy_samples`, median of the probes
    accuracy_range: tuple[float, float] | None = None
    accuracy_samples: int | None = None
    listed_after: str = ""  # why it is ranked after faster rows (empty: ranked by time)
    data: dict[str, Any] = field(default_factory=dict)  # the job's data options (run's flags)

    @property
    def trainer(self) -> str:
        return methods.get(self.method).trainer.split(":")[1]

    def call(self) -> str:
        """The Python call that runs the whole job in this configuration."""
        args = ", ".join(f"{k}={v!r}" for k, v in {**self.job, **self._data_kwargs()}.items())
        return f"{self.trainer}(net, data, {args})"

    def _data_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k in ("batch_size", "lr", "seed")}

    def command(self) -> str:
        """The ``costtrain run`` command line that runs exactly the predicted job: method,
        processes or threads, epochs, data (``--dataset``, ``--subset``), batch, learning
        rate, seed and levers (built-in models and datasets)."""
        method = methods.get(self.method).name
        flags = {**{k: v for k, v in self.data.items() if k != "test_subset"}, **self.job}
        opts = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True or v == "default" and
                                                      k == "compile" else f" {v}")
                        for k, v in flags.items()
                        if k != "pipeline" and v is not None and v is not False)
        return f"costtrain run --method {method} {opts}"


def rank_probes(probes: list[RunResult], *, job_samples: int, epochs: int = 1,
                target_accuracy: float | None = None, basis: PriceBasis | None = None,
                data: dict[str, Any] | None = None) -> list[Row]:
    """Predict the whole job from every probe (repeats share a label) and rank them.

    Without a target: by the predicted one-off time of the job (`job_samples`), soonest
    first, except that configurations whose probes *measured* more than
    :data:`ACCURACY_SLACK` less accuracy at equal samples than the best, beyond their noise,
    come after the others with the reason in ``listed_after``. With a target accuracy,
    configurations predicted to reach it come first, soonest first (the samples needed:
    measured in a probe, else extrapolated from its fit). Failed configurations come last.
    Cost at the probes' average power (``cost['average_watts']`` when measured, else
    ``basis.watts``). `data` holds the job's data options (dataset, subset, batch_size, lr,
    seed) for the rows' commands.
    """
    basis = basis or price_basis()
    target = as_fraction(target_accuracy)
    groups: dict[str, list[RunResult]] = {}
    for r in probes:
        groups.setdefault(r.label, []).append(r)
    longest = max((r.samples for r in probes if r.status != "failed"), default=0)
    rows = [_predict(runs, job_samples, epochs, target, basis, longest, dict(data or {}))
            for runs in groups.values()]
    _measured_accuracy(rows, groups)

    def key(row: Row):
        if row.predicted_seconds is None:
            return (2, 0, 0.0)
        if target is not None and row.reaches_target:
            return (0, 0, row.predicted_seconds)
        return (int(target is not None), int(bool(row.listed_after)), row.predicted_seconds)
    rows.sort(key=key)
    for i, row in enumerate(rows, 1):
        row.rank = i
    return rows


def _predict(runs: list[RunResult], job_samples: int, epochs: int, target: float | None,
             basis: PriceBasis, longest: int, data: dict[str, Any]) -> Row:
    first = runs[0]
    row = Row(first.label, first.method,
              _job_kwargs(first.method, first.config, first.threads, epochs), data=data,
              probes=len(runs))
    bad = next((r for r in runs if r.status == "failed"), None)
    rates = [r.steady_samples_per_second or (r.samples / r.train_seconds if r.train_seconds
                                             else 0.0) for r in runs]
    if bad is not None or min(rates) <= 0:
        row.status = "failed"
        row.why = ((bad.error if bad else None) or "no throughput measured").splitlines()[0]
        return row
    watts = statistics.median([r.cost.get("average_watts") or basis.watts for r in runs])
    source = first.cost.get("energy_source", "estimated")
    row.average_watts = watts
    row.energy_source = source if source.startswith("measured") else f"estimated: {watts:g} W"
    setups = [r.setup_seconds for r in runs]
    row.samples_per_second, row.setup_seconds = spread(rates).median, spread(setups).median
    need = float(job_samples)
    fit = fit_accuracy(first.eval_curve) if first.samples >= SHORT_PROBE * longest else None
    if target is not None:
        reached = [n for n, a in zip(first.eval_curve.get("samples", []),
                                     first.eval_curve.get("accuracy", [])) if a >= target]
        if reached:  # measured in the probe, however short: no extrapolation needed
            need, row.reaches_target = float(reached[0]), True
        elif fit is not None:
            n = samples_to_reach(fit, target)
            row.reaches_target = n is not None and n <= job_samples
            need = n if row.reaches_target else need
        row.expected_accuracy = (max(target, accuracy_after(fit, need)) if row.reaches_target
                                 and fit else accuracy_after(fit, need) if fit else None)
    preds = [s + need / rate for s, rate in zip(setups, rates)]
    row.predicted_seconds = statistics.median(preds)
    if len(runs) > 1:
        row.predicted_range = (min(preds), max(preds))
        row.rate_range, row.setup_range = (min(rates), max(rates)), (min(setups), max(setups))
    row.predicted_cost = basis.cost(row.predicted_seconds, watts * row.predicted_seconds)
    row.why = _why(first, need, fit, target, row)
    return row


def _measured_accuracy(rows: list[Row], groups: dict[str, list[RunResult]]) -> None:
    """Each ok row's probe accuracy at the samples every ok probe reached (its median and
    range), and the filter: more than ACCURACY_SLACK below the best, ranges apart, both ranges
    from probes of different seeds (:func:`_noise_measured`)."""
    ok = [r for r in rows if r.status == "ok"]
    runs = [p for r in ok for p in groups[r.label]]
    if not runs:
        return
    n = min(p.eval_curve["samples"][-1] if p.eval_curve.get("samples") else 0 for p in runs)
    if n <= 0:
        return
    for row in ok:
        accs = [a for p in groups[row.label] if (a := accuracy_at(p.eval_curve, n)) is not None]
        if accs:
            s = spread(accs)
            row.probe_accuracy, row.accuracy_samples = s.median, int(n)
            row.accuracy_range = (s.low, s.high) if s.n > 1 else None
    judged = [r for r in ok if r.probe_accuracy is not None]
    if not judged:
        return
    best = max(judged, key=lambda r: r.probe_accuracy)
    if not _noise_measured(best, groups):
        return  # one probe, or repeats of one seed: no range says what an accuracy gap means
    for row in judged:
        gap = best.probe_accuracy - row.probe_accuracy
        if (gap > ACCURACY_SLACK and _noise_measured(row, groups)
                and row.accuracy_range[1] < best.accuracy_range[0]):
            row.listed_after = (
                f"its probes learned {100 * gap:.1f} points less than {best.label} at "
                f"{row.accuracy_samples:,} samples ({100 * row.probe_accuracy:.1f} % against "
                f"{100 * best.probe_accuracy:.1f} %, measured{_of(row)}): listed after the "
                "configurations that learned as much")


def _noise_measured(row: Row, groups: dict[str, list[RunResult]]) -> bool:
    """Whether `row`'s accuracy range measured noise: two or more probes trained with different
    seeds (repeats of one seed repeat one data order and initialisation, so their range says
    nothing about how far another order would land)."""
    seeds = {p.config.get("seed") for p in groups[row.label]}
    return row.accuracy_range is not None and len(seeds) > 1


def _of(row: Row) -> str:
    return f", {row.probes} probes each" if row.probes > 1 else ", one probe each"


def _why(r: RunResult, need: float, fit, target, row: Row) -> str:
    parts = [f"set-up {row.setup_seconds:.1f} s + {need:,.0f} samples at the steady rate"]
    if target is not None and row.reaches_target is None:
        parts.append(f"the target not judged: probe too short ({r.samples:,} samples)")
    if row.reaches_target is not None:
        parts.append(f"~{need:,.0f} samples to {100 * target:g} %" if row.reaches_target
                     else f"fit stays below {100 * target:g} % within the job")
        if fit:
            parts.append(f"extrapolated: fit of {len(r.eval_curve['samples'])} evaluations up "
                         f"to {r.samples:,} samples")
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


def justify(rows: Sequence[Row], *, job: dict[str, Any], basis: PriceBasis) -> str:
    """One paragraph, computed from the numbers, on why the top row is ranked first."""
    ok = [r for r in rows if r.status == "ok"]
    if not ok:
        return "No configuration could be measured, so there is nothing to recommend."
    best, target = ok[0], job.get("target_accuracy")
    reached = target is not None and best.reaches_target
    goal = (f"reach {100 * target:g} % test accuracy" if reached
            else f"train the job ({job['samples']:,} samples)")
    text = []
    if target is not None and not reached:
        text.append(_target_not_predicted(ok, target, job["epochs"]))
    probes = (f"the median of its {best.probes} probes" if best.probes > 1
              else "its one probe")
    text.append(f"{best.label} is predicted to {goal} in {best.predicted_seconds:.3g} s (set-up "
                f"{best.setup_seconds:.1f} s, then {best.samples_per_second:,.0f} samples/s, "
                f"{probes}) for {money(best.predicted_cost)} ({basis.describe()}; "
                f"{best.average_watts:.0f} W, {best.energy_source.split(':')[0]}).")
    faster = [r for r in ok[1:] if r.predicted_seconds < best.predicted_seconds]
    if faster:
        f = min(faster, key=lambda r: r.predicted_seconds)
        why = (f.listed_after if f.listed_after else
               "it is not expected to reach the target" if reached and f.reaches_target is False
               else "its probe was too short to tell whether it reaches the target")
        text.append(f"{f.label} would be sooner ({f.predicted_seconds:.3g} s) but {why}.")
    cheapest = min(ok, key=lambda r: r.predicted_cost)
    if cheapest is not best and cheapest.predicted_cost < 0.95 * best.predicted_cost:
        text.append(f"The cheapest is {cheapest.label} at {money(cheapest.predicted_cost)} "
                    f"({cheapest.average_watts:.0f} W).")
    if reached:
        text.append("Samples to the target are read off the probes' evaluations, extrapolated "
                    "by a fit (acc = A - B/sqrt(samples)) where no probe reached it: a rough "
                    "guide, unlike the measured throughput.")
    return " ".join(text)
