"""The training methods, one row each: the only place that knows a method by its name.

A row names its trainer (``"module:function"``, imported only when a run needs it, so this
module, and the command line that reads it, import no torch), the option groups it adds to
``costtrain run`` (:mod:`costtrain.args`), how parsed arguments become trainer keywords, and
what :mod:`costtrain.advice.advise` probes, :mod:`costtrain.advice.compare` runs, :mod:`costtrain.advice.predict`
extrapolates and :mod:`costtrain.advice.network` models for it. docs/contributing.md (Adding a method)
shows how to add one.
"""
from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

Kwargs = dict[str, Any]
Plan = list[tuple[str, Kwargs]]  # (label, trainer keywords) of each configuration
CUDA_BATCH = 512  # advise's GPU probe at a larger batch (lr scaled by the same factor)
SERVER, ASYNC_SERVER, ALLREDUCE = "server", "async server", "all-reduce"  # network models


def _none(*_: Any) -> Plan:
    return []


@dataclass(frozen=True)
class Method:
    """One training method, as every front end sees it."""

    name: str  # costtrain run --method NAME
    title: str  # in sentences: "the parameter server"
    trainer: str  # "module:function", called as trainer(net, data, **keywords)
    options: tuple[str, ...]  # costtrain.args functions adding its option groups to `run`
    cli_kwargs: Callable[[argparse.Namespace], Kwargs]  # its own trainer keywords from `run`
    job_kwargs: Callable[[str, dict, int, int], Kwargs]  # (result method, config, threads,
    #                                  epochs) -> keywords that run the whole probed job
    results: tuple[str, ...] = ()  # RunResult.method values it produces (default: its name)
    in_process: bool = False  # trains in the calling process (no workers to start)
    levers: bool = False  # takes compile, amp, channels_last (costtrain.args.LEVER_OPTIONS)
    sgd_only: bool = False  # steps with SGD; no --optimizer
    also_starts: str = ""  # besides its workers, e.g. "the server"
    probes: Callable[[int, bool, int | None], Plan] = _none  # advise: (cores, gpu, machines)
    probe_defaults: Callable[[float], Kwargs] = lambda limit: {"epochs": 1}  # advise: a limit
    compare: Callable[[int, int], Plan] = _none  # compare: (total epochs, cores)
    network: dict[str, str] = field(default_factory=dict)  # result method -> network model
    prestart: Callable[[argparse.Namespace], int] = lambda args: 0  # processes it starts:
    #                 `costtrain run` starts the fork server (or spawns them) before torch
    run_label: Callable[[str, dict], str | None] = lambda method, config: None
    preload: tuple[str, ...] = ()  # modules a warm pool worker imports before its first run
    torchrun: str = ""  # "module:function" running one rank under torchrun (env://)
    entry: str = ""  # its torchrun entry point: python -m costtrain.ENTRY
    ranks: str = ""  # what its ranks do, in words (the torchrun entry's help)

    @property
    def result_methods(self) -> tuple[str, ...]:
        return self.results or (self.name,)

    def load(self, what: str = "trainer") -> Callable:
        """The trainer function, or with ``what="torchrun"`` its torchrun rank (imports its
        module, and torch)."""
        module, name = getattr(self, what).split(":")
        return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------- baseline
def _baseline_cli(a: argparse.Namespace) -> Kwargs:
    return dict(epochs=a.epochs, pipeline=a.pipeline)


def _baseline_job(method: str, config: dict, threads: int, epochs: int) -> Kwargs:
    kw = {"epochs": epochs, "threads": threads}
    if config.get("device", "cpu") != "cpu":
        kw["device"] = config["device"]
    if config.get("pipeline", "memory") != "memory":
        kw["pipeline"] = config["pipeline"]
    return kw


def _baseline_probes(cores: int, gpu: bool, machines: int | None) -> Plan:
    plan = [("baseline 1 thread", {"threads": 1})]
    if cores > 1:
        plan.append((f"baseline {cores} threads", {"threads": cores}))
    if gpu:  # a small net at batch 64 is launch-bound on a GPU: a larger batch too
        plan += [("baseline cuda", {"device": "cuda", "threads": 1}),
                 (f"baseline cuda batch {CUDA_BATCH}",
                  {"device": "cuda", "threads": 1, "batch_size": CUDA_BATCH})]
    return plan


