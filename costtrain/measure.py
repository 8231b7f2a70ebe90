"""One definition of every figure a run reports, measured the same way for every trainer.

* **set-up** (``setup_seconds``): from the call until the first training step of any worker,
  as a *one-off* run pays it: starting worker processes included. When a run reused warm
  workers (a second Hogwild! call in one kernel), the start-up those workers cost when they
  were started is added back, so no configuration's set-up depends on what ran before it.
* **warm set-up** (``warm_setup_seconds``): what a re-run in the same Python process pays
  (the set-up less the wait for worker processes to start).
* **train** (``train_seconds``): from the first training step to the end of the last
  worker's training, less the evaluation pauses (during which no worker trains).
* **eval** (``eval_seconds``): evaluation time that did not overlap training. Every
  trainer's periodic evaluation (``eval_every``) is a pause in which no worker trains, and
  reads the same fixed, stratified slice of the test set
  (:func:`costtrain.train.engine.eval_slice`, 2,000 images); the final accuracy reads the
  whole set.
* **total** (``total_seconds``): the measured wall time of the call, plus the start-up a
  reused warm worker did not pay again; equal to the measured wall (``wall_seconds``) for a
  one-off (cold) run. Never a sum of parts. Cost and energy use it.
* **steady rate** (``steady_samples_per_second``): samples per second of the loss curve on the
  training clock after its first 20 % of points (:func:`steady_rate`).

What every method pays alike in the calling process — importing torch, loading the data,
``torch._dynamo`` (imported by torch at a process's first optimizer) — is done before the
clock starts (:func:`preload`).

The machine's load is read around every run (:class:`LoadWatch`): when other work used the
cores meanwhile (or the hypervisor stole time), the result says so and verdicts built on it
do not conclude. This module does not import torch.
"""
from __future__ import annotations

import functools
import importlib
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from .result import Curve, new_curve

F = TypeVar("F", bound=Callable[..., Any])

PRELOAD = ("torch._dynamo",)  # what torch imports lazily at a process's first optimizer
BUSY_OTHER_CORES = 0.25  # other work above this many cores on average: the machine was busy
BUSY_STEAL_SHARE = 0.05  # or the hypervisor stole more than this share of the CPU time


def preload() -> None:
    """Import what every method pays once per process, so that no run's clock includes it."""
    for name in PRELOAD:
        importlib.import_module(name)


# ------------------------------------------------------------------ machine load

