"""Which configuration trains *your* model soonest and cheapest on *this* machine?

:func:`recommend` runs a short probe of each configuration that fits the machine (baseline
with 1 thread and with every core, Hogwild! with 2..cores processes, the parameter server in
sync and async mode, the GPU if there is one), all on the same slice of the data, within a
time budget. From each probe it takes the steady-state throughput, the set-up time, the power
draw and the accuracy progress, and :mod:`costtrain.advice.predict` extrapolates them to the whole
job and ranks the configurations.

Short probes measure throughput well and accuracy only roughly: the table says which.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import functools
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from .. import methods
from ..args import (add_data_args, add_optim_args, add_output_args, add_repeats_arg, positive_float,
                    positive_int)
from ..data.datasets import Dataset, load_dataset, stratified_subset
from ..data.models import build_model
from ..errors import gist
from ..methods import CUDA_BATCH  # noqa: F401 (the GPU probe's batch; public here too)
from ..result import RunResult, write_json_atomic
from ..train.engine import evaluate, loss_fn
from ..train.levers import cxx_compiler, has_conv, native_bf16, reset_compiled
from ..utils import CosttrainError, hardware_info, num_cores, num_threads, positive, whole
from .cost import (INSTANCES, PRICE_PER_KWH, PRICES_COMPILED, PriceBasis, as_fraction, attach_cost,
                   money, price_basis)
from .energy import LAPTOP_WATTS, EnergyMeter
from .network import PREDICTED, Link, get_link, predict_step, step_costs
from .noise import alternate, median_index, spread
from .payoff import Trial, Verdict, judge, pick
from .predict import Row, justify, rank_probes

MULTIPROCESS_SETUP_GUESS = 4.0  # seconds to start worker processes, until one is measured
PLAN_MARGIN = 0.8  # plan the probes to use this share of the budget left
RESERVE_SECONDS = 0.5  # kept back for ranking and printing
LEVER_SHARE = 0.5  # with levers=True: the share of the budget kept for probing the levers
NEAR = 1.25  # configurations predicted within this factor of the soonest are probed again
CONTENDERS = 3  # at most this many of them
REFINE_ROUNDS = 2  # at most this many more probes each, while the layouts' budget lasts
REFINE_SHARE = 0.35  # of the layouts' budget, kept back from the first probes for those
LEVER_MIN_BUDGET = 20.0  # below this budget the layouts get all of it and no lever is tuned
IN_PROCESS = "in process"  # probes that start no worker processes (a set-up guess apart)
COMPILE_GUESS = 20.0  # seconds torch.compile's first step takes, until one is measured


@dataclass
class Probe:
    """One configuration to try: a trainer and its keyword arguments."""

    label: str
    method: str  # a row of costtrain.methods
    kwargs: dict[str, Any]


def probe_plan(cores: int | None = None, gpu: bool | None = None,
               machines: int | None = None) -> list[Probe]:
    """The configurations worth probing on a machine with `cores` cores (and a GPU), best first;
    with `machines`, also local SGD (H = 8), whose figures predict the multi-machine set-ups."""
    cores = cores or num_cores()
    gpu = torch.cuda.is_available() if gpu is None else gpu
    return [Probe(label, m.name, kw) for m in methods.METHODS.values()
            for label, kw in m.probes(cores, gpu, machines)]


def network_variants(probes: list[RunResult], machines: int, link: Link | str,
                     basis: PriceBasis) -> list[RunResult]:
    """For each distributed probe, a copy whose throughput is the one *predicted* for
    `machines` machines on `link` (:mod:`costtrain.advice.network`); `machines` x the power."""
    link = get_link(link)
    out = []
    for r in probes:
        if r.status != "ok" or not r.extra.get("comm"):
            continue
        p = predict_step(step_costs(r), link, machines)
        v = copy.deepcopy(r)
        v.label = p.label
        v.config = dict(r.config, workers=machines)
        v.samples_per_second = v.steady_samples_per_second = p.samples_per_second
        watts = machines * (r.cost.get("average_watts") or basis.watts)
        v.cost = dict(r.cost, average_watts=watts, energy_source=f"estimated: {machines} machines")
        v.extra = dict(r.extra, network_prediction=p.to_dict())
        out.append(v)
    return out


def _trainer(method: str) -> tuple[Callable[..., RunResult] | None, str | None]:
    row = methods.get(method)
    try:
        return row.load(), None
    except (ImportError, AttributeError) as exc:
        return None, f"{row.trainer.replace(':', '.')} is not available ({exc})"


# ----------------------------------------------------------------------- the advice
@dataclass
class Advice:
    """Ranked predictions, the recommended configuration and why."""

    rows: list[Row]
    recommended: Row | None
    justification: str
    notes: list[str]
    probes: list[RunResult]
    job: dict[str, Any]
    basis: PriceBasis
    budget_seconds: float
    elapsed_seconds: float
    hardware: dict[str, Any] = field(default_factory=hardware_info)

    levers: LeverAdvice | None = None

    HEADERS = ("rank", "configuration", "predicted s [range]", "set-up s",
               "steady samples/s [range]", "probe acc %", "predicted cost", "mark")

    def table(self) -> str:
        from .report import format_table
        body = [[r.rank if r.status == "ok" else r.status, r.label, _seconds_cell(r),
                 round(r.setup_seconds, 2) if r.status == "ok" else None,
                 (f"{r.samples_per_second:,.0f}" + (f" ({PREDICTED})" if PREDICTED in r.label
                                                    else _range_text(r.rate_range, ",.0f")))
                 if r.status == "ok" else None,
                 None if r.probe_accuracy is None else
                 f"{100 * r.probe_accuracy:.1f}{_range_text(r.accuracy_range, '.1f', 100)}",
                 None if r.predicted_cost is None else money(r.predicted_cost),
                 r.listed_after and "listed after: learned less" or
                 (r.why if r.status != "ok" else "")]
                for r in self.rows]
        return format_table(body, self.HEADERS)

    def __str__(self) -> str:
        from .decision import CHART_FROM, CHART_TIMES, job_line, lines_of, verdict
        from .takeover import statements
        text = [f"Job: {job_line(self.job)}.", "", self.table(), ""]
        ok = [r for r in self.rows if r.status == "ok"]
        if self.recommended:
            word, sure = verdict(self)
            text += [f"{word}: {self.recommended.label}",
                     f"  Python:       {self.recommended.call()}",
                     f"  command line: {self.recommended.command()}", ""]
            text += [sure.replace("`", ""), ""] if sure else []
            if len(ok) > 1:
                text += ["Where each configuration takes over (predicted):"]
                text += [f"- {x}" for x in statements(
                    lines_of(self), self.recommended.label, self.job.get("train_samples") or 1,
                    CHART_FROM, CHART_TIMES * self.job["samples"])]
                text.append("")
        text.append(self.justification)
        if self.levers is not None:
            text += ["", str(self.levers)]
        text += [f"note: {n}" for n in self.notes]
        return "\n".join(text)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [dataclasses.asdict(r) for r in self.rows],
                "recommended": self.recommended.label if self.recommended else None,
                "justification": self.justification, "notes": self.notes, "job": self.job,
                "levers": self.levers.to_dict() if self.levers else None,
                "price_basis": self.basis.to_dict(), "budget_seconds": self.budget_seconds,
                "elapsed_seconds": self.elapsed_seconds, "hardware": self.hardware,
                "probes": [p.to_dict() for p in self.probes]}

    def save(self, path: str | Path) -> Path:
        """Write the advice (rows, probes, justification) as JSON, atomically."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Advice:
        """An advice saved by :meth:`save` (its card says when it is read on another machine)."""
        import json
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        fields = {f.name for f in dataclasses.fields(Row)}
        rows = [Row(**{k: (tuple(v) if k.endswith("_range") and v else v)
                       for k, v in r.items() if k in fields}) for r in d["rows"]]
        rec = next((r for r in rows if r.label == d.get("recommended")), None)
        probes = [RunResult.from_dict(p) for p in d.get("probes", [])]
        return cls(rows=rows, recommended=rec, justification=d.get("justification", ""),
                   notes=d.get("notes", []), probes=probes, job=d.get("job", {}),
                   basis=PriceBasis.from_dict(d["price_basis"]) if "price_basis" in d
                   else price_basis(), budget_seconds=d.get("budget_seconds", 0.0),
                   elapsed_seconds=d.get("elapsed_seconds", 0.0),
                   hardware=d.get("hardware", {}))


