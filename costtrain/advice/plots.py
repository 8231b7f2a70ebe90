"""Figures. The package never picks a matplotlib backend; it saves figures explicitly."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..result import RunResult


def _figure(figsize=(7, 4)):
    from matplotlib.figure import Figure  # a Figure object needs no backend or pyplot state
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def save_figure(fig, path: str | Path) -> Path:
    """Save `fig` (creating the folder) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_losses(results: Sequence[RunResult], path: str | Path | None = None, *,
                x: str = "samples", title: str = "Training loss"):
    """Training loss of each run against samples seen (``x='samples'``) or seconds."""
    fig, ax = _figure()
    for r in results:
        c = r.loss_curve
        if c["samples"]:
            ax.plot(c[x], c["loss"], label=r.label, lw=1.2)
    ax.set_xlabel("samples seen" if x == "samples" else "training seconds")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.figure.legend(fontsize=8, loc="outside right upper")  # beside the axes, never over data
    return save_figure(fig, path) if path else fig


def plot_accuracy_vs_time(results: Sequence[RunResult], path: str | Path | None = None, *,
                          target: float | None = None,
                          title: str = "Test accuracy vs wall time"):
    """Held-out accuracy of each run against wall seconds (set-up + training; evaluation
    time excluded), all methods on one chart; `target` (0..1) draws a dashed line."""
    fig, ax = _figure()
    for r in results:
        c = r.eval_curve
        if c.get("samples"):
            secs = [r.setup_seconds + s for s in c["seconds"]]
            ax.plot(secs, [100 * a for a in c["accuracy"]], marker="o", ms=3, lw=1.2,
                    label=r.label)
    if target is not None:
        ax.axhline(100 * target, ls="--", color="gray", lw=1, label=f"target {100 * target:g} %")
    ax.set_xlabel("wall seconds (set-up + training)")
    ax.set_ylabel("test accuracy %")
    ax.set_title(title)
    ax.figure.legend(fontsize=8, loc="outside right upper")  # beside the axes, never over data
    return save_figure(fig, path) if path else fig


def plot_cost_to_target(rows: Sequence, path: str | Path | None = None, *,
                        title: str = "Cost to target accuracy"):
    """Bars of cost to the target accuracy: RunResults with ``cost`` (attach_cost) or the
    rows of an :class:`~costtrain.advice.advise.Advice` (predicted); 'not reached' where it was not."""
    fig, ax = _figure()
    labels, costs = [], []
    for row in rows:
        if isinstance(row, RunResult):
            labels.append(row.label)
            costs.append(row.cost.get("cost_to_target"))
        elif getattr(row, "status", "ok") == "ok":
            labels.append(row.label)
            costs.append(row.predicted_cost if row.reaches_target is not False else None)
    from .cost import money
    bars = ax.bar(range(len(labels)), [c or 0.0 for c in costs], color="tab:blue")
    for bar, c in zip(bars, costs):
        ax.annotate("not reached" if c is None else money(c), (bar.get_x() + bar.get_width() / 2,
                    bar.get_height()), ha="center", va="bottom", fontsize=8)
    top = max((c for c in costs if c), default=0.0)
    ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("USD")
    ax.set_title(title)
    return save_figure(fig, path) if path else fig


def plot_worker_losses(result: RunResult, path: str | Path | None = None):
    """Each Hogwild! worker's loss against the samples it saw, plus all workers merged."""
    fig, ax = _figure()
    for rank, c in sorted(result.worker_curves.items(), key=lambda kv: int(kv[0])):
        ax.plot(c["samples"], c["loss"], label=f"worker {rank}", lw=1.0, alpha=0.8)
    ax.set_xlabel("samples seen by the worker")
    ax.set_ylabel("training loss")
    ax.set_title(f"{result.label}: loss per worker")
    ax.figure.legend(fontsize=8, loc="outside right upper")  # beside the axes, never over data
    return save_figure(fig, path) if path else fig
