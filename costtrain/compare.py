"""The main job: every method on the same data and the same total work, side by side."""
from __future__ import annotations

from typing import Callable

from .baseline import train_baseline
from .cost import PriceBasis, attach_cost, price_basis
from .energy import EnergyMeter
from .data import Dataset, load_dataset
from .result import RunResult
from .utils import num_cores

Run = tuple[str, Callable[..., RunResult], dict]


def comparison_plan(total_epochs: int = 2, cores: int | None = None) -> list[Run]:
    """(label, trainer, kwargs) for each configuration, all doing `total_epochs` of work."""
    cores = cores or num_cores()
    plan: list[Run] = [
        ("baseline 1 thread", train_baseline, dict(epochs=total_epochs, threads=1)),
        (f"baseline {cores} threads", train_baseline, dict(epochs=total_epochs, threads=cores)),
    ]
    plan += _hogwild_plan(total_epochs, cores)
    plan += _ps_plan(total_epochs, cores)
    return plan


def _ps_plan(total_epochs: int, cores: int) -> list[Run]:
    """The parameter server, sync and async, one worker per core (plus the server).

    Same optimizer as the baseline (momentum 0.5); sync scales the learning rate by the
    number of workers (its batch is that many times larger).
    """
    from .parameter_server import train_parameter_server
    kw = dict(workers=cores, epochs=total_epochs, momentum=0.5)
    return [("ps sync", train_parameter_server, dict(kw, mode="sync", scale_lr=True)),
            ("ps async", train_parameter_server, dict(kw, mode="async"))]


def _hogwild_plan(total_epochs: int, cores: int) -> list[Run]:
    """The original three configurations (1, 4 and 2 processes) plus one process per core.

    ``p x e`` with ``p * e = total_epochs`` where `p` divides it; otherwise `p` disjoint
    shards, each process making `total_epochs` passes over its shard (the same total work).
    """
    from .hogwild import split_work, train_hogwild
    runs: list[Run] = []
    for p in dict.fromkeys([1, 4, 2, cores]):
        kw = split_work(total_epochs, p)
        label = f"hogwild {p}x{kw['epochs_per_process']}"
        runs.append((label + (" shards" if "sharding" in kw else ""), train_hogwild, kw))
    return runs


def run_comparison(data: Dataset | str = "fashion-mnist", *, model: str = "simple",
                   total_epochs: int = 2, subset: int | None = None, batch_size: int = 64,
                   lr: float | None = None, seed: int = 42, eval_every: int | None = None,
                   data_root: str | None = None, progress: bool = False,
                   only: list[str] | None = None,
                   on_result: Callable[[RunResult], None] | None = None,
                   target_accuracy: float | None = None,
                   price: PriceBasis | None = None,
                   on_start: Callable[[str], None] | None = None,
                   on_progress: Callable | None = None) -> list[RunResult]:
    """Run every configuration of :func:`comparison_plan` on one loaded dataset.

    Every result gets ``cost`` (:func:`costtrain.cost.attach_cost`): energy measured around
    the run (or estimated), its cost on the `price` basis (default: electricity) and the
    cost and time to `target_accuracy` (needs `eval_every`). ``lr`` None = the model's own.
    ``on_start(label)`` is called before each configuration, ``on_progress`` is handed to its
    trainer.
    """
    ds = data if isinstance(data, Dataset) else load_dataset(data, data_root, subset=subset,
                                                            seed=seed)
    results, price = [], price or price_basis()
    for label, trainer, kw in comparison_plan(total_epochs):
        if only and not any(label.startswith(o) for o in only):
            continue
        if on_start:
            on_start(label)
        with EnergyMeter(price.watts) as meter:
            r = trainer(model, ds, batch_size=batch_size, lr=lr, seed=seed,
                        eval_every=eval_every, progress=progress, on_progress=on_progress, **kw)
        r.label = label
        attach_cost(r, target_accuracy=target_accuracy, basis=price, energy=meter.reading)
        results.append(r)
        if on_result:
            on_result(r)
    return results