def _range_text(rng: tuple[float, float] | None, fmt: str, scale: float = 1.0) -> str:
    return "" if not rng else f" [{scale * rng[0]:{fmt}}-{scale * rng[1]:{fmt}}]"


def _seconds_cell(r: Row) -> float | str | None:
    """Predicted seconds, with the min-max over repeated probes when there were repeats."""
    if r.predicted_seconds is None:
        return None
    if r.predicted_range is None:
        return float(f"{r.predicted_seconds:.3g}")
    lo, hi = r.predicted_range
    return f"{r.predicted_seconds:.3g} ({lo:.3g}-{hi:.3g})"


# ----------------------------------------------------------------------- probing
def _net_maker(model: str | nn.Module | Callable[[], nn.Module],
               ds: Dataset) -> Callable[[], nn.Module | str]:
    """A function giving a fresh, identically initialised net for each probe."""
    if isinstance(model, str):
        build_model(model, ds.input_shape, ds.num_classes)  # fail early on a bad name
        return lambda: model
    if isinstance(model, nn.Module):
        return lambda: copy.deepcopy(model)
    if callable(model):
        net = model()
        if not isinstance(net, nn.Module):
            raise CosttrainError(f"model() must return a torch.nn.Module, got {type(net).__name__}.")
        return model
    raise CosttrainError("model must be a model name, an nn.Module, or a class/function that "
                         f"builds one with no arguments; got {type(model).__name__}.")


def _probe_data(ds: Dataset, samples: int, test_samples: int, seed: int) -> Dataset:
    train = stratified_subset(ds.train_y, samples, seed) if samples < len(ds.train_y) else None
    test = (stratified_subset(ds.test_y, test_samples, seed) if test_samples < len(ds.test_y)
            else None)
    return dataclasses.replace(
        ds, train_x=ds.train_x if train is None else ds.train_x[train].contiguous(),
        train_y=ds.train_y if train is None else ds.train_y[train].contiguous(),
        test_x=ds.test_x if test is None else ds.test_x[test].contiguous(),
        test_y=ds.test_y if test is None else ds.test_y[test].contiguous())


def _calibrate(make_net, ds: Dataset, batch_size: int, lr: float, steps: int = 8) -> tuple[float, float]:
    """(samples/s of one thread on this net, seconds of one evaluation of the probe test set)."""
    net = make_net()
    net = build_model(net, ds.input_shape, ds.num_classes) if isinstance(net, str) else net
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    with num_threads(1):
        for i in range(steps + 2):
            if i == 2:
                t0 = time.perf_counter()
            xb, yb = ds.train_x[:batch_size], ds.train_y[:batch_size]
            opt.zero_grad()
            loss_fn(net(xb), yb).backward()
            opt.step()
        rate = steps * len(yb) / max(time.perf_counter() - t0, 1e-6)
        t1 = time.perf_counter()
        evaluate(net, ds.test_x, ds.test_y)
    return rate, time.perf_counter() - t1


