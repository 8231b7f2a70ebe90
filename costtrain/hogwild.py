"""Hogwild! (Niu, Recht, Ré and Wright, NIPS 2011): several processes update one shared model without locks.

The public face of the method: the native API and its loop from :mod:`costtrain.train.hogwild`
(read that module for how it works), and the original project's API from
:mod:`costtrain.train.legacy`, so that ``from costtrain.hogwild import train_model`` keeps working.
It sits above both: the loop does not know the original API, and the original API is built on
the loop (no import circle).
"""
from __future__ import annotations

from typing import Any

from .train import hogwild as hogwild_loop
from .train.hogwild import (SHARDINGS, Job, Source, share, split_work, train_hogwild,
                            train_source, worker)

__all__ = ["worker", "train_hogwild", "Source", "Job", "train_source", "split_work", "share",
           "SHARDINGS", "train_model", "log_elapsed_time", "chart_losses"]
LEGACY = ("train_model", "log_elapsed_time", "chart_losses")  # costtrain.train.legacy's, on first use


def __getattr__(name: str) -> Any:
    """The original API on first use (it loads the DataLoader machinery), and any other name the
    loop module has (``costtrain.hogwild.shard_indices`` from before the split)."""
    if name in LEGACY:
        from .train import legacy
        return getattr(legacy, name)
    if not name.startswith("_") and hasattr(hogwild_loop, name):
        return getattr(hogwild_loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
