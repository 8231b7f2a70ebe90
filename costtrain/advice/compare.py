"""The main job: every method on the same data and the same total work, side by side."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .. import methods
from ..data.datasets import Dataset, load_dataset
from ..measure import BUSY_OTHER_CORES, BUSY_STEAL_SHARE
from ..result import RunResult
from ..utils import num_cores, threads_per_process, whole
from .cost import PriceBasis, attach_cost, price_basis
from .energy import EnergyMeter
from .noise import alternate, first_verdict, median_index, speedup_verdict, spread
from .prose import one_run_sentence

Run = tuple[str, Callable[..., RunResult], dict]
BUSY_RERUNS = 2  # a configuration's busy repeats run again at most this often (see run_comparison)


def carry_levers(label: str, kwargs: dict, row: methods.Method,
                 levers: Mapping[str, Any] | None) -> tuple[str, dict]:
    """(label, kwargs) of a configuration with the single-process `levers` (e.g. what notebook
    01b kept, ``{"channels_last": True}``) when it trains in this process on the CPU and takes
    levers, its label suffixed as ``costtrain advise`` does (``baseline 2 threads +
    channels_last``); any other configuration unchanged."""
    kept = {k: v for k, v in (levers or {}).items() if v}
    if not kept or not (row.in_process and row.levers) or kwargs.get("device", "cpu") != "cpu":
        return label, kwargs
    return f"{label} + {' + '.join(kept)}", {**kwargs, **kept}


def comparison_plan(total_epochs: int = 2, cores: int | None = None,
                    single_process_levers: Mapping[str, Any] | None = None) -> list[Run]:
    """(label, trainer, kwargs) for each configuration, all doing `total_epochs` of work: each
    method's :attr:`~costtrain.methods.Method.compare` plan, in the registry's order; the
    in-process CPU configurations with `single_process_levers` (:func:`carry_levers`)."""
    cores = cores or num_cores()
    plan = []
    for m in methods.METHODS.values():
        for label, kw in m.compare(total_epochs, cores):
            label, kw = carry_levers(label, kw, m, single_process_levers)
            plan.append((label, m.load(), kw))
    return plan


def not_compared(total_epochs: int = 2, cores: int | None = None) -> list[methods.Method]:
    """The methods with no configuration in :func:`comparison_plan` (local SGD: notebook 05
    runs it, ``costtrain advise`` probes it only with ``--machines``)."""
    cores = cores or num_cores()
    return [m for m in methods.METHODS.values() if not m.compare(total_epochs, cores)]


def processes_started(label: str, kwargs: dict, cores: int | None = None) -> tuple[int, int, str]:
    """(processes, intra-op threads each, what besides the workers) a configuration of the
    plan starts: what :func:`costtrain.run.guards.check_threads` counts before it runs (the
    parameter server's server included)."""
    cores = cores or num_cores()
    row = methods.of_label(label) or methods.DEFAULT
    workers = kwargs.get("processes") or kwargs.get("workers") or 1
    also = row.also_starts if not row.in_process else ""
    processes = workers + (1 if also else 0)
    threads = kwargs.get("threads") or threads_per_process(processes, cores)
    return processes, threads, also


def oversubscribed(plan: Sequence[Run], cores: int | None = None) -> list[tuple[str, int, int, str]]:
    """(label, processes, threads each, what besides the workers) of each configuration of
    `plan` whose processes x threads exceed the cores: those costtrain warns about."""
    cores = cores or num_cores()
    out = []
    for label, _, kw in plan:
        processes, threads, also = processes_started(label, kw, cores)
        if processes * threads > cores:
            out.append((label, processes, threads, also))
    return out


def run_comparison(data: Dataset | str = "fashion-mnist", *, model: str = "simple",
                   total_epochs: int = 2, subset: int | None = None, batch_size: int = 64,
                   lr: float | None = None, seed: int = 42, eval_every: int | None = None,
                   data_root: str | None = None, progress: bool = False,
                   only: list[str] | None = None,
                   on_result: Callable[[RunResult], None] | None = None,
                   target_accuracy: float | None = None,
                   price: PriceBasis | None = None,
                   on_start: Callable[[str], None] | None = None,
                   on_progress: Callable | None = None, repeats: int = 1,
                   cold: bool = True,
                   single_process_levers: Mapping[str, Any] | None = None) -> list[RunResult]:
    """Run every configuration of :func:`comparison_plan` on one loaded dataset.

    Every result gets ``cost`` (:func:`costtrain.advice.cost.attach_cost`): energy measured around
    the run (or estimated), its cost on the `price` basis (default: electricity) and the
    cost and time to `target_accuracy` (needs `eval_every`). ``lr`` None = the model's own.
    ``on_start(label)`` is called before each configuration, ``on_progress`` is handed to its
    trainer.

    With ``repeats`` > 1 every configuration runs that many times, in turn (all of them once,
    then all again: a slow spell of the machine hits each alike); each configuration's result
    is its median run (by wall time) and ``extra['repeats']`` keeps every run's numbers
    (:func:`repeat_record`). `on_result` sees every run.

    A run during which the machine was busy (other work above
    :data:`~costtrain.measure.BUSY_OTHER_CORES` cores, or the hypervisor stealing more than
    :data:`~costtrain.measure.BUSY_STEAL_SHARE` of the CPU time) is run again at once, up to
    :data:`BUSY_RERUNS` times per configuration and ``len(plan) * repeats`` times in all; the
    busy runs are left out of the result (``extra['discarded_busy']``, counted in
    ``extra['busy_reruns']``), so the verdicts rest on quiet runs.

    ``cold`` (default): the warm Hogwild! pool is closed before every Hogwild! run, so each
    one starts its workers as a one-off run does and its total is its measured wall time;
    no configuration's numbers depend on which ran before it (the fork server the workers come
    from is made ready first, as ``costtrain run`` has it before its first step). Either way ``setup_seconds`` is
    the one-off set-up and ``warm_setup_seconds`` what a re-run in the same process pays.

    ``single_process_levers`` (e.g. what notebook 01b kept on this machine,
    ``{"channels_last": True}``): the in-process CPU configurations run with them, their labels
    suffixed (``baseline 2 threads + channels_last``), as ``costtrain advise`` probes them.
    """
    whole(repeats, "repeats")
    ds = data if isinstance(data, Dataset) else load_dataset(data, data_root, subset=subset,
                                                            seed=seed)
    price = price or price_basis()
    plan = comparison_plan(total_epochs, single_process_levers=single_process_levers)
    if only:  # in the order given
        plan = [run for o in only for run in plan if run[0].startswith(o)]
        plan = list({run[0]: run for run in plan}.values())
    runs: dict[str, list[RunResult]] = {label: [] for label, _, _ in plan}
    discarded: dict[str, list[dict]] = {label: [] for label, _, _ in plan}
    spare = len(plan) * repeats  # re-runs left in all (BUSY_RERUNS: per configuration)
    if cold:
        _ready_server()

    def run_once(label: str, trainer: Callable[..., RunResult], kw: dict) -> RunResult:
        if on_start:
            on_start(label)
        if cold:
            _close_pool()
        with EnergyMeter(price.watts) as meter:
            r = trainer(model, ds, batch_size=batch_size, lr=lr, seed=seed,
                        eval_every=eval_every, progress=progress, on_progress=on_progress, **kw)
        r.label = label
        attach_cost(r, target_accuracy=target_accuracy, basis=price, energy=meter.reading)
        if on_result:
            on_result(r)
        return r

    for _, (label, trainer, kw) in alternate(plan, repeats):
        r = run_once(label, trainer, kw)
        # other work competed for the cores: this repeat's numbers say little; run it again
        while was_busy(r) and len(discarded[label]) < BUSY_RERUNS and spare > 0:
            discarded[label].append(repeat_record(r))
            spare -= 1
            r = run_once(label, trainer, kw)
        runs[label].append(r)
    if cold:
        _close_pool()
    out = [median_run(rs) if repeats > 1 else rs[0] for rs in runs.values()]
    for r in out:
        r.extra["busy_reruns"] = len(discarded[r.label])
        if discarded[r.label]:
            r.extra["discarded_busy"] = discarded[r.label]
    return out


def was_busy(r: RunResult) -> bool:
    """Other work competed for the cores during `r` (:func:`costtrain.measure.describe_load`)."""
    return bool((r.extra.get("load") or {}).get("busy"))


def _close_pool() -> None:
    from ..run import pool
    pool.close_all()


def _ready_server() -> None:
    """Before cold runs: the fork server started and its imports done, as ``costtrain run`` has
    it by the time it calls a trainer (it starts it before importing torch), so that the first
    configuration pays no more start-up than the later ones (:mod:`costtrain.run.forkserver`)."""
    from ..run import pool
    pool.ready_server()


def repeat_record(r: RunResult) -> dict:
    """The numbers of one repeat kept in the median run's ``extra['repeats']``."""
    return dict(setup_seconds=r.setup_seconds, warm_setup_seconds=r.warm_setup_seconds,
                one_off_seconds=r.one_off_seconds,
                train_seconds=r.train_seconds, eval_seconds=r.eval_seconds,
                total_seconds=r.total_seconds, wall_seconds=r.wall_seconds,
                warm_total_seconds=r.warm_total_seconds, load=r.extra.get("load"),
                samples_per_second=r.samples_per_second,
                steady_samples_per_second=r.steady_samples_per_second,
                test_accuracy=r.test_accuracy, status=r.status,
                timed_out_after=r.extra.get("timed_out_after"),
                time_to_target_seconds=(r.cost or {}).get("time_to_target_seconds"))


def median_run(runs: list[RunResult]) -> RunResult:
    """The run with the median wall time, carrying every run's numbers in ``extra['repeats']``."""
    best = runs[median_index([r.total_seconds for r in runs])]
    best.extra["repeats"] = [repeat_record(r) for r in runs]
    return best


def repeats_of(r: RunResult, key: str) -> list:
    """Every repeat's value of `key` (e.g. ``total_seconds``), or the run's own for one run."""
    reps = r.extra.get("repeats")
    if reps:
        return [x.get(key) for x in reps]
    if key == "time_to_target_seconds":
        return [(r.cost or {}).get(key)]
    if key == "load":
        return [r.extra.get("load")]
    return [getattr(r, key)]


def counterpart(probe: RunResult, results: Sequence[RunResult]) -> RunResult | None:
    """The comparison's run of the configuration a ``costtrain advise`` probe (or any run)
    measured: the same method, processes and threads per process (their labels differ:
    ``hogwild 2 processes`` is ``hogwild 2x1`` here); None when the comparison did not run it."""
    def key(r: RunResult) -> tuple:
        return (r.method, (r.config or {}).get("processes", 1), r.threads)
    return next((r for r in results if key(r) == key(probe)), None)


def _bands(results: Sequence[RunResult]):
    """(lines, the soonest for this job, the range of job sizes) from the comparison's runs,
    or None when a configuration ran once (no band, no verdict)."""
    from .decision import CHART_FROM, CHART_TIMES
    from .takeover import Line
    ok = [r for r in results if r.status == "ok" and r.steady_samples_per_second > 0]
    if len(ok) < 2 or any(len(repeats_of(r, "setup_seconds")) < 2 for r in ok):
        return None
    lines = [Line.of(r.label, repeats_of(r, "setup_seconds"),
                     repeats_of(r, "steady_samples_per_second")) for r in ok]
    job = max(r.samples for r in ok)
    winner = min(lines, key=lambda ln: ln.seconds(job))
    return lines, winner.label, CHART_FROM, CHART_TIMES * job


def takeovers(results: Sequence[RunResult], epoch_samples: int) -> list[str]:
    """Where each configuration would take over from the soonest one as the job grows, from
    the comparison's own runs: one-off time = set-up + samples / steady rate, each
    configuration a band over its repeats (:mod:`costtrain.advice.takeover`), for jobs from
    one batch to 100x this one. [] when a configuration ran once (no band, no verdict)."""
    from .takeover import statements
    bands = _bands(results)
    if bands is None:
        return []
    lines, winner, lo, hi = bands
    return statements(lines, winner, epoch_samples, lo, hi)


def longer_job(results: Sequence[RunResult]) -> str:
    """:func:`costtrain.advice.takeover.longer_job` for the comparison's runs: what a job up
    to 100x this one changes, in one sentence ('' when a configuration ran once)."""
    from .takeover import longer_job as sentence
    bands = _bands(results)
    return "" if bands is None else sentence(*bands)


def busy_runs(results: list[RunResult]) -> list[RunResult]:
    """Results whose measurement (any repeat) ran while other work competed for the cores."""
    return [r for r in results if any((x or {}).get("busy") for x in repeats_of(r, "load"))]


def read_on(results: list[RunResult]) -> str:
    """``'read on a fixed slice of 2,000 of the 10,000 test images; '`` when the runs'
    evaluations were read on a slice (``extra['eval_slice']``), else ''."""
    cut = next((r.extra["eval_slice"] for r in results if r.extra.get("eval_slice")), None)
    if not cut or cut["samples"] >= cut["of"]:
        return ""
    return f"read on a fixed slice of {cut['samples']:,} of the {cut['of']:,} test images; "


def verdicts(results: list[RunResult], target: bool = False) -> list[str]:
    """The sentences under the comparison table, from the noise-aware helpers.

    Ranked first by the one-off time of the job, set-up + training (each configuration pays
    its own start-up; evaluation not counted): the definition ``costtrain advise`` and the
    decision card rank by (:attr:`~costtrain.result.RunResult.one_off_seconds`). Then end to
    end with the evaluations, then a re-run in the same process (warm workers), then (with a
    target accuracy) time to the target, interpolated between evaluations. One run each names
    no winner. Busy runs that :func:`run_comparison` re-ran are counted in a first line; if a
    kept run is still busy (the re-runs ran out), the verdicts are still given, after a line
    that marks them unreliable.
    """
    ok = [r for r in results if r.status == "ok"]
    if len(ok) < 2:
        return []
    notes = []
    reran = sum(r.extra.get("busy_reruns", 0) for r in results)
    if reran:
        notes.append(f"Re-ran {reran} run(s) during which the machine was busy (other work "
                     f"above {BUSY_OTHER_CORES:g} cores, or more than "
                     f"{100 * BUSY_STEAL_SHARE:g} % of the CPU time stolen), at most "
                     f"{BUSY_RERUNS} per configuration; the verdicts use the quiet runs.")
    busy = busy_runs(ok)
    if busy:  # it stayed busy: the ranking as measured, marked
        worst = max(busy, key=lambda r: max((x or {}).get("other_cores", 0.0)
                                            for x in repeats_of(r, "load")))
        load = max((x for x in repeats_of(worst, "load") if x), key=lambda x: x["other_cores"])
        names = ", ".join(r.label for r in busy)
        notes.append(f"Unreliable: the machine stayed busy during {names} ({load['note']} "
                     f"during {worst.label}) even after re-running; the ranking below is what "
                     "was measured, but re-run when the machine is idle to trust it.")
    if not any(r.extra.get("repeats") for r in ok):
        return notes + [one_run_sentence("One-off set-up + training",
                                         {r.label: r.one_off_seconds for r in ok})
                        + " (use --repeats 3 for a verdict)."]

    def ranked(key: str) -> list[RunResult]:
        return sorted(ok, key=lambda r: spread(repeats_of(r, key)).median)
    one_off, total, warm = (ranked(k) for k in ("one_off_seconds", "total_seconds",
                                                "warm_total_seconds"))
    out = ["One-off runs, set-up + training (each pays its own start-up; evaluation not "
           "counted, as `costtrain advise` predicts): " + speedup_verdict(
               one_off[0].label, repeats_of(one_off[0], "one_off_seconds"),
               one_off[1].label, repeats_of(one_off[1], "one_off_seconds"),
               "set-up + training") + "."]
    out.append("End to end, the evaluations included: " + speedup_verdict(
        total[0].label, repeats_of(total[0], "total_seconds"),
        total[1].label, repeats_of(total[1], "total_seconds")) + ".")
    out.append("If you re-run in this process or kernel (warm workers): " + speedup_verdict(
        warm[0].label, repeats_of(warm[0], "warm_total_seconds"),
        warm[1].label, repeats_of(warm[1], "warm_total_seconds")) + ".")
    if target:
        out.append(f"Time to the target accuracy ({read_on(ok)}one-off set-up + training, "
                   "interpolated between evaluations): " + first_verdict(
                       {r.label: repeats_of(r, "time_to_target_seconds") for r in ok},
                       "the target accuracy") + ".")
    return notes + out


def accuracy_by_seed(data: Dataset | str = "fashion-mnist", *, subset: int | None = 8000,
                     seeds: Sequence[int] = (1, 2, 3), workers: Sequence[int] = (2, 4),
                     modes: Sequence[str] = ("sync", "async"), epochs: int = 2,
                     lr: float = 0.01, momentum: float = 0.5, scale_lr: bool = True,
                     model: str = "simple",
                     on_result: Callable[[RunResult], None] | None = None) -> list[dict]:
    """Test accuracy of the baseline and each parameter-server configuration, seed by seed.

    The same data (`subset` images, loaded once), the same epochs, lr and momentum for all;
    the seeds are taken in turn (baseline, then each configuration, then the next seed).

    Returns one row per configuration: ``label``, ``lr`` (the server's), ``accuracies``
    (one per seed, 0..1), ``mean`` and ``vs_baseline`` (mean minus the baseline's mean).
    """
    train_baseline, train_parameter_server = methods.DEFAULT.load(), methods.get("ps").load()
    ds = data if isinstance(data, Dataset) else load_dataset(data, subset=subset, seed=0)
    configs = [("baseline", None, 0)] + [(f"ps {m} {k} workers", m, k) for k in workers
                                         for m in modes]
    acc: dict[str, list[float]] = {label: [] for label, _, _ in configs}
    server: dict[str, float] = {}  # the server's lr, as the run recorded it
    for seed in seeds:
        for label, mode, k in configs:
            kw = dict(epochs=epochs, lr=lr, momentum=momentum, seed=seed)
            if mode is None:  # one thread: accuracy is the point, and it degrades gently
                r = train_baseline(model, ds, threads=1, **kw)
            else:
                r = train_parameter_server(model, ds, mode=mode, workers=k, scale_lr=scale_lr,
                                           **kw)
            r.label = f"{label} seed {seed}"
            server[label] = r.config.get("server_lr", lr)
            acc[label].append(r.test_accuracy)
            if on_result:
                on_result(r)
    base = sum(acc["baseline"]) / len(acc["baseline"])
    rows = []
    for label, mode, k in configs:
        mean = sum(acc[label]) / len(acc[label])
        rows.append(dict(label=label, lr=server[label],
                         accuracies=acc[label], mean=mean, vs_baseline=mean - base))
    return rows