def recommend(model: str | nn.Module | Callable[[], nn.Module] = "simple",
              data: Dataset | str = "fashion-mnist", *, epochs: int | None = None,
              samples: int | None = None, target_accuracy: float | None = None,
              budget_seconds: float = 60.0, subset: int | None = None,
              data_root: str | None = None, batch_size: int = 64, lr: float = 0.01,
              seed: int = 42, probes: list[Probe] | None = None,
              instance: str | None = None, watts: float | None = None,
              price_per_kwh: float | None = None, prices: str | Path | None = None,
              probe_test_samples: int = 1000, progress: bool = True,
              repeats: int = 3, machines: int | None = None,
              link: Link | str = "lan", levers: bool = False,
              single_process_levers: dict[str, Any] | None = None,
              levers_why: str | None = None) -> Advice:
    """Probe each configuration briefly and predict the reader's job in each.

    The job is the one you mean to run: `data` (a name, with `subset`, or a loaded
    :class:`~costtrain.data.datasets.Dataset`) and `model`, for `epochs` passes over its
    training set, or `samples` samples (rounded up to whole epochs, which is what a command
    can run; the card says so). Probes are short slices of it, inside `budget_seconds`; the
    prediction is for the job: one-off time = set-up + samples / steady rate, the median over
    each configuration's `repeats` probes with their range (:mod:`costtrain.advice.predict`).

    Args:
        model: a model name, your ``nn.Module`` (copied for each probe) or a class/function
            that builds a fresh one with no arguments.
        target_accuracy: rank by predicted time to this test accuracy (0.85 or 85).
        budget_seconds: wall time for everything, data loading and probes included; probes
            that would not fit are skipped (and listed).
        probes: configurations to try (default :func:`probe_plan`).
        repeats: probes of each configuration, in turn (every probe once, then again: the
            budget is shared by all); 3 or more give each prediction a range.
        machines, link: also rank the parameter server and local SGD on this many machines
            joined by this link (``lan``, ``wifi``, ``wan`` or ``"300mbit,5ms"``); their rows
            are *predicted* from the probes' compute and communication
            (:mod:`costtrain.advice.network`).
        instance, watts, price_per_kwh, prices: the price basis (see :mod:`costtrain.advice.cost`).
        levers: then also tune the levers (:mod:`costtrain.train.levers`) on the recommended
            configuration, with at least 2 alternating repeats, in the last
            :data:`LEVER_SHARE` of the budget (budgets of :data:`LEVER_MIN_BUDGET` seconds or
            more); a lever is recommended only when it measured faster beyond noise and
            finishes the job sooner with its compile time counted (:mod:`costtrain.advice.payoff`).
        single_process_levers: levers the single-process configurations run with (e.g. what
            notebook 01b kept on this machine, ``{"channels_last": True}``); `levers_why`
            says where they come from, or why there are none.
    """
    t_start = time.perf_counter()
    _check_request(budget_seconds=budget_seconds, epochs=epochs, samples=samples,
                   repeats=repeats, machines=machines)
    target = as_fraction(target_accuracy)
    link = get_link(link)
    basis = price_basis(instance, watts=watts, price_per_kwh=price_per_kwh, prices=prices)
    ds = data if isinstance(data, Dataset) else load_dataset(data, data_root, subset=subset,
                                                            seed=seed)
    make_net = _net_maker(model, ds)
    job = job_spec(ds, model, epochs=epochs, samples=samples, target=target,
                   batch_size=batch_size, lr=lr, seed=seed, levers=single_process_levers,
                   levers_why=levers_why)
    notes: list[str] = []
    plan = list(probes) if probes is not None else probe_plan(machines=machines)
    usable = _usable(plan, repeats, single_process_levers or {}, notes)
    if levers and budget_seconds < LEVER_MIN_BUDGET:
        notes.append(f"levers not tuned: a budget of {budget_seconds:.1f} s leaves no time for them "
                     f"(they get {LEVER_SHARE:.0%} of a budget of at least {LEVER_MIN_BUDGET:g} s).")
        levers = False
    layout_budget = budget_seconds * (1 - LEVER_SHARE) if levers else budget_seconds
    probe_test = min(probe_test_samples, len(ds.test_y))
    run = functools.partial(_run_probe, make_net=make_net, batch_size=batch_size, lr=lr,
                            seed=seed, basis=basis, target=target)
    results, skipped, sizes = probe_all(usable, ds, job, run, t_start=t_start,
                                        budget=layout_budget, probe_test=probe_test,
                                        seed=seed, target=target, basis=basis, notes=notes,
                                        progress=progress)
    rows = rank_all(results, skipped, job, basis=basis, machines=machines, link=link,
                    notes=notes)
    ok = [r for r in rows if r.status == "ok"]
    lever_advice = None
    if levers and ok:
        lever_advice = _tune_pick(ok[0], usable, make_net, ds, probe_test=probe_test,
                                  batch_size=batch_size, lr=lr, seed=seed, basis=basis,
                                  target=target, repeats=max(2, repeats), notes=notes,
                                  seconds=budget_seconds - (time.perf_counter() - t_start)
                                  - RESERVE_SECONDS)
    probed = {r.label for r in results}
    unprobed = [p.label for p in skipped if p.label not in probed]
    fewer = [p.label for p in skipped if p.label in probed]
    if unprobed or fewer:
        notes.append(f"the budget left for probes ({budget_seconds:.1f} s) was spent: "
                     + "; ".join(x for x in (
                         unprobed and f"skipped {', '.join(unprobed)}",
                         fewer and f"fewer probes of {', '.join(fewer)}") if x)
                     + "; raise --budget-seconds for more.")
    if sizes:
        size = (f"{sizes[0]:,}" if min(sizes) == max(sizes)
                else f"{min(sizes):,} to {max(sizes):,} (smaller when time ran short)")
        notes.append(f"{len(results)} probe(s) of {size} training samples (stratified slices "
                     f"of the job's training set), {probe_test:,} test images for their "
                     "evaluations.")
    return Advice(rows=rows, recommended=ok[0] if ok else None,
                  justification=justify(rows, job=job, basis=basis), notes=notes,
                  probes=results, job=job, basis=basis, budget_seconds=budget_seconds,
                  elapsed_seconds=time.perf_counter() - t_start, levers=lever_advice)