def _baseline_compare(total_epochs: int, cores: int) -> Plan:
    return [("baseline 1 thread", dict(epochs=total_epochs, threads=1)),
            (f"baseline {cores} threads", dict(epochs=total_epochs, threads=cores))]


# ----------------------------------------------------------------------------- Hogwild!
def split_work(total_epochs: int, processes: int) -> Kwargs:
    """train_hogwild arguments doing `total_epochs` epochs of work with `processes` workers.

    ``full`` sharding with ``total_epochs // processes`` epochs each where that divides,
    else disjoint shards with ``total_epochs`` passes over each shard.
    """
    if total_epochs % processes == 0:
        return dict(processes=processes, epochs_per_process=total_epochs // processes)
    return dict(processes=processes, epochs_per_process=total_epochs, sharding="shard")


def _hogwild_cli(a: argparse.Namespace) -> Kwargs:
    return dict(processes=a.processes, epochs_per_process=a.epochs_per_process,
                sharding=a.sharding, pipeline=a.pipeline, timeout=a.timeout,
                collision_every=a.collision_every)


def _hogwild_job(method: str, config: dict, threads: int, epochs: int) -> Kwargs:
    return {"processes": config.get("processes"), "epochs_per_process": epochs,
            "sharding": "shard", "threads": threads}


def _hogwild_probes(cores: int, gpu: bool, machines: int | None) -> Plan:
    plan = [("hogwild cuda 2 processes", {"device": "cuda", "processes": 2, "sharding": "shard",
                                          "threads": 1})] if gpu else []
    procs = sorted({p for p in (2, 4, 8, 16, 32, 64) if p < cores} | {cores} - {1})
    return plan + [(f"hogwild {p} processes", {"processes": p, "sharding": "shard"})
                   for p in procs]


def _hogwild_compare(total_epochs: int, cores: int) -> Plan:
    """The original three configurations (1, 4 and 2 processes) plus one process per core,
    each doing `total_epochs` of work (:func:`split_work`)."""
    runs = []
    for p in dict.fromkeys([1, 4, 2, cores]):
        kw = split_work(total_epochs, p)
        runs.append((f"hogwild {split_label(kw)}", kw))
    return runs


def split_label(kw: Kwargs) -> str:
    """``P x E`` in epochs of the whole dataset, so that P x E is the total work: ``2x1``, or
    ``4x1/2 shards`` for 4 processes each making 2 passes over its quarter of the data."""
    from fractions import Fraction
    p, e = kw["processes"], kw["epochs_per_process"]
    if kw.get("sharding") != "shard":
        return f"{p}x{e}"
    return f"{p}x{Fraction(e, p)} shards"


def _hogwild_label(method: str, config: dict) -> str | None:
    if "processes" not in config:
        return None
    return f"{method} {config['processes']}x{config.get('epochs_per_process', '?')}"


# ------------------------------------------------------------- the distributed methods
def _dist_cli(a: argparse.Namespace) -> Kwargs:
    return dict(workers=a.workers, epochs=a.epochs, addr=a.addr, port=a.port,
                scale_lr=a.scale_lr)


def _dist_probe_defaults(limit: float) -> Kwargs:
    return {"epochs": 1, "timeout": max(5.0, min(60.0, limit))}


def _ps_cli(a: argparse.Namespace) -> Kwargs:
    return dict(_dist_cli(a), mode=a.mode, max_staleness=a.max_staleness, timeout=a.timeout)


def _ps_job(method: str, config: dict, threads: int, epochs: int) -> Kwargs:
    return {"mode": config.get("mode", method[len("ps-"):]), "workers": config.get("workers"),
            "epochs": epochs}


def _ps_probes(cores: int, gpu: bool, machines: int | None) -> Plan:
    return [(f"ps-{m} {w} workers", {"mode": m, "workers": w})
            for w in (sorted({2, cores - 1} - {0, 1}) if cores > 3 else [2])
            for m in ("sync", "async")]


def _ps_compare(total_epochs: int, cores: int) -> Plan:
    """Sync and async, one worker per core (plus the server); the baseline's momentum (0.5);
    sync scales the learning rate by the workers (its batch is that many times larger)."""
    kw = dict(workers=cores, epochs=total_epochs, momentum=0.5)
    return [("ps sync", dict(kw, mode="sync", scale_lr=True)), ("ps async", dict(kw, mode="async"))]


def _local_sgd_cli(a: argparse.Namespace) -> Kwargs:
    return dict(_dist_cli(a), average_every=a.average_every,
                timeout=60.0 if a.timeout is None else a.timeout)


def _local_sgd_job(method: str, config: dict, threads: int, epochs: int) -> Kwargs:
    return {"workers": config.get("workers"), "average_every": config.get("average_every"),
            "epochs": epochs}


def _local_sgd_probes(cores: int, gpu: bool, machines: int | None) -> Plan:
    """Only with `machines`: its figures predict the multi-machine set-ups (H = 8)."""
    return [("local-sgd 2 workers H=8", {"workers": 2, "average_every": 8})] if machines else []


# ------------------------------------------------------------------------- the registry
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("baseline", "the baseline", "costtrain.train.baseline:train_baseline",
           ("add_baseline_args", "add_lever_args"), _baseline_cli, _baseline_job,
           in_process=True, levers=True, probes=_baseline_probes, compare=_baseline_compare),
    Method("hogwild", "Hogwild!", "costtrain.train.hogwild:train_hogwild",
           ("add_hogwild_args", "add_lever_args"), _hogwild_cli, _hogwild_job, levers=True,
           probes=_hogwild_probes, compare=_hogwild_compare,
           probe_defaults=lambda limit: {"epochs_per_process": 1, "timeout": limit + 2.0},
           prestart=lambda a: a.processes if a.device == "cpu" else 0, run_label=_hogwild_label,
           preload=("costtrain.train.hogwild",)),
    Method("ps", "the parameter server", "costtrain.train.parameter_server:train_parameter_server",
           ("add_dist_args", "add_ps_args"), _ps_cli, _ps_job, results=("ps-sync", "ps-async"),
           sgd_only=True, also_starts="the server", probes=_ps_probes,
           probe_defaults=_dist_probe_defaults, compare=_ps_compare,
           network={"ps-sync": SERVER, "ps-async": ASYNC_SERVER},
           prestart=lambda a: a.workers + 1, preload=("costtrain.train.parameter_server",),
           torchrun="costtrain.train.parameter_server:run_under_torchrun",
           entry="parameter_server", ranks="rank 0 = server"),
    Method("local-sgd", "local SGD", "costtrain.train.local_sgd:train_local_sgd",
           ("add_dist_args", "add_local_sgd_args"), _local_sgd_cli, _local_sgd_job,
           sgd_only=True, probes=_local_sgd_probes, probe_defaults=_dist_probe_defaults,
           network={"local-sgd": ALLREDUCE}, prestart=lambda a: a.workers,
           preload=("costtrain.train.local_sgd",),
           torchrun="costtrain.train.local_sgd:run_under_torchrun", entry="local_sgd",
           ranks="every rank trains; rank 0 evaluates and reports"),
)}
NAMES = tuple(METHODS)
RESULT_METHODS = {r: m for m in METHODS.values() for r in m.result_methods}


DEFAULT = METHODS[NAMES[0]]  # costtrain run's default --method, the baseline


def preloads() -> tuple[str, ...]:
    """What a warm pool worker imports before its first run: every row's modules."""
    return tuple(dict.fromkeys(m for row in METHODS.values() for m in row.preload))


def find(name: str) -> Method | None:
    """The row of a method by its ``--method`` name or a result's method (``ps-sync``), or None."""
    return METHODS.get(name) or RESULT_METHODS.get(name)


def get(name: str) -> Method:
    """:func:`find`, refusing a name no row has."""
    row = find(name)
    if row is None:
        raise KeyError(f"unknown method {name!r}; the methods are {', '.join(NAMES)} (results: "
                       f"{', '.join(RESULT_METHODS)})")
    return row


def of_label(label: str) -> Method | None:
    """The method a run label such as ``ps sync`` or ``hogwild 2x1`` starts with, if any."""
    names = sorted([*RESULT_METHODS, *METHODS], key=len, reverse=True)
    return next((get(n) for n in names if label.startswith(n)), None)