def _tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its descendants (live or reaped)."""
    import psutil
    total = 0.0
    me = psutil.Process()
    procs = [me]
    try:
        procs += me.children(recursive=True)
    except psutil.Error:
        pass
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
    return total


def _machine_cpu() -> tuple[float, float, float]:
    """(busy, steal, all) CPU seconds of the whole machine since boot."""
    import psutil
    t = psutil.cpu_times()
    steal = getattr(t, "steal", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    everything = sum(t)  # guest times are already inside user on Linux; close enough elsewhere
    everything -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return everything - idle - steal, steal, everything


@dataclass
class LoadWatch:
    """Other work on the machine during a block: ``with LoadWatch() as w: ...; w.reading``."""

    reading: dict[str, Any] | None = None

    def __enter__(self) -> "LoadWatch":
        self._t, self._ours = time.perf_counter(), _tree_cpu_seconds()
        self._busy, self._steal, self._all = _machine_cpu()
        return self

    def __exit__(self, *exc) -> None:
        self.reading = self.read()

    def read(self) -> dict[str, Any]:
        wall = max(1e-9, time.perf_counter() - self._t)
        busy, steal, everything = _machine_cpu()
        ours = _tree_cpu_seconds() - self._ours
        other = max(0.0, (busy - self._busy) - ours)
        steal_share = (steal - self._steal) / max(1e-9, everything - self._all)
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = None
        return describe_load(other / wall, steal_share, os.cpu_count() or 1, load)


def describe_load(other_cores: float, steal_share: float, cores: int,
                  load_average: float | None = None) -> dict[str, Any]:
    """The load record of a run: other work in cores, stolen share, and whether it was busy."""
    busy = other_cores > BUSY_OTHER_CORES or steal_share > BUSY_STEAL_SHARE
    parts = []
    if other_cores > BUSY_OTHER_CORES:
        parts.append(f"other work used {other_cores:.1f} of {cores} cores")
    if steal_share > BUSY_STEAL_SHARE:
        parts.append(f"the hypervisor took {100 * steal_share:.0f} % of the CPU time")
    return dict(other_cores=round(other_cores, 3), steal_share=round(steal_share, 4),
                cores=cores, load_average=load_average, busy=busy,
                note="; ".join(parts))


def busy_note(results: list) -> str | None:
    """'the machine was busy: ...' naming the runs whose load record says busy, or None."""
    busy = [r for r in results if (r.extra.get("load") or {}).get("busy")]
    if not busy:
        return None
    worst = max(busy, key=lambda r: r.extra["load"]["other_cores"])
    names = ", ".join(dict.fromkeys(r.label for r in busy))
    return (f"the machine was busy during {names} ({worst.extra['load']['note']} during "
            f"{worst.label}): these numbers are not reliable; re-run when it is idle")


# ------------------------------------------------------------------ the call's clock

def timed(trainer: F) -> F:
    """Measure a trainer's call: wall time, one-off vs warm set-up, total, and machine load.

    The trainer sets ``setup_seconds`` (from its first line to its first training step),
    ``train_seconds`` and ``eval_seconds``; it may put ``waited`` (seconds spent waiting for
    worker processes to start) and ``unpaid`` (start-up of reused warm workers) in
    ``extra['startup']``. The same is done for the partial ``.result`` of an error.
    """
    @functools.wraps(trainer)
    def call(*args, **kwargs):
        preload()
        with LoadWatch() as watch:
            t = time.perf_counter()
            try:
                result = trainer(*args, **kwargs)
            except BaseException as exc:
                partial = getattr(exc, "result", None)
                if partial is not None and hasattr(partial, "setup_seconds"):
                    finish(partial, time.perf_counter() - t, watch.read())
                raise
            wall = time.perf_counter() - t
        return finish(result, wall, watch.reading)
    return call  # type: ignore[return-value]


def finish(result, wall: float, load: dict[str, Any] | None = None):
    """Fill the one-off / warm set-up, total and wall fields of `result` (see module doc)."""
    startup = result.extra.setdefault("startup", {})
    waited = float(startup.get("waited", 0.0))
    unpaid = float(startup.get("unpaid", 0.0))
    measured = result.setup_seconds
    result.wall_seconds = wall
    result.warm_setup_seconds = max(0.0, measured - waited)
    result.setup_seconds = measured + unpaid
    result.total_seconds = wall + unpaid
    startup.update(measured_setup=measured, waited=waited, unpaid=unpaid,
                   cold=unpaid == 0.0)
    if load is not None:
        result.extra["load"] = load
    return result


# --- figures read off a run's curves (pure arithmetic on lists: no torch) ---------------------

def steady_rate(curve: Curve, skip: float = 0.2) -> float:
    """Samples per second after the first `skip` fraction of points (warm-up excluded)."""
    s, t = curve.get("samples", []), curve.get("seconds", [])
    if len(s) < 2:
        return s[-1] / t[-1] if s and t and t[-1] > 0 else 0.0
    i = min(int(len(s) * skip), len(s) - 2)
    dt = t[-1] - t[i]
    return (s[-1] - s[i]) / dt if dt > 0 else 0.0


def on_training_clock(curve: Curve, pauses: list[tuple[float, float]]) -> Curve:
    """`curve` with each point's ``seconds`` less the pauses that ended before it."""
    out = {k: list(v) for k, v in curve.items()}
    out["seconds"] = [round(t - sum(min(b, t) - a for a, b in pauses if a < t), 4)
                      for t in curve.get("seconds", [])]
    return out


def merge_curves(curves: list[Curve]) -> Curve:
    """Interleave per-worker loss curves into one, by time, with cumulative samples."""
    pts = []
    for c in curves:
        prev = 0
        for s, sec, loss in zip(c["samples"], c["seconds"], c["loss"]):
            pts.append((sec, s - prev, loss))
            prev = s
    pts.sort()
    out = new_curve("samples", "seconds", "loss")
    total = 0
    for sec, ds, loss in pts:
        total += ds
        out["samples"].append(total)
        out["seconds"].append(sec)
        out["loss"].append(loss)
    return out


def time_to_accuracy(eval_curve: Curve, target: float) -> tuple[float | None, int | None]:
    """(training seconds, samples) at which held-out accuracy first reached `target` (0..1).

    Interpolated linearly between the last evaluation below the target and the first at or
    above it (evaluations are ``eval_every`` samples apart; reading only the evaluation points
    would make "who reached it first" a matter of where they fall). None when never reached.
    A trainer's curve holds the intermediate evaluations, read on the fixed slice of the test
    set (``extra['eval_slice']``), then the final accuracy on the whole set.
    """
    prev = (0.0, 0, None)
    for s, sec, acc in zip(eval_curve["samples"], eval_curve["seconds"], eval_curve["accuracy"]):
        if acc >= target:
            t0, s0, a0 = prev
            if a0 is None or acc <= a0:
                return sec, s
            f = (target - a0) / (acc - a0)
            return t0 + f * (sec - t0), round(s0 + f * (s - s0))
        prev = (sec, s, acc)
    return None, None
