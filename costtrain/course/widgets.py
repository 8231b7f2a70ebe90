"""Widgets for the notebooks: controls that set values, a Run button and a live plot.

The contract every notebook (and the browser test) relies on:

* ``panel = run_panel(name, train, **controls)`` builds a panel: the controls (see
  :func:`training_controls`), a **Run** button (``ipywidgets.Button``, CSS class
  ``costtrain-run``), a live plot (an ``ipywidgets.Image``, CSS class ``costtrain-live-plot``)
  and an ``Output``. Leave ``panel`` last in the cell to show it.
* ``train(values, live)`` is the notebook's own function: it trains with ``values`` (a dict of
  the controls' values) and hands ``live`` to the trainers as ``on_progress=live``.
* The cell below calls ``panel.run()``: it trains with the values the controls show, printing
  into that cell. Nobody moves a control when papermill runs the notebook, so headless runs
  train from the ``parameters`` values without a click. The **Run** button does the same into
  the panel's ``Output``, so the tables and figures are redrawn in place.
* Every run ends with one line ``settings used: key=value, ...`` (the values it trained with).
* Re-running the panel's cell (or Run All) keeps the student's last choice: each control's
  last value is remembered per panel name while the kernel lives (restart the kernel, or
  press **Reset**, to return to the ``parameters`` values).
* The live plot (training loss against seconds and against samples) is redrawn at a steady
  pace, once a second by default, from the moment a run starts until it ends, whatever the
  method and however often its workers report; when the run ends it adds the test accuracy it
  measured. Until the first report it says "starting ..." (no empty axes), and the line above
  it says what the run is doing: starting its worker processes, training, waiting for a report
  (evaluating), done.
* Text tables printed inside a panel keep their columns (no wrapping mid-number); elsewhere
  ``display(NoWrap(text))`` does the same.

The older two-cell form still works: ``controls = training_controls(...)`` in one cell,
``v = read_controls(controls)`` in the next.
"""
from __future__ import annotations

import io
import time
from typing import Any, Callable, Sequence

import ipywidgets as W

from .. import methods
from ..utils import CosttrainError, num_cores, whole

METHODS = tuple(methods.RESULT_METHODS)  # what a result names: baseline, hogwild, ps-sync, ...
_STYLE = {"description_width": "150px"}
_LAYOUT = W.Layout(width="460px")


def epoch_splits(total_epochs: int) -> list[tuple[int, int]]:
    """Every ``(processes, epochs_per_process)`` whose product is `total_epochs`."""
    whole(total_epochs, "total_epochs")
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
    whole(value, description)
    hi = max(value, max_value or 2 * num_cores(), 2)
    return W.IntSlider(value=value, min=1, max=hi, description=description, style=_STYLE,
                       layout=_LAYOUT)


