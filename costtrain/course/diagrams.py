"""The course's diagrams, drawn with matplotlib into SVG files that render everywhere.

``python -m costtrain.course.diagrams [OUT_DIR]`` (default ``notebooks/diagrams``) writes:

* ``hogwild_races.svg``: two Hogwild! workers on a timeline, writing one shared model with no
  lock; a lost update (two writes at once) and a stale read are marked;
* ``parameter_server.svg``: the parameter server's push/pull, sync against async;
* ``local_sgd.svg``: local SGD, H local steps then one average (and how the copies drift);
* ``oversubscription.svg``: threads x processes against cores;
* ``decision_flow.svg``: which method to try, in the order the course measures them.

The output is deterministic (a fixed ``svg.hashsalt``, no date, text kept as text), so
regenerating with the same matplotlib gives the same bytes; ``tests/test_diagrams.py`` checks
the committed files against a fresh drawing. The notebooks, the docs and the handout show
them as plain Markdown images (GitHub, JupyterLab and browsers all render SVG).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

DEFAULT_DIR = Path("notebooks") / "diagrams"
RC = {"svg.hashsalt": "costtrain", "svg.fonttype": "none", "font.family": "sans-serif",
      "font.size": 10}
COMPUTE, WRITE, SERVER, WAIT, RACE, AVERAGE = ("#a6cee3", "#1f78b4", "#b2df8a", "#eeeeee",
                                              "#e31a1c", "#fdbf6f")
INK = "#222222"


def _canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A figure with one axis-free drawing area in data units."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return fig, ax


def _box(ax, x0: float, x1: float, y: float, color: str, text: str = "", *, h: float = 0.5,
         fontsize: float = 8, hatch: str | None = None, textcolor: str = INK) -> None:
    """A labelled bar from x0 to x1 centred on y."""
    from matplotlib.patches import Rectangle
    ax.add_patch(Rectangle((x0, y - h / 2), x1 - x0, h, facecolor=color, edgecolor=INK, lw=0.6,
                           hatch=hatch))
    if text:
        ax.text((x0 + x1) / 2, y, text, ha="center", va="center", fontsize=fontsize,
                color=textcolor)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], *, color: str = INK,
           dashed: bool = False, text: str = "", fontsize: float = 7.5,
           side: str = "right") -> None:
    """An arrow from start to end, optionally labelled at its middle (left or right of it)."""
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=1.0, shrinkA=0, shrinkB=0,
                                linestyle="--" if dashed else "-"))
    if text:
        dx = 0.07 if side == "right" else -0.07
        ax.text((start[0] + end[0]) / 2 + dx, (start[1] + end[1]) / 2, text, fontsize=fontsize,
                color=color, ha="left" if side == "right" else "right", va="center")


def _lanes(ax, names: dict[float, str], x: float) -> None:
    """Row names at the left edge."""
    for y, name in names.items():
        ax.text(x, y, name, ha="right", va="center", fontsize=9, fontweight="bold")


def _time_axis(ax, x0: float, x1: float, y: float) -> None:
    _arrow(ax, (x0, y), (x1, y))
    ax.text(x1, y - 0.22, "time", ha="right", va="top", fontsize=8)


def hogwild_races():
    """Two workers, one shared model, no lock: a lost update and a stale read, marked."""
    fig, ax = _canvas(10, 4.6, (-2.3, 10.2), (-0.9, 4.5))
    ax.text(-2.2, 4.2, "Hogwild!: every worker writes the one shared model, with no lock",
            fontsize=12, fontweight="bold", va="center")
    a, w, b = 3.0, 1.75, 0.5
    _lanes(ax, {a: "worker A", w: "shared weights w", b: "worker B"}, -0.15)
    steps_a = [(0.2, 2.4, 3.0), (3.0, 5.2, 5.8), (5.8, 8.0, 8.6)]
    steps_b = [(0.6, 2.7, 3.3), (3.3, 5.6, 6.2), (6.2, 8.6, 9.2)]
    for lane, steps in ((a, steps_a), (b, steps_b)):
        for x0, xw, x1 in steps:
            _box(ax, x0, xw, lane, COMPUTE, "read w, forward, backward")
            _box(ax, xw, x1, lane, WRITE, "write", textcolor="white")
            _arrow(ax, (xw + 0.3, lane - 0.25 if lane == a else lane + 0.25),
                   (xw + 0.3, w + 0.25 if lane == a else w - 0.25), color=WRITE)
    # the shared weights change at every write: w0, w1, ...
    ends = sorted(x1 for steps in (steps_a, steps_b) for _, _, x1 in steps)
    for i, (x0, x1) in enumerate(zip([0.0] + ends, ends + [9.8])):
        _box(ax, x0, x1, w, "white", f"w{i}", h=0.42)
    # the race: A and B write at the same time
    from matplotlib.patches import Rectangle
    ax.add_patch(Rectangle((2.7, b - 0.4), 0.3, a - b + 0.8, facecolor="none", edgecolor=RACE,
                           lw=2.0))
    ax.text(3.05, 3.75, "race: A and B write at once. Each read w, added its step and writes "
            "back:\none of the two steps can be lost (or half of it)", color=RACE, fontsize=8,
            va="center")
    ax.annotate("", xy=(3.0, 3.45), xytext=(3.05, 3.6),
                arrowprops=dict(arrowstyle="-|>", color=RACE, lw=1.0))
    # a stale read: B computes on w3 while A has already written w4
    _arrow(ax, (3.5, w - 0.21), (3.5, b + 0.25), color=RACE, dashed=True, text="B reads w2",
           fontsize=7)
    ax.text(3.9, -0.1, "stale: B's gradient was computed on w2, but A wrote w3 before\n"
            "B's write landed (like the parameter server's async staleness)", color=RACE,
            fontsize=8, va="center")
    _time_axis(ax, 0.0, 9.9, -0.55)
    ax.text(-2.2, -0.78, "Dense net: every step writes every weight, so writes overlap on "
            "every step. Sparse model: steps rarely touch the same weights.", fontsize=8,
            va="center", style="italic")
    return fig


def parameter_server():
    """Sync (one step waits for every worker) against async (each gradient stepped at once)."""
    fig, ax = _canvas(11, 4.8, (-1.7, 20.4), (-1.2, 4.6))
    for dx, title in ((0.0, "sync: one step averages every worker's gradient"),
                      (10.6, "async: the server steps on each gradient as it arrives")):
        ax.text(dx - 1.6, 4.25, title, fontsize=10.5, fontweight="bold", va="center")
        _lanes(ax, {3.2: "worker 1", 1.7: "server", 0.2: "worker 2"}, dx - 0.1)
        _time_axis(ax, dx, dx + 9.3, -0.55)
    w1, s, w2 = 3.2, 1.7, 0.2
    # sync: worker 2 is slower; worker 1 and the server wait for it
    _box(ax, 0.2, 2.6, w1, COMPUTE, "gradient on v0")
    _box(ax, 2.6, 4.6, w1, WAIT, "waits")
    _box(ax, 0.2, 3.8, w2, COMPUTE, "gradient on v0 (slower)")
    _box(ax, 0.2, 3.8, s, WAIT, "waits for every worker")
    _box(ax, 3.8, 4.6, s, SERVER, "v1")
    _arrow(ax, (2.6, w1 - 0.25), (3.8, s + 0.25), text="push", side="left")
    _arrow(ax, (3.8, w2 + 0.25), (3.8, s - 0.25), text="push", side="left")
    _arrow(ax, (4.6, s + 0.25), (4.8, w1 - 0.25), dashed=True, text="pull v1")
    _arrow(ax, (4.6, s - 0.25), (4.8, w2 + 0.25), dashed=True, text="pull v1")
    _box(ax, 4.8, 7.2, w1, COMPUTE, "gradient on v1")
    _box(ax, 4.8, 8.4, w2, COMPUTE, "gradient on v1")
    ax.text(-1.6, -0.95, "= SGD on both batches together (large-batch SGD, lr x workers);\n"
            "the fastest worker waits for the slowest", fontsize=8, style="italic", va="center")
    # async: nobody waits; worker 2's gradient arrives one version late
    d = 10.6
    _box(ax, d + 0.2, d + 2.6, w1, COMPUTE, "gradient on v0")
    _box(ax, d + 2.6, d + 3.2, s, SERVER, "v1")
    _arrow(ax, (d + 2.6, w1 - 0.25), (d + 2.6, s + 0.25), text="push", side="left")
    _arrow(ax, (d + 3.2, s + 0.25), (d + 3.3, w1 - 0.25), dashed=True, text="pull v1")
    _box(ax, d + 3.3, d + 5.7, w1, COMPUTE, "gradient on v1")
    _box(ax, d + 0.2, d + 3.8, w2, COMPUTE, "gradient on v0 (slower)")
    _box(ax, d + 3.8, d + 4.4, s, SERVER, "v2")
    _arrow(ax, (d + 3.8, w2 + 0.25), (d + 3.8, s - 0.25), text="push", color=RACE, side="left")
    _arrow(ax, (d + 4.4, s - 0.25), (d + 4.5, w2 + 0.25), dashed=True, text="pull v2")
    _box(ax, d + 4.5, d + 8.1, w2, COMPUTE, "gradient on v2")
    _box(ax, d + 5.7, d + 6.3, s, SERVER, "v3")
    _arrow(ax, (d + 5.7, w1 - 0.25), (d + 5.7, s + 0.25), text="push", side="left")
    _arrow(ax, (d + 6.3, s + 0.25), (d + 6.4, w1 - 0.25), dashed=True, text="pull v3")
    _box(ax, d + 6.4, d + 8.8, w1, COMPUTE, "gradient on v3")
    ax.text(d + 0.3, 0.95, "staleness 1:\ncomputed on v0,\napplied to v1", color=RACE,
            fontsize=8, va="center")
    ax.text(d, -0.95, "nobody waits; a gradient may have been computed on an older\n"
            "version of the model (its staleness)", fontsize=8, style="italic", va="center")
    return fig


def local_sgd(h: int = 4, rounds: int = 3):
    """K = 2 workers take H local steps, then average their models with one all-reduce."""
    import math
    fig, ax = _canvas(10, 5.0, (-2.0, 13.4), (-3.5, 4.4))
    ax.text(-1.9, 4.05, f"Local SGD: H = {h} local steps, then one average (all-reduce)",
            fontsize=12, fontweight="bold", va="center")
    w1, w2 = 3.0, 1.6
    _lanes(ax, {w1: "worker 1", w2: "worker 2"}, -0.15)
    step, x = 0.7, 0.1
    for r in range(rounds):
        for lane in (w1, w2):
            for i in range(h):
                _box(ax, x + i * step, x + (i + 1) * step - 0.06, lane, COMPUTE, "step",
                     fontsize=6.5)
        x_avg = x + h * step
        _box(ax, x_avg, x_avg + 0.9, (w1 + w2) / 2, AVERAGE, "average", h=w1 - w2 + 0.5,
             fontsize=7.5)
        x = x_avg + 1.0
    ax.text(x + 0.1, (w1 + w2) / 2, f"talks once\nevery {h} steps:\n{h}x fewer bytes\n"
            "than averaging\nafter every step", fontsize=8, va="center")
    # one coordinate of each worker's model: apart between averages, equal after each
    ax.text(-0.15, -1.3, "one weight,\nas each worker\nsees it", ha="right", va="center",
            fontsize=8)
    x, v1, v2 = 0.1, -1.3, -1.3
    for r in range(rounds):
        xs = [x + i * step for i in range(h + 1)]
        p1 = [v1 + 0.35 * i + 0.12 * math.sin(2.1 * i + r) for i in range(h + 1)]
        p2 = [v2 - 0.18 * i + 0.10 * math.cos(1.7 * i + r) for i in range(h + 1)]
        ax.plot(xs, p1, "o-", color=WRITE, ms=3, lw=1.2, label="worker 1" if r == 0 else None)
        ax.plot(xs, p2, "o-", color="#33a02c", ms=3, lw=1.2,
                label="worker 2" if r == 0 else None)
        mean = (p1[-1] + p2[-1]) / 2
        x_avg = xs[-1] + 0.45
        ax.plot([xs[-1], x_avg], [p1[-1], mean], ":", color=INK, lw=0.8)
        ax.plot([xs[-1], x_avg], [p2[-1], mean], ":", color=INK, lw=0.8)
        ax.plot([x_avg], [mean], "D", color="#ff7f00", ms=5)
        x, v1, v2 = xs[-1] + 1.0, mean, mean
        ax.plot([x_avg, x], [mean, mean], color="#ff7f00", lw=0.8)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.22), fontsize=8, frameon=False)
    ax.text(-1.9, -3.25, "H = 1 is synchronous data-parallel SGD. Larger H: less talk, but the "
            "copies drift apart between averages.", fontsize=8, style="italic", va="center")
    return fig


def oversubscription():
    """P processes x T threads on C cores: fits, or time-sliced."""
    fig, ax = _canvas(11, 4.0, (-1.4, 20.6), (-1.5, 4.0))
    colors = {"P1 t1": "#1f78b4", "P1 t2": "#a6cee3", "P2 t1": "#33a02c", "P2 t2": "#b2df8a"}
    light = {"P1 t2", "P2 t2"}
    for dx, title in ((0.0, "2 processes x 1 thread on 2 cores: P x T = C"),
                      (10.8, "2 processes x 2 threads on 2 cores: P x T > C")):
        ax.text(dx - 1.3, 3.65, title, fontsize=10.5, fontweight="bold", va="center")
        _lanes(ax, {2.4: "core 0", 1.2: "core 1"}, dx - 0.1)
        _time_axis(ax, dx, dx + 9.2, 0.3)
    for lane, name in ((2.4, "P1 t1"), (1.2, "P2 t1")):
        _box(ax, 0.1, 9.0, lane, colors[name], f"{name}: runs undisturbed", textcolor="white")
    d, x = 10.8, 0.1
    pattern = [("P1 t1", "P2 t2"), ("P2 t1", "P1 t2"), ("P1 t2", "P2 t1"), ("P2 t2", "P1 t1"),
               ("P1 t1", "P2 t2"), ("P2 t1", "P1 t2")]
    for c0, c1 in pattern:
        for lane, name in ((2.4, c0), (1.2, c1)):
            _box(ax, d + x, d + x + 1.4, lane, colors[name], name, fontsize=7.5,
                 textcolor=INK if name in light else "white")
        x += 1.5
        if x < 9.0:
            for lane in (2.4, 1.2):
                ax.plot([d + x - 0.05] * 2, [lane - 0.3, lane + 0.3], color=RACE, lw=1.6)
    ax.text(d + 0.1, 3.05, "red: a context switch (registers saved, caches cold)", color=RACE,
            fontsize=8, va="center")
    ax.text(-1.3, -0.45, "Every thread has a core.", fontsize=8.5, va="center")
    ax.text(d - 1.3, -0.45, "The OS time-slices 4 threads on 2 cores; an operation split over "
            "2 threads\nends when its slower thread gets a core, so the other one waits (or "
            "spins).", fontsize=8.5, va="center")
    ax.text(-1.3, -1.25, "costtrain's rule: threads per process = cores // processes "
            "(PyTorch's multiprocessing notes say the same).", fontsize=8.5, style="italic",
            va="center")
    return fig


def decision_flow():
    """Which method to try first on your machine, as the course measures them."""
    fig, ax = _canvas(10, 7.0, (0, 10), (0, 7.0))
    ax.text(0.15, 6.7, "Which method? The course's decision flow (measure on your machine)",
            fontsize=12, fontweight="bold", va="center")

    def node(x: float, y: float, w: float, h: float, text: str, color: str = WAIT) -> None:
        _box(ax, x - w / 2, x + w / 2, y, color, text, h=h, fontsize=8)

    node(5.0, 6.05, 8.6, 0.55, "1. Baseline: one process, threads = cores, the data decoded "
         "once into tensors (01)", COMPUTE)
    node(5.0, 5.25, 8.6, 0.55, "2. Free speed-ups in that process: compile, channels_last, "
         "batch size; keep a lever only when it is\nfaster in every alternating pair and the job "
         "outlasts its one-off cost (01b)", COMPUTE)
    node(5.0, 4.45, 4.0, 0.5, "3. One machine, or several?")
    node(2.5, 3.45, 4.4, 0.7, "4. One machine: does each step touch\nonly a few weights "
         "(sparse)?")
    node(7.5, 3.45, 4.4, 0.7, "4. Several machines:\nhow fast is the link between them?")
    leaves = ((1.25, "yes: Hogwild!, one\nprocess per core, only\nif its gain beats its\n"
                     "start-up (03b, 04)"),
              (3.75, "no (dense net): baseline;\nHogwild! only if its gain\nbeats its "
                     "start-up (03, 04)"),
              (6.25, "LAN: parameter server,\nsync; or local SGD,\nsmall H (02, 05)"),
              (8.75, "Wi-Fi / WAN:\nlocal SGD, large H\n(05)"))
    for x, text in leaves:
        node(x, 2.1, 2.35, 1.0, text, SERVER)
        _arrow(ax, (x, 1.6), (x + (5.0 - x) * 0.3, 1.1))
    node(5.0, 0.75, 8.6, 0.7, "5. Check on your machine: costtrain advise; rank by one-off "
         "end-to-end time and cost;\nwhen the ranges overlap (within noise), keep the "
         "simplest (04, 06)", AVERAGE)
    for start, end in (((5.0, 5.775), (5.0, 5.525)), ((5.0, 4.975), (5.0, 4.7)),
                       ((4.0, 4.2), (2.9, 3.8)), ((6.0, 4.2), (7.1, 3.8)),
                       ((1.8, 3.1), (1.25, 2.6)), ((3.2, 3.1), (3.75, 2.6)),
                       ((6.8, 3.1), (6.25, 2.6)), ((8.2, 3.1), (8.75, 2.6))):
        _arrow(ax, start, end)
    return fig


DIAGRAMS: dict[str, Callable] = {
    "hogwild_races.svg": hogwild_races, "parameter_server.svg": parameter_server,
    "local_sgd.svg": local_sgd, "oversubscription.svg": oversubscription,
    "decision_flow.svg": decision_flow}


def draw_all(out_dir: str | Path = DEFAULT_DIR) -> list[Path]:
    """Write every diagram into `out_dir` (created if missing); return the paths."""
    import matplotlib
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(RC):
        for name, draw in DIAGRAMS.items():
            fig = draw()
            fig.savefig(out / name, format="svg", metadata={"Date": None})
            paths.append(out / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python -m costtrain.course.diagrams [OUT_DIR]   (default: notebooks/diagrams)",
              file=sys.stderr)
        return 2
    for p in draw_all(argv[0] if argv else DEFAULT_DIR):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