def _check_request(*, budget_seconds: float, epochs: int | None, samples: int | None,
                   repeats: int, machines: int | None) -> None:
    """What recommend refuses before loading anything."""
    positive(budget_seconds, "budget_seconds", "seconds")
    if epochs is not None:
        whole(epochs, "epochs")
    if samples is not None:
        whole(samples, "samples")
        if epochs is not None:
            raise CosttrainError("give the job as epochs or as samples, not both.")
    whole(repeats, "repeats")
    if machines is not None:
        whole(machines, "machines")


def job_spec(ds: Dataset, model: Any, *, epochs: int | None, samples: int | None,
             target: float | None, batch_size: int, lr: float, seed: int,
             levers: dict[str, Any] | None = None, levers_why: str | None = None) -> dict:
    """The reader's job as the card states it and the commands run it: whole epochs of the
    training set (`samples` rounded up), its data options and levers."""
    n = len(ds.train_y)
    whole_epochs = max(1, math.ceil(samples / n)) if samples is not None else (epochs or 1)
    subset = ds.info.get("subset")
    return {"dataset": ds.name, "model": model if isinstance(model, str) else None,
            "train_samples": n, "subset": subset, "epochs": whole_epochs,
            "samples": whole_epochs * n, "asked_samples": samples,
            "target_accuracy": target, "batch_size": batch_size, "lr": lr, "seed": seed,
            "levers": {k: v for k, v in (levers or {}).items() if v}, "levers_why": levers_why}


def _usable(plan: list[Probe], repeats: int, single_levers: dict[str, Any],
            notes: list[str]) -> list[tuple[Probe, Callable]]:
    """(probe, trainer) of each configuration that can run here, repeated in turn (ABAB);
    the single-process ones with the carried levers."""
    usable = []
    for p in plan:
        fn, why = _trainer(p.method)
        if fn is None:
            notes.append(f"skipped {p.label}: {why}")
            continue
        row = methods.get(p.method)
        if single_levers and row.in_process and row.levers and p.kwargs.get("device", "cpu") == "cpu":
            p = Probe(f"{p.label} + {' + '.join(k for k, v in single_levers.items() if v)}",
                      p.method, {**p.kwargs, **single_levers})
        usable.append((p, fn))
    return [pf for _, pf in alternate(usable, repeats)]


def probe_all(usable: list, ds: Dataset, job: dict, run: Callable[..., RunResult], *,
              t_start: float, budget: float, probe_test: int, seed: int,
              target: float | None, basis: PriceBasis, notes: list[str],
              progress: bool) -> tuple[list[RunResult], list[Probe], list[int]]:
    """Size the probes to the budget, run them in turn, then probe the close contenders
    again (:func:`refine`); returns (results, skipped probes, samples of each probe)."""
    from ..run import pool
    pool.ready_server()  # as `costtrain run` has it: no probe pays the fork server's start
    seen: dict[str, int] = {}

    def seeded(p: Probe, fn, **kw) -> RunResult:
        """A probe with the next seed of its configuration: repeats differ in initialisation
        and data order, so their accuracy range measures that noise (the timing is unaffected)."""
        k = seen[p.label] = seen.get(p.label, -1) + 1
        return run(p, fn, seed=seed + k, **kw)

    probe_ds = _probe_data(ds, len(ds.train_y), probe_test, seed)
    rate1, eval_s = _calibrate(run.keywords["make_net"], probe_ds, job["batch_size"], job["lr"])
    kept_back = REFINE_SHARE * budget if len({p.label for p, _ in usable}) > 1 else 0.0
    left = budget - (time.perf_counter() - t_start)
    sizing: list[str] = []
    batch = job["batch_size"]
    planned, sized = _size_probes(list(usable), left - kept_back, rate1, eval_s, batch,
                                  len(ds.train_y), sizing)
    if len(sized) < len(usable):  # keeping time back would cost a configuration: don't
        kept_back, sizing = 0.0, []
        planned, sized = _size_probes(list(usable), left, rate1, eval_s, batch,
                                      len(ds.train_y), sizing)
    usable[:] = sized
    notes += sizing
    results: list[RunResult] = []
    skipped: list[Probe] = []
    sizes: list[int] = []
    setup_guess: dict[str, float] = {}
    from tqdm.auto import tqdm
    bar = tqdm(total=len(usable), desc="advise", unit="probe", disable=not progress, leave=False)
    for i, (p, fn) in enumerate(usable):
        left = budget - (time.perf_counter() - t_start) - RESERVE_SECONDS
        guesses = [_setup_guess(usable, k, setup_guess) for k in range(i, len(usable))]
        work = (PLAN_MARGIN * (left - kept_back) - sum(guesses)
                - 6 * eval_s * len(guesses)) / len(guesses)
        samples = max(min(planned, int(rate1 * work)), min(planned, 16 * batch))
        expect = guesses[0] + samples / rate1 + 6 * eval_s
        bar.set_postfix_str(f"{p.label}, {max(0, left):.0f} s left")
        if expect > left:
            skipped.append(p)
            bar.update(1)
            continue
        if not sizes or samples != sizes[-1]:
            probe_ds = _probe_data(ds, samples, probe_test, seed)
        r = seeded(p, fn, ds=probe_ds, samples=samples,
                   limit=min(left, max(2.5 * expect, expect + 6.0)))
        results.append(r)
        sizes.append(samples)
        if r.status == "ok" and not any(q.label == p.label for q, _ in usable[:i]):
            setup_guess[_kind(p)] = max(setup_guess.get(_kind(p), 0.0), r.setup_seconds)
        bar.update(1)
    bar.close()
    results += refine(results, usable, job, target, basis, notes,
                      run=lambda p, fn, n, limit: seeded(
                          p, fn, ds=_probe_data(ds, n, probe_test, seed), samples=n,
                          limit=limit),
                      seconds=budget - (time.perf_counter() - t_start) - RESERVE_SECONDS)
    return results, list({p.label: p for p in skipped}.values()), sizes