def split_control(total_epochs: int = 4, processes: int = 2) -> W.SelectionSlider:
    """Processes x epochs-per-process at constant total work; value ``(processes, epochs)``."""
    splits = epoch_splits(total_epochs)
    if processes not in [p for p, _ in splits]:
        raise CosttrainError(f"{processes} processes cannot share {total_epochs} epochs evenly; "
                             f"pick one of {[p for p, _ in splits]}.")
    options = [(f"{p} × {e}", (p, e)) for p, e in splits]  # short: the readout is narrow
    return W.SelectionSlider(options=options, value=(processes, total_epochs // processes),
                             description="processes × epochs", style=_STYLE, layout=_LAYOUT)


def batch_size_control(value: int = 64) -> W.Dropdown:
    """Mini-batch size per step and worker (powers of two, plus `value`)."""
    whole(value, "batch size")
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


def toggle_control(value: bool = False, *, description: str) -> W.Checkbox:
    """An on/off lever such as ``torch.compile`` or ``channels_last``."""
    if not isinstance(value, bool):
        raise CosttrainError(f"{description} must be True or False, got {value!r}.")
    return W.Checkbox(value=value, description=description, style=_STYLE, layout=_LAYOUT)


AMP_CHOICES = ("off", "bf16", "fp16")  # "off" reads as amp=None


def amp_control(value: str = "off") -> W.Dropdown:
    """Mixed precision: ``off``, ``bf16`` or ``fp16`` (the trainers refuse what is slow here)."""
    if value not in AMP_CHOICES:
        raise CosttrainError(f"amp must be one of {AMP_CHOICES}, got {value!r}.")
    return W.Dropdown(options=list(AMP_CHOICES), value=value, description="mixed precision",
                      style=_STYLE, layout=_LAYOUT)


def link_control(value: str = "wifi") -> W.Dropdown:
    """A network link preset for predictions (``lan``, ``wifi``, ``wan``)."""
    from ..advice.network import LINKS
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
            elif name == "amp":
                out["amp"] = None if w.value == "off" else w.value
            else:
                out[name] = w.value
        return out


def training_controls(*, method: str | None = None, methods: Sequence[str] = METHODS,
                      total_epochs: int | None = None, processes: int | None = None,
                      workers: int | None = None, threads: int | None = None,
                      batch_size: int | None = 64, lr: float | None = 0.01,
                      average_every: int | None = None, link: str | None = None,
                      compile: bool | None = None, amp: str | None = None,
                      channels_last: bool | None = None,
                      title: str | None = "Pick values, then run the next cell") -> Controls:
    """Controls for the values given (``None`` leaves one out).

    ``total_epochs`` with ``processes`` gives the split slider (processes x epochs per process
    at constant total work); ``processes`` alone gives a plain slider. The levers:
    ``compile`` and ``channels_last`` give check boxes, ``amp`` (``"off"``, ``"bf16"``,
    ``"fp16"``) a menu whose ``"off"`` reads as ``amp=None``.
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
    if compile is not None:
        c["compile"] = toggle_control(compile, description="torch.compile")
    if amp is not None:
        c["amp"] = amp_control(amp)
    if channels_last is not None:
        c["channels_last"] = toggle_control(channels_last, description="channels_last")
    if not c:
        raise CosttrainError("training_controls needs at least one value to control.")
    return Controls(c, title)


def read_controls(controls: Controls) -> dict[str, Any]:
    """The values the controls hold now (their defaults when nobody touched them)."""
    return controls.values()


# ------------------------------------------------------------------ live plot and Run panel

def settings_words(values: dict[str, Any]) -> str:
    """``key=value, ...`` as the controls show them: ``amp=off`` where the trainer gets
    ``amp=None`` (the menu's word, the value a panel was built with)."""
    return ", ".join(f"{k}={'off' if k == 'amp' and v is None else v}" for k, v in values.items())


def _start_words() -> str:
    """How worker processes start here, in words: forked from the package's fork server
    (Linux) or spawned, each importing torch (elsewhere)."""
    from ..run import forkserver
    if forkserver.start_method() == "forkserver":
        return "forked from the package's fork server"
    return "each a fresh interpreter importing torch: seconds"


def ready_workers() -> str:
    """Start the fork server once, before a notebook's first measured multi-process run
    (:func:`costtrain.run.pool.ready_server`), and say in one line what that means for the
    set-ups measured after it."""
    from ..run.pool import ready_server
    seconds = ready_server()
    if seconds:
        return (f"the fork server that every worker below is forked from started in {seconds:.2f} "
                "s, once; a `costtrain run` starts it while it imports torch, so the runs below, "
                "like a one-off command, pay only forking their workers")
    return ("workers are spawned on this system (no fork server): each run's set-up below "
            "includes its workers' start-up, each a fresh Python interpreter that imports torch")


def starting_note(label: str) -> str:
    """What a run named `label` does before its first step, in words (the panel says it)."""
    import re
    procs = re.search(r"(\d+) ?x ?\d", label)
    workers = re.search(r"(\d+) ?(?:w\b|worker)", label)
    if procs:
        return f"starting {procs.group(1)} worker process(es) ({_start_words()})"
    row = methods.of_label(label)
    if workers:
        extra = f" and {row.also_starts}" if row and row.also_starts else ""
        return f"starting {workers.group(1)} worker process(es){extra} ({_start_words()})"
    if row and not row.in_process:
        return f"starting its worker processes ({_start_words()})"
    return "building the model and the first batches"


class LivePlot:
    """Training loss (and test accuracy) against seconds and samples, redrawn as a PNG.

    Pass it to a trainer as ``on_progress``; it is called ``(rank, new_samples, epoch,
    worker_samples, loss)`` and only records. ``start(label)`` begins a new curve and a ticker
    thread that redraws every `min_interval` seconds (slower if drawing would take more than
    the share `budget` of the time: drawing competes with the training it shows) until
    ``finish(result)`` adds the run's measured test accuracy; so every method's plot moves at
    the same steady pace, whether its workers report often or rarely. Until the first report
    the plot says "starting ..." instead of showing empty axes, and `status` (an HTML widget,
    optional) says in words what the run is doing.
    """

    IDLE_STOP = 600.0  # a ticker whose run never finished (an error) stops after this long

    def __init__(self, image: W.Image | None = None, min_interval: float = 1.0,
                 budget: float = 0.1, status: W.HTML | None = None) -> None:
        import threading
        self.image = image if image is not None else W.Image(format="png")
        self.status = status
        self.min_interval, self.budget, self.redraws, self.series = min_interval, budget, 0, {}
        self.label, self.t0, self.samples = "", time.perf_counter(), 0
        self.last_message = self.t0
        self.next_draw, self._fig = 0.0, None
        self._lock = threading.RLock()
        self._running = threading.Event()
        self._ticker: threading.Thread | None = None

    def say(self, text: str) -> None:
        """Show `text` as the run's activity (in `status`, when there is one)."""
        if self.status is not None:
            self.status.value = f"<span style='white-space: nowrap'>{text}</span>"

    def start(self, label: str) -> None:
        """Begin the curve of a new run (earlier runs stay, drawn thinner) and the ticker."""
        with self._lock:
            self.label, self.t0, self.samples = label, time.perf_counter(), 0
            self.last_message = self.t0
            self.series[label] = dict(seconds=[], samples=[], loss=[], acc_x=[], acc_s=[], acc=[])
        self.say(f"<b>{label}</b>: {starting_note(label)}...")
        self.draw()
        self._start_ticker()

    def _start_ticker(self) -> None:
        import threading
        self._running.set()
        if self._ticker is None or not self._ticker.is_alive():
            self._ticker = threading.Thread(target=self._tick, name="costtrain-live-plot",
                                            daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        """Redraw at a steady pace while a run is going (the ticker thread)."""
        while self._running.is_set():
            wait = self.next_draw - time.perf_counter()
            if wait > 0:
                time.sleep(min(wait, 0.2))
                continue
            if time.perf_counter() - self.last_message > self.IDLE_STOP:
                self._running.clear()
                break
            with self._lock:
                self._describe()
                self.draw()

    def _describe(self) -> None:
        """Put what the run is doing now into words."""
        now = time.perf_counter()
        s = self.series.get(self.label, {})
        if not s.get("loss"):
            self.say(f"<b>{self.label}</b>: {starting_note(self.label)}... {now - self.t0:.0f} s")
        elif now - self.last_message > max(3.0, 3 * self.min_interval):
            self.say(f"<b>{self.label}</b>: {self.samples:,} samples trained; no report for "
                     f"{now - self.last_message:.0f} s (evaluating, or waiting for the workers)")
        else:
            self.say(f"<b>{self.label}</b>: training, {self.samples:,} samples in "
                     f"{now - self.t0:.0f} s, loss {s['loss'][-1]:.3f}")

    def stop(self) -> None:
        """Stop the ticker (``finish`` does; a panel calls it after a failed run too)."""
        self._running.clear()

    def __call__(self, rank: int, new_samples: int, epoch: int, worker_samples: int,
                 loss: float) -> None:
        if self.label not in self.series:
            self.start(self.label or "run")
        with self._lock:
            self.samples += new_samples
            self.last_message = time.perf_counter()
            s = self.series[self.label]
            s["seconds"].append(self.last_message - self.t0)
            s["samples"].append(self.samples)
            s["loss"].append(loss)
        ticking = self._ticker is not None and self._ticker.is_alive() and self._running.is_set()
        if not ticking and time.perf_counter() >= self.next_draw:
            self.draw()  # no ticker (a caller that never called start): draw when due

    def finish(self, result: Any) -> None:
        """Add `result`'s test accuracy curve (RunResult.eval_curve), redraw, stop ticking."""
        self.stop()
        with self._lock:
            s = self.series.setdefault(self.label, dict(seconds=[], samples=[], loss=[], acc_x=[],
                                                        acc_s=[], acc=[]))
            c = getattr(result, "eval_curve", None) or {}
            s["acc_x"] = list(c.get("samples", []))
            s["acc_s"] = [result.setup_seconds + t for t in c.get("seconds", [])]
            s["acc"] = [100 * a for a in c.get("accuracy", [])]
        acc = getattr(result, "test_accuracy", float("nan"))
        total = getattr(result, "total_seconds", float("nan"))
        self.say(f"<b>{self.label}</b>: done, {100 * acc:.1f} % test accuracy, "
                 f"{total:.1f} s end to end")
        self.draw()

    def draw(self) -> None:
        """Redraw now."""
        with self._lock:
            t = time.perf_counter()
            self.image.value = self.png()
            self.redraws += 1
            now = time.perf_counter()
            self.next_draw = now + max(self.min_interval, (now - t) / self.budget)

    def png(self) -> bytes:
        """The current plot as PNG bytes (small: it travels to the browser on every redraw)."""
        if self._fig is None:
            from matplotlib.figure import Figure  # no pyplot: nothing is shown in the cell
            self._fig = Figure(figsize=(8, 2.4), dpi=64, layout="constrained")
            self._axes = self._fig.subplots(1, 2, sharey=True)
            self._twins = [ax.twinx() for ax in self._axes]
        drawn = [s for s in self.series.values() if s["loss"]]
        for ax, twin, x, acc_x, name in zip(self._axes, self._twins, ("seconds", "samples"),
                                            ("acc_s", "acc_x"),
                                            ("seconds since the run started", "samples trained")):
            ax.clear()
            twin.clear()
            for axis in (ax, twin):  # no empty axes with ticks at -0.04..0.04 before any data
                axis.set_axis_on() if drawn else axis.set_axis_off()
            for label, s in self.series.items():
                lw = 1.5 if label == self.label else 0.7
                line, = ax.plot(s[x], s["loss"], lw=lw, label=label)
                if s["acc"]:
                    twin.plot(s[acc_x], s["acc"], "o--", ms=3, lw=lw, color=line.get_color())
            ax.set_xlabel(name)
            twin.set_ylim(0, 100)
            twin.set_ylabel("test accuracy % (o)" if x == "samples" else "")
        self._axes[0].set_ylabel("training loss")
        current = self.series.get(self.label, {})
        if drawn:
            self._axes[0].legend(fontsize=7, loc="upper right")
        if not self.series:
            self._axes[0].text(0.0, 0.5, "press Run (or run the next cell) to train", fontsize=11,
                               transform=self._axes[0].transAxes, va="center", in_layout=False)
        elif not current.get("loss"):
            self._axes[0].text(0.0, 0.5 if not drawn else 0.9,
                               f"{self.label}: {starting_note(self.label)}...",
                               fontsize=10, transform=self._axes[0].transAxes, va="center",
                               in_layout=False)  # a long note must not squeeze the axes away
        buf = io.BytesIO()
        self._fig.savefig(buf, format="png")
        return buf.getvalue()


_MEMORY: dict[str, dict[str, Any]] = {}
# Text tables printed inside a panel keep their columns: no wrapping of `35.8` into `3` / `5.8`.
NO_WRAP_STYLE = ("<style>.costtrain-panel .jp-OutputArea-output pre, .costtrain-no-wrap pre "
                 "{white-space: pre; overflow-x: auto; word-break: normal;}</style>")


class NoWrap(str):
    """Text (a table) that a notebook shows in its columns, scrolling sideways if it is wide.

    ``display(NoWrap(results_table(runs)))``: JupyterLab wraps long output lines mid-number;
    this shows them as ``<pre>`` that does not wrap. Plain text elsewhere.
    """

    def _repr_html_(self) -> str:
        import html
        return (f'<pre class="costtrain-no-wrap" style="white-space: pre; overflow-x: auto; '
                f'word-break: normal;">{html.escape(str(self))}</pre>')

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


class RunPanel(W.VBox):
    """Controls, a Run button, a live plot and an Output: see the module docstring."""

    def __init__(self, name: str, train: Callable[[dict, LivePlot], Any], controls: Controls,
                 note: str = "") -> None:
        self.name, self.train, self.controls, self.last = name, train, controls, None
        self.defaults = {k: w.value for k, w in controls.controls.items()}
        self._restore(_MEMORY.setdefault(name, {}))
        for key, w in controls.controls.items():
            w.observe(lambda change, key=key: self._remember(key, change["new"]), names="value")
        self.button = W.Button(description="Run", button_style="primary", icon="play",
                               tooltip="train with the values above")
        self.button.add_class("costtrain-run")
        self.button.on_click(lambda _: self._clicked())
        reset = W.Button(description="Reset", tooltip="back to the parameters cell's values")
        reset.on_click(lambda _: self._restore(self.defaults))
        self.status = W.HTML(note)
        self.activity = W.HTML("")
        self.activity.add_class("costtrain-activity")
        self.live = LivePlot(W.Image(format="png", layout=W.Layout(width="720px")),
                             status=self.activity)
        self.live.image.add_class("costtrain-live-plot")
        self.live.draw()
        self.output = W.Output()
        super().__init__([controls, W.HBox([self.button, reset, self.status]), self.activity,
                          self.live.image, self.output, W.HTML(NO_WRAP_STYLE)])
        self.add_class("costtrain-panel")

    def __repr__(self) -> str:  # what a notebook shows where the widgets cannot render
        return f"Run panel ({settings_words(self.values())})"  # ipywidgets cuts this text at 110 characters

    def _remember(self, key: str, value: Any) -> None:
        _MEMORY[self.name][key] = value

    def _restore(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            w = self.controls.controls.get(key)
            if w is not None and _allowed(w, value):
                w.value = value

    def values(self) -> dict[str, Any]:
        """The values the controls hold now."""
        return self.controls.values()

    def run(self) -> Any:
        """Train with the controls' values (headless: the parameters) and return the result."""
        values = self.values()
        self.live.say("running with " + settings_words(values) + "...")
        try:
            result = self.train(values, self.live)
        finally:
            self.live.stop()
        self.last = result
        print("settings used: " + settings_words(values))
        return result

    def _clicked(self) -> None:
        self.button.disabled = True
        self.output.clear_output()
        try:
            with self.output:  # shows any traceback inside the panel
                self.run()
        finally:
            self.button.disabled = False


def _allowed(w: W.ValueWidget, value: Any) -> bool:
    """Whether `value` is one the control `w` can hold (remembered values may not be)."""
    if hasattr(w, "options"):
        opts = [o[1] if isinstance(o, tuple) else o for o in w.options]
        return value in opts
    if hasattr(w, "min") and hasattr(w, "max"):
        if isinstance(w, W.FloatLogSlider):
            return w.base ** w.min <= value <= w.base ** w.max
        return w.min <= value <= w.max
    return True


def run_panel(name: str, train: Callable[[dict, LivePlot], Any], *,
              note: str = "", **controls: Any) -> RunPanel:
    """A :class:`RunPanel` named `name` (the memory key) over ``training_controls(**controls)``."""
    return RunPanel(name, train, training_controls(title=None, **controls), note)
