"""Figures. The package never picks a matplotlib backend; it saves figures explicitly."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .result import RunResult


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
    ax.legend(fontsize=8)
    return save_figure(fig, path) if path else fig
