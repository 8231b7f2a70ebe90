"""ipywidgets controls for the notebooks. They only *set* values; training runs elsewhere.

A notebook builds the controls from its ``parameters`` cell, displays them, and an ordinary
cell below reads them with :func:`read_controls` and trains. Headless (papermill, nbval)
nobody moves a slider, so the run trains with the parameter defaults::

    controls = training_controls(method="hogwild", total_epochs=4, processes=2)
    controls                      # shows the widgets in JupyterLab
    # --- next cell ---
    v = read_controls(controls)   # {'method': 'hogwild', 'processes': 2, ...}
"""
from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as W

from .utils import CosttrainError, num_cores

METHODS = ("baseline", "hogwild", "ps-sync", "ps-async")
_STYLE = {"description_width": "150px"}
_LAYOUT = W.Layout(width="460px")


def epoch_splits(total_epochs: int) -> list[tuple[int, int]]:
    """Every ``(processes, epochs_per_process)`` whose product is `total_epochs`."""
    if not isinstance(total_epochs, int) or total_epochs < 1:
        raise CosttrainError(f"total_epochs must be an integer >= 1, got {total_epochs!r}.")
    return [(p, total_epochs // p) for p in range(1, total_epochs + 1) if total_epochs % p == 0]


def method_control(value: str = "hogwild", methods: Sequence[str] = METHODS) -> W.Dropdown:
    """Which training method to run."""
    if value not in methods:
        raise CosttrainError(f"method must be one of {tuple(methods)}, got {value!r}.")
    return W.Dropdown(options=list(methods), value=value, description="method",
                      style=_STYLE, layout=_LAYOUT)


def count_control(value: int = 2, *, description: str = "workers",
                  max_value: int | None = None) -> W.IntSlider:
    """A whole number such as processes, workers or threads (1 .. max(2 x cores, value))."""
    if not isinstance(value, int) or value < 1:
        raise CosttrainError(f"{description} must be an integer >= 1, got {value!r}.")
    hi = max(value, max_value or 2 * num_cores(), 2)
    return W.IntSlider(value=value, min=1, max=hi, description=description, style=_STYLE,
                       layout=_LAYOUT)


def split_control(total_epochs: int = 4, processes: int = 2) -> W.SelectionSlider:
    """Processes x epochs-per-process at constant total work; value ``(processes, epochs)``."""
    splits = epoch_splits(total_epochs)
    if processes not in [p for p, _ in splits]:
        raise CosttrainError(f"{processes} processes cannot share {total_epochs} epochs evenly; "
                             f"pick one of {[p for p, _ in splits]}.")
    options = [(f"{p} process{'es' if p > 1 else ''} x {e} epoch{'s' if e > 1 else ''}", (p, e))
               for p, e in splits]
    return W.SelectionSlider(options=options, value=(processes, total_epochs // processes),
                             description="split", style=_STYLE, layout=_LAYOUT)


def batch_size_control(value: int = 64) -> W.Dropdown:
    """Mini-batch size per step and worker (powers of two, plus `value`)."""
    if not isinstance(value, int) or value < 1:
        raise CosttrainError(f"batch size must be an integer >= 1, got {value!r}.")
    options = sorted({2 ** k for k in range(3, 11)} | {value})
    return W.Dropdown(options=options, value=value, description="batch size", style=_STYLE,
                      layout=_LAYOUT)


def lr_control(value: float = 0.01) -> W.FloatLogSlider:
    """SGD learning rate on a log scale (1e-4 .. 1)."""
    if not 0 < value <= 1:
        raise CosttrainError(f"learning rate must be in (0, 1], got {value!r}.")
    return W.FloatLogSlider(value=value, base=10, min=-4, max=0, step=0.1, readout_format=".4f",
                            description="learning rate", style=_STYLE, layout=_LAYOUT)


def average_every_control(value: int = 8) -> W.SelectionSlider:
    """Local SGD's H: local steps between two model averages (powers of two, plus `value`)."""
    if not isinstance(value, int) or value < 1:
        raise CosttrainError(f"average_every must be an integer >= 1, got {value!r}.")
    options = sorted({2 ** k for k in range(0, 8)} | {value})
    return W.SelectionSlider(options=options, value=value, description="average every H steps",
                             style=_STYLE, layout=_LAYOUT)


def link_control(value: str = "wifi") -> W.Dropdown:
    """A network link preset for predictions (``lan``, ``wifi``, ``wan``)."""
    from .network import LINKS
    if value not in LINKS:
        raise CosttrainError(f"link must be one of {tuple(LINKS)}, got {value!r}.")
    return W.Dropdown(options=[(LINKS[k].describe(), k) for k in LINKS], value=value,
                      description="link (predicted)", style=_STYLE, layout=_LAYOUT)


class Controls(W.VBox):
    """A column of named controls; ``read_controls(c)`` returns their current values."""

    def __init__(self, controls: dict[str, W.ValueWidget], title: str | None = None) -> None:
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        super().__init__(header + list(controls.values()))
        self.controls = controls

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, w in self.controls.items():
            if name == "split":
                out["processes"], out["epochs_per_process"] = w.value
            else:
                out[name] = w.value
        return out


def training_controls(*, method: str | None = None, methods: Sequence[str] = METHODS,
                      total_epochs: int | None = None, processes: int | None = None,
                      workers: int | None = None, threads: int | None = None,
                      batch_size: int | None = 64, lr: float | None = 0.01,
                      average_every: int | None = None, link: str | None = None,
                      title: str | None = "Pick values, then run the next cell") -> Controls:
    """Controls for the values given (``None`` leaves one out).

    ``total_epochs`` with ``processes`` gives the split slider (processes x epochs per process
    at constant total work); ``processes`` alone gives a plain slider.
    """
    c: dict[str, W.ValueWidget] = {}
    if method is not None:
        c["method"] = method_control(method, methods)
    if total_epochs is not None and processes is not None:
        c["split"] = split_control(total_epochs, processes)
    elif processes is not None:
        c["processes"] = count_control(processes, description="processes")
    if workers is not None:
        c["workers"] = count_control(workers, description="workers")
    if threads is not None:
        c["threads"] = count_control(threads, description="threads", max_value=2 * num_cores())
    if batch_size is not None:
        c["batch_size"] = batch_size_control(batch_size)
    if lr is not None:
        c["lr"] = lr_control(lr)
    if average_every is not None:
        c["average_every"] = average_every_control(average_every)
    if link is not None:
        c["link"] = link_control(link)
    if not c:
        raise CosttrainError("training_controls needs at least one value to control.")
    return Controls(c, title)


def read_controls(controls: Controls) -> dict[str, Any]:
    """The values the controls hold now (their defaults when nobody touched them)."""
    return controls.values()