def rank_all(results: list[RunResult], skipped: list[Probe], job: dict, *, basis: PriceBasis,
             machines: int | None, link: Link, notes: list[str]) -> list[Row]:
    """The ranked rows of every probed configuration (and, with `machines`, the predicted
    multi-machine ones), then the skipped ones."""
    variants = []
    if machines:
        job.update(machines=machines, link=link.describe())
        notes.append(f"rows marked '{PREDICTED}' are predicted for {machines} machines on "
                     f"{link.describe()}: each machine computes like one probe worker, traffic "
                     "from the probe's measured bytes (see costtrain.advice.network); start "
                     "them with torchrun on every machine. The other rows are this machine, "
                     "measured.")
        variants = network_variants(median_probes(results), machines, link, basis)
    data = {k: job.get(k) for k in ("dataset", "model", "subset", "batch_size", "lr", "seed")}
    rows = rank_probes(results + variants, job_samples=job["samples"], epochs=job["epochs"],
                       target_accuracy=job["target_accuracy"], basis=basis, data=data)
    for row in rows:
        if PREDICTED in row.label:
            row.why = f"{PREDICTED} from a probe on this machine and the link; " + row.why
    probed = {r.label for r in results}
    return rows + [Row(p.label, p.method, {}, status="skipped", why="budget spent")
                   for p in skipped if p.label not in probed]


def _tune_pick(row: Row, usable: list, make_net, ds: Dataset, **kw) -> LeverAdvice | None:
    """Tune the levers on the recommended configuration (when it was probed on this machine)."""
    probe = next((p for p, _ in usable if p.label == row.label), None)
    if probe is None:
        kw["notes"].append("levers not tuned: the recommended configuration was not probed on "
                           "this machine (a predicted one); tune them with --machines left out.")
        return None
    advice = tune_levers(row, probe, _trainer(probe.method)[0], make_net, ds, **kw)
    if advice.pick is not None:
        row.job.update(advice.pick.trial.kwargs)
    return advice


def refine(results: list[RunResult], usable: list, job: dict, target: float | None,
           basis: PriceBasis, notes: list[str], *, run, seconds: float) -> list[RunResult]:
    """Probe the close contenders again while the layouts' budget lasts: more probes where the
    decision is.

    The configurations predicted within :data:`NEAR` of the soonest (at most
    :data:`CONTENDERS`; a short probe cannot tell them apart on a busy 2-core machine) are
    probed again in turn, each with its own first probe's samples, up to
    :data:`REFINE_ROUNDS` rounds, a round only when it fits in `seconds`; they are then ranked
    on their medians, with ranges. Returns the new probes (a failed one is left out and noted:
    the configuration keeps the probes that finished).
    """
    t0 = time.perf_counter()
    rows = [r for r in rank_probes(list(results), job_samples=job["samples"],
                                   epochs=job["epochs"], target_accuracy=target, basis=basis)
            if r.status == "ok" and r.predicted_seconds]
    near = [r for r in rows if r.predicted_seconds <= NEAR * rows[0].predicted_seconds][:CONTENDERS]
    if len(near) < 2:
        return []
    how = {p.label: (p, fn) for p, fn in usable}
    first = {r.label: r for r in reversed(results)}  # each label's first probe
    cost = {r.label: first[r.label].wall_seconds for r in near}  # what one more probe takes
    new: list[RunResult] = []
    for _ in range(REFINE_ROUNDS):
        if seconds - (time.perf_counter() - t0) < sum(cost.values()) / PLAN_MARGIN:
            break
        for row in near:
            p, fn = how[row.label]
            left = seconds - (time.perf_counter() - t0)
            r = run(p, fn, first[row.label].samples, min(left, 2.5 * cost[row.label] + 6.0))
            if r.status == "ok":
                new.append(r)
            else:
                notes.append(f"a repeat probe of {row.label} failed ({r.error}); it is ranked "
                             "on the probes that finished.")
    if new:
        more = {row.label: sum(r.label == row.label for r in new) for row in near}
        total = {k: v + sum(r.label == k for r in results) for k, v in more.items()}
        each = (f"{next(iter(more.values()))} more probe(s) each, {next(iter(total.values()))} in all"
                if len(set(more.values())) == 1 and len(set(total.values())) == 1 else
                ", ".join(f"{k} {more[k]} more, {total[k]} in all" for k in more))
        notes.append(f"{' and '.join(more)} were within {NEAR - 1:.0%} of each other after "
                     f"their first probes: probed again ({each}) and ranked on their medians.")
    return new


