"""One rank of a torchrun launch: the body of ``python -m costtrain.parameter_server`` and
``python -m costtrain.local_sgd``.

:func:`main` reads the method's options (:func:`costtrain.args.torchrun_parser`), loads the
data, runs this process's rank (the registry row's ``torchrun`` function) and, on rank 0,
prints the summary and writes ``--out``.
"""
from __future__ import annotations

import inspect
import os
import sys
from typing import Any, Callable

from . import methods
from .args import torchrun_parser
from .errors import CosttrainError
from .run.guards import DIVERGED
from .train.launch import torchrun_env


def main(method: str, argv: list[str] | None = None) -> int:
    """The torchrun entry of `method` (``ps``, ``local-sgd``): returns the exit code."""
    row = methods.get(method)
    return torchrun_main(torchrun_parser(row).parse_args(argv), row.title,
                         row.load("torchrun"))


def torchrun_main(args: Any, what: str, run: Callable[..., Any]) -> int:
    """The body of a torchrun entry (``python -m costtrain.parameter_server|local_sgd``).

    Checks the options every gloo method shares, loads the data, runs this rank with
    ``run(args.model, dataset, **options)`` (every keyword of `run` read from `args`); rank 0
    (the one that gets a RunResult back) prints the summary and writes ``--out``. Returns the
    process's exit code.
    """
    options = [p for p in inspect.signature(run).parameters.values()
               if p.kind == p.KEYWORD_ONLY]
    from .data.datasets import load_dataset
    rank = os.environ.get("RANK", "?")
    try:
        if args.device != "cpu":
            raise CosttrainError(f"{what} runs on CPU (gloo); use --device cpu.")
        if args.optimizer != "sgd":
            raise CosttrainError(f"{what} steps with SGD (--lr, --momentum); use --optimizer sgd.")
        torchrun_env()  # fail before loading data
        ds = load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed,
                          download=args.download)
        result = run(args.model, ds, **{p.name: getattr(args, p.name) for p in options})
    except CosttrainError as exc:
        print(f"costtrain: rank {rank}: error: {exc}", file=sys.stderr)
        return 2
    if result is None:
        return 0
    from .advice.report import summary
    print(summary(result), flush=True)
    if args.out:
        print(f"result: {result.save(args.out)}")
    return 0 if result.status == "ok" else 4 if result.status == DIVERGED else 3