def median_probes(results: list[RunResult]) -> list[RunResult]:
    """One probe per configuration, the median by steady throughput (for the network
    what-if, which predicts from one probe's compute and bytes)."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.label, []).append(r)
    out = []
    for runs in groups.values():
        ok = [r for r in runs if r.status == "ok"]
        out.append(ok[median_index([r.steady_samples_per_second for r in ok])] if ok
                   else runs[0])
    return out


@dataclass
class LeverAdvice:
    """The levers measured on the recommended configuration, their verdicts and the pick."""

    configuration: str
    verdicts: list[Verdict]
    pick: Verdict | None
    samples: int  # per probe
    job_samples: float
    skipped: list[str] = field(default_factory=list)

    HEADERS = ("lever", "samples/s with (range)", "without (range)", "steady ratio",
               "one-off s", "break-even samples", "predicted job s", "verdict")

    def table(self) -> str:
        from .report import format_table
        body = [[v.trial.label, _range(v.trial.rates), _range(v.trial.base_rates),
                 f"{spread(v.trial.rates).median / spread(v.trial.base_rates).median:.2f}x",
                 round(v.trial.extra_setup, 1),
                 "never" if math.isinf(v.break_even) else f"{v.break_even:,.0f}",
                 round(v.job_seconds, 1), ("kept: " if v.kept else "dropped: ") + v.why]
                for v in self.verdicts]
        return format_table(body, self.HEADERS)

    def __str__(self) -> str:
        head = (f"Levers on {self.configuration} ({len(self.verdicts[0].trial.rates) if self.verdicts else 0} "
                f"alternating repeats of {self.samples:,} samples each; the job: "
                f"{self.job_samples:,.0f} samples):")
        lines = [head, self.table()] if self.verdicts else [head, "no lever could be measured"]
        if self.pick is not None:
            s = self.pick.speedup
            lines.append(f"Recommended levers: {self.pick.trial.label}: the job is expected to "
                         f"finish {s.median:.2f}x sooner ({s.low:.2f}-{s.high:.2f} over the "
                         f"repeats), {self.pick.job_seconds:.3g} s instead of "
                         f"{self.pick.base_seconds:.3g} s, one-off set-up included.")
        else:
            lines.append("Recommended levers: none (no lever measured faster beyond noise and "
                         "finished the job sooner).")
        lines += [f"not measured: {x}" for x in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"configuration": self.configuration, "samples": self.samples,
                "job_samples": self.job_samples, "skipped": self.skipped,
                "pick": self.pick.trial.label if self.pick else None,
                "verdicts": [dict(label=v.trial.label, kwargs=v.trial.kwargs, kept=v.kept,
                                  why=v.why, rates=v.trial.rates, base_rates=v.trial.base_rates,
                                  extra_setup=v.trial.extra_setup, ratio=v.ratio.median,
                                  speedup=dataclasses.asdict(v.speedup),
                                  break_even=v.break_even, job_seconds=v.job_seconds)
                             for v in self.verdicts]}


def _range(values: list[float]) -> str:
    s = spread(values)
    return f"{s.median:,.0f} ({s.low:,.0f}-{s.high:,.0f})"


def lever_plan(net: nn.Module, device: str = "cpu") -> list[tuple[str, dict[str, Any]]]:
    """(label, trainer keywords) of each lever this machine and `net` can use, cheapest first."""
    plan = []
    if has_conv(net):
        plan.append(("channels_last", {"channels_last": True}))
    if device == "cuda":
        plan += [("fp16", {"amp": "fp16"})] + (
            [("bf16", {"amp": "bf16"})] if torch.cuda.is_bf16_supported() else [])
    elif native_bf16()[0]:
        plan.append(("bf16", {"amp": "bf16"}))
    if device == "cuda" or cxx_compiler():
        plan.append(("compile", {"compile": True}))
    return plan


def tune_levers(row: Row, probe: Probe, fn, make_net, ds: Dataset, *, probe_test: int,
                batch_size: int, lr: float, seed: int, basis: PriceBasis, target: float | None,
                repeats: int, seconds: float, notes: list[str]) -> LeverAdvice:
    """Measure each lever on `row`'s configuration against itself without levers, alternating
    (base, lever 1, lever 2, ... then again), within `seconds`; judge them
    (:func:`costtrain.advice.payoff.judge`); if two or more paid, measure them together too."""
    t0 = time.perf_counter()
    job_samples = (row.predicted_seconds - row.setup_seconds) * row.samples_per_second  # the job's
    net = make_net()
    net = build_model(net, ds.input_shape, ds.num_classes) if isinstance(net, str) else net
    plan = lever_plan(net, probe.kwargs.get("device", "cpu"))
    skipped: list[str] = []
    per_run = row.setup_seconds + 1.0  # set-up and evaluations of one probe, roughly
    while plan:
        in_process = methods.get(probe.method).in_process
        compile_cost = COMPILE_GUESS * (repeats if in_process else 1) \
            if any("compile" in kw for _, kw in plan) else 0.0
        runs = repeats * (1 + len(plan))
        work = (PLAN_MARGIN * seconds - compile_cost - runs * per_run) / runs
        samples = int(min(len(ds.train_y), row.samples_per_second * work))
        if samples >= min(len(ds.train_y), 16 * batch_size):
            break
        label, _ = plan.pop()  # compile (the dearest) goes first
        skipped.append(f"{label} (the budget left, {seconds:.0f} s, is too small)")
    if not plan:
        return LeverAdvice(row.label, [], None, 0, job_samples, skipped)
    probe_ds = _probe_data(ds, samples, probe_test, seed)

    def measure(cands: list[tuple[str, dict]]) -> dict[str, list[RunResult]]:
        runs: dict[str, list[RunResult]] = {}
        for _, (label, kw) in alternate([("", {})] + cands, repeats):
            left = seconds - (time.perf_counter() - t0)
            expect = per_run + samples / row.samples_per_second \
                + (COMPILE_GUESS if "compile" in kw else 0.0)
            if left < min(expect, 2.0):
                break  # out of budget: the repeats so far are judged
            if "compile" in kw and methods.get(probe.method).in_process:
                reset_compiled()  # each repeat compiles again (the longest one is charged)
            p = Probe(label or row.label, probe.method, dict(probe.kwargs, **kw))
            limit = min(left, max(2.5 * expect, expect + 6.0))
            runs.setdefault(label, []).append(
                _run_probe(p, fn, make_net=make_net, ds=probe_ds, samples=samples,
                           batch_size=batch_size, lr=lr, seed=seed, basis=basis, target=target,
                           limit=limit))
        return runs

    def trials(runs: dict[str, list[RunResult]], cands) -> list[Trial]:
        base = runs.get("", [])
        out = []
        for label, kw in cands:
            pairs = [(r, b) for r, b in zip(runs.get(label, []), base)
                     if r.status == "ok" and b.status == "ok"]
            if not pairs:
                why = next((r.error for r in runs[label] if r.status != "ok"), "no repeat ran")
                skipped.append(f"{label} ({(why or '').splitlines()[0]})")
                continue
            extra = max(r.compile_seconds for r, _ in pairs)
            out.append(Trial(label, [r.steady_samples_per_second for r, _ in pairs],
                             [b.steady_samples_per_second for _, b in pairs], extra, kw,
                             spread([r.test_accuracy for r, _ in pairs]).median,
                             spread([b.test_accuracy for _, b in pairs]).median))
        return out

    setup = row.setup_seconds
    verdicts = [judge(t, job_samples=job_samples, base_setup=setup)
                for t in trials(measure(plan), plan)]
    kept = [v for v in verdicts if v.kept]
    if len(kept) >= 2:
        used = time.perf_counter() - t0
        if seconds - used > used / (1 + len(plan)) * 2 * 1.2:  # base + combination, repeated
            combo = (" + ".join(v.trial.label for v in kept),
                     {k: x for v in kept for k, x in v.trial.kwargs.items()})
            verdicts += [judge(t, job_samples=job_samples, base_setup=setup)
                         for t in trials(measure([combo]), [combo])]
        else:
            notes.append(f"levers {', '.join(v.trial.label for v in kept)} each paid; the "
                         "budget left no time to measure them together, so only the best one "
                         "is recommended (raise --budget-seconds).")
    return LeverAdvice(row.label, verdicts, pick(verdicts), samples, job_samples, skipped)


def _kind(p: Probe) -> str:
    return IN_PROCESS if methods.get(p.method).in_process else "processes"


WARM_SETUP_GUESS = 0.3  # a repeat probe of a multi-process configuration: its workers are warm


def _setup_guess(entries: list, i: int, measured: dict[str, float]) -> float:
    """Wall seconds of set-up the `i`-th probe will take before it trains: a configuration's
    first probe starts its workers (measured, else guessed); its repeats find them warm."""
    p = entries[i][0]
    if any(q.label == p.label for q, _ in entries[:i]) and _kind(p) != IN_PROCESS:
        return WARM_SETUP_GUESS
    return measured.get(_kind(p), 0.5 if _kind(p) == IN_PROCESS else MULTIPROCESS_SETUP_GUESS)


def _size_probes(usable: list, seconds_left: float, rate1: float, eval_s: float,
                 batch_size: int, n_train: int, notes: list[str]) -> tuple[int, list]:
    """Samples per probe so that every probe fits the budget; drop the last ones (repeats
    first: the list runs every configuration once before any again) if none can.

    Later probes get fewer samples when earlier ones took longer than planned."""
    min_samples = min(n_train, 16 * batch_size)
    dropped: list[str] = []
    samples = min_samples
    while usable:
        overhead = sum(_setup_guess(usable, i, {}) for i in range(len(usable))) \
            + 6 * eval_s * len(usable)
        work = (PLAN_MARGIN * seconds_left - overhead) / len(usable)
        samples = int(min(n_train, rate1 * work))
        if samples >= min_samples or len(usable) == 1:
            samples = max(samples, min_samples)
            break
        dropped.append(usable.pop()[0].label)
    left = {p.label for p, _ in usable}
    for label in dict.fromkeys(dropped):
        if label in left:
            n = sum(p.label == label for p, _ in usable)
            notes.append(f"{label}: {n} probe(s), not {n + dropped.count(label)}: too little "
                         "budget for more.")
        else:
            notes.append(f"skipped {label}: too little budget for a useful probe.")
    return samples, usable


class ProbeTimeout(BaseException):
    """A probe used up its share of the budget (a BaseException, so no handler swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`ProbeTimeout` in this block after `seconds` (main thread, Unix only;
    elsewhere a no-op). Worker processes are cleaned up by :func:`costtrain.run.procs.run_workers`."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum, frame):
        raise ProbeTimeout()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _run_probe(p: Probe, fn, *, make_net, ds: Dataset, samples: int, batch_size: int,
               lr: float, seed: int, basis: PriceBasis, target: float | None,
               limit: float) -> RunResult:
    """Run one probe, stopped after `limit` seconds; any failure (an error, a lever that
    breaks inside torch) becomes a failed RunResult naming it; Ctrl-C still stops advise."""
    # one pass, and a worker timeout near `limit` (where the deadline below cannot interrupt)
    kwargs = dict(methods.get(p.method).probe_defaults(limit), **p.kwargs)
    bs = kwargs.pop("batch_size", batch_size)  # a GPU probe's larger batch: lr scaled alike
    log_every = max(1, samples // bs // 20)
    t0 = time.perf_counter()
    try:
        with EnergyMeter(basis.watts) as meter, deadline(limit):
            r = fn(make_net(), ds, batch_size=bs, lr=lr * bs / batch_size, seed=seed,
                   eval_every=max(bs, samples // 4), log_every=log_every,
                   progress=False, **kwargs)
    except ProbeTimeout:
        r = RunResult(method=p.method, config=kwargs, status="failed",
                      error=f"stopped: {samples:,} samples did not finish in "
                            f"{time.perf_counter() - t0:.1f} s (its share of the budget, "
                            "set-up included)")
    except Exception as exc:  # noqa: BLE001 a probe that fails is a finding, not the end
        # (a lever can fail anywhere inside torch, e.g. a corrupt compiler cache: "file too
        # short"): it is recorded, ranked last and named, and advise goes on
        r = RunResult(method=p.method, config=kwargs, status="failed",
                      error=f"{type(exc).__name__}: {gist(exc)}")
    if r.status == "failed":
        r.label = p.label
        return r
    r.label = p.label
    attach_cost(r, target_accuracy=target, basis=basis, energy=meter.reading)
    return r


def save_advice_figures(advice: Advice, folder: str | Path = "figures") -> list[Path]:
    """The probes' accuracy vs wall time and the predicted cost per configuration, as PNGs."""
    from .plots import plot_accuracy_vs_time, plot_cost_to_target
    target = advice.job.get("target_accuracy")
    goal = (f"to {100 * target:g} % accuracy" if target is not None
            else f"of {advice.job['epochs']} epoch(s)")
    folder = Path(folder)
    return [plot_accuracy_vs_time([p for p in advice.probes if p.status == "ok"],
                                  folder / "advise_accuracy_vs_time.png", target=target,
                                  title="Test accuracy vs wall time in the probes"),
            plot_cost_to_target(advice.rows, folder / "advise_cost.png",
                                title=f"Predicted cost {goal}, priced as {advice.basis.name}")]


# ----------------------------------------------------------------------- command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``costtrain advise``."""
    add_data_args(p)
    p.add_argument("--target-accuracy", type=positive_float, default=None,
                   help="rank by predicted time to this test accuracy (0.85 or 85)")
    p.add_argument("--budget-seconds", type=positive_float, default=120.0,
                   help="wall time for all probes, data loading included (default: %(default)s)")
    job = p.add_mutually_exclusive_group()
    job.add_argument("--epochs", type=positive_int, default=None,
                     help="your job: passes over the training data (--subset images, else all "
                          "of them; default: 1)")
    job.add_argument("--samples", type=positive_int, default=None,
                     help="your job as a number of samples (rounded up to whole epochs, which "
                          "is what the card's command runs)")
    add_optim_args(p, eval_every=False, full=False)
    c = p.add_argument_group("price (see costtrain.advice.cost)")
    c.add_argument("--price-per-kwh", type=positive_float, default=None,
                   help=f"electricity price in USD per kWh (default: {PRICE_PER_KWH:g})")
    c.add_argument("--watts", type=positive_float, default=None,
                   help="power draw used where energy cannot be measured "
                        f"(default: {LAPTOP_WATTS:g}, a laptop under load)")
    c.add_argument("--instance", default=None,
                   help="price as this on-demand cloud instance instead of electricity: "
                        f"{', '.join(INSTANCES)} (list prices of {PRICES_COMPILED}) or one "
                        "from --prices")
    c.add_argument("--prices", default=None,
                   help="JSON/TOML file with your own prices (else $COSTTRAIN_PRICES)")
    p.add_argument("--figures", default=None, metavar="DIR",
                   help="also write the decision card (decision_card.md and .png: the job, "
                        "the recommendation, time against job size) and the probes' figures "
                        "(advise_accuracy_vs_time.png, advise_cost.png) into DIR")
    add_repeats_arg(p, "probe", default=3)
    p.add_argument("--levers", action=argparse.BooleanOptionalAction, default=True,
                   help="then tune the levers (compile, bf16/fp16, channels_last, whichever this "
                        "machine and model can use) on the recommended configuration, in the "
                        f"last {100 * LEVER_SHARE:.0f} %% of the budget, and recommend only those "
                        "that "
                        "measured faster beyond noise and finish the job sooner with their "
                        "compile time counted (default: on, off with --machines; --no-levers: "
                        "layouts only)")
    n = p.add_argument_group("several machines (predicted)")
    n.add_argument("--machines", type=positive_int, default=None,
                   help="also rank the parameter server and local SGD on this many machines "
                        "(predicted from the probes' compute and measured bytes)")
    n.add_argument("--link", default="lan",
                   help="the network between them: lan (1 Gbit/s, 0.2 ms), wifi (100 Mbit/s, "
                        "3 ms), wan (50 Mbit/s, 40 ms) or BANDWIDTH,LATENCY such as 300mbit,5ms "
                        "(default: %(default)s)")
    add_output_args(p, "the advice and probes")


def run_cli(args: argparse.Namespace) -> None:
    """``costtrain advise``: probe, print the ranked table and the recommendation."""
    t0 = time.perf_counter()
    price_basis(args.instance, watts=args.watts, price_per_kwh=args.price_per_kwh,
                prices=args.prices)  # bad prices (and links) fail before the data loads
    get_link(args.link)
    ds = load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed,
                      download=args.download)
    print(f"data: {ds.name}, {len(ds.train_y):,} training / {len(ds.test_y):,} test images; "
          f"{num_cores()} cores, budget {args.budget_seconds:g} s", flush=True)
    left = args.budget_seconds - (time.perf_counter() - t0)  # the budget includes loading
    advice = recommend(args.model, ds, target_accuracy=args.target_accuracy,
                       budget_seconds=max(left, 0.1), epochs=args.epochs, samples=args.samples,
                       batch_size=args.batch_size, lr=0.01 if args.lr is None else args.lr,
                       seed=args.seed,
                       instance=args.instance, watts=args.watts,
                       price_per_kwh=args.price_per_kwh, prices=args.prices,
                       progress=not args.no_progress, repeats=args.repeats,
                       machines=args.machines, link=args.link,
                       levers=args.levers and not args.machines)
    print(advice)
    print(f"\ndata and probes took {time.perf_counter() - t0:.1f} s of the "
          f"{args.budget_seconds:g} s budget")
    if args.out:  # saved first: nothing computed is lost to a figure that fails
        print(f"advice: {advice.save(args.out)}")
    if args.figures:
        from .decision import decision_card
        for path in (*decision_card(advice, args.figures), *save_advice_figures(advice, args.figures)):
            print(f"figure: {path}")
    if advice.recommended is None:
        raise CosttrainError(f"nothing to recommend: no configuration could be probed within "
                             f"the budget of {args.budget_seconds:g} s (data loading included); "
                             "raise --budget-seconds.")
