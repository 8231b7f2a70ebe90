"""The class's hardware table: ``costtrain class collect DIR``.

Every student runs the same job (``costtrain compare --out results/NAME.json``, or ``costtrain
run --out``) and hands in the JSON file; each result is stamped with the machine it ran on
(``RunResult.hardware``: CPU, cores, GPU, versions). :func:`collect` reads a folder of them and
groups the runs by job (dataset, model, samples trained) and by kind of machine (CPU, cores,
GPU); for each group it takes every configuration's end-to-end seconds (all repeats of a
``--repeats`` run), their median and min-max range, and names the winner and whether the
runner-up is within noise. ``costtrain advise --out`` files add what ``advise`` recommended on
that machine.

A file that cannot be read as costtrain results, a result without its machine stamp, and a
file handed in twice are refused with the file's name and the reason; the valid files are still
collected and reported (the command then exits with status 2). Reads JSON only: no torch.

Hand-ins are data, never markup or a way out of the folder: only regular ``*.json`` files
inside the folder are read (a symlink pointing out of it, a FIFO, a device or a socket is
refused unopened), each at most :data:`MAX_HANDIN_BYTES` and :data:`MAX_DEPTH` levels deep, and
every field used must have its type and range (:func:`read_file`); every string from a file is
escaped for Markdown tables and HTML (:func:`cell`) and drawn as plain text (no mathtext).
"""
from __future__ import annotations

import argparse
import html
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..advice.noise import Spread, spread
from ..errors import CosttrainError

OK = "ok"
STATUSES = ("ok", "partial", "diverged", "failed")  # RunResult.status
MAX_HANDIN_BYTES = 32 * 2**20  # a result file of the class's job is under 1 MiB
MAX_DEPTH = 32  # JSON nesting; a result file is 4-7 levels deep
MAX_TEXT = 200  # characters of a label, CPU name, dataset, ... in a hand-in
MAX_SAMPLES = 10**12  # samples trained: more is not a real run

# The class's one job: what every student runs and hands in (the plan, running-a-class and the
# handout show it through handout's generated "class-command" block). Sized as `make run`'s job
# (the Makefile's RUN_ARGS: the same images and work, so the reference box's `make run` table is
# the class's reference row) with 2 repeats instead of 3 (the fewest that give each
# configuration a range, so "within noise" can be judged), and a target below the lowest final
# accuracy any configuration reached in the measured `make run` (tests/test_teaching.py checks
# both against the Makefile and the dated measurement).
CLASS_JOB: dict[str, Any] = {"subset": 20000, "total_epochs": 2, "repeats": 2,
                             "target_accuracy": 65}


def class_command(out: str = "results/NAME.json") -> str:
    """The command line every student runs for the class's table."""
    j = CLASS_JOB
    return (f"costtrain compare --subset {j['subset']} --total-epochs {j['total_epochs']} "
            f"--repeats {j['repeats']} --target-accuracy {j['target_accuracy']} --out {out}")


@dataclass
class Run:
    """One configuration's run on one machine, from one file."""

    file: str
    machine: str
    job: str
    label: str
    seconds: list[float]  # end to end, one per repeat
    accuracy: float
    status: str


@dataclass
class Advice:
    """What ``costtrain advise`` recommended on one machine."""

    file: str
    machine: str
    recommended: str
    predicted_seconds: float | None


@dataclass
class Collected:
    """Everything read from a folder: valid runs, advice, refused files and notes."""

    runs: list[Run] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0

    def groups(self) -> dict[tuple[str, str], dict[str, list[Run]]]:
        """(job, machine) -> configuration label -> its finished runs."""
        out: dict[tuple[str, str], dict[str, list[Run]]] = {}
        for r in self.runs:
            if r.status == OK:
                out.setdefault((r.job, r.machine), {}).setdefault(r.label, []).append(r)
        return out


class Unwritable(CosttrainError):
    """The table or the figure could not be written after the files were read (exit 5)."""

    code = 5


class Refused(ValueError):
    """A file that cannot be collected; the message says why."""


def text(value: Any, name: str, default: str | None = None) -> str:
    """A string field of a hand-in: a str of at most :data:`MAX_TEXT` characters, else
    :class:`Refused` (`default` when it is missing)."""
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise Refused(f"{name} is {_show(value)}, not a text")
    if len(value) > MAX_TEXT:
        raise Refused(f"{name} is {len(value):,} characters long; at most {MAX_TEXT}")
    return value


def whole_count(value: Any, name: str) -> int:
    """A count (samples): a whole number 0 <= n < 10^12 (a float with a whole value too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())) \
            or not 0 <= value < MAX_SAMPLES:
        raise Refused(f"{name} is {_show(value)}, not a whole number of samples")
    return int(value)


def _show(value: Any) -> str:
    """A value from a file, short, for a refusal."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _dict(value: Any, name: str) -> dict:
    """An optional object field: {} when missing, else it must be an object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refused(f"{name} is a {type(value).__name__}, not an object")
    return value


def machine_of(hardware: Any) -> str:
    """``"AMD EPYC 7B13, 2 cores"`` (plus the GPU when there is one), from a machine stamp."""
    if not isinstance(hardware, dict) or not hardware.get("cpu") or not hardware.get("cores"):
        raise Refused("no machine stamp (the 'hardware' field with 'cpu' and 'cores'): write it "
                      "with costtrain run/compare/advise --out, not by hand")
    cores = hardware["cores"]
    if isinstance(cores, bool) or not isinstance(cores, int) or not 0 < cores < 100_000:
        raise Refused(f"hardware.cores is {_show(cores)}, not a number of cores")
    cpu = text(hardware["cpu"], "hardware.cpu")
    gpu = f", {text(hardware['gpu'], 'hardware.gpu')}" if hardware.get("gpu") else ""
    return f"{cpu}, {cores} cores{gpu}"


def job_of(d: dict) -> str:
    """``"fashion-mnist / simple, 40,000 samples, evaluated during training"``: runs are
    compared only within one job. Evaluating on the test set during training (``--target-accuracy``
    or ``--eval-every``) adds to the end-to-end time, so it is part of the job."""
    cfg = _dict(d.get("config"), "config")
    points = _dict(d.get("eval_curve"), "eval_curve").get("samples") or []
    if not isinstance(points, list):
        raise Refused("eval_curve.samples is not a list")
    when = "evaluated during training" if len(points) > 1 else "evaluated at the end"
    samples = whole_count(d.get("samples") or 0, "samples")
    return (f"{text(cfg.get('dataset'), 'config.dataset', '?')} / "
            f"{text(cfg.get('model'), 'config.model', '?')}, {samples:,} samples, {when}")


def _number(d: dict, key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise Refused(f"{key} is {v!r}, not a number of seconds")
    return float(v)


def _seconds(d: dict) -> list[float]:
    """End-to-end seconds of a result: every repeat of a --repeats run, else its own total."""
    reps = _dict(d.get("extra"), "extra").get("repeats")
    if reps is not None and not isinstance(reps, list):
        raise Refused(f"extra.repeats is a {type(reps).__name__}, not a list")
    if reps:
        if not all(isinstance(x, dict) for x in reps):
            raise Refused("extra.repeats holds something other than objects")
        return [_number(x, "total_seconds") for x in reps]
    if "total_seconds" in d:
        return [_number(d, "total_seconds")]
    return [sum(_number(d, k) for k in ("setup_seconds", "train_seconds", "eval_seconds"))]


def _run(d: Any, file: str) -> Run:
    if not isinstance(d, dict) or not isinstance(d.get("method"), str) \
            or not isinstance(d.get("config"), dict):
        raise Refused("not a costtrain result (a RunResult needs 'method' and 'config')")
    acc = d.get("test_accuracy")
    if acc is None or (isinstance(acc, float) and math.isnan(acc)):
        acc = float("nan")
    elif isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
        raise Refused(f"test_accuracy is {_show(acc)}, not a fraction between 0 and 1")
    status = text(d.get("status"), "status", OK)
    if status not in STATUSES:
        raise Refused(f"status is {_show(status)}, not one of {', '.join(STATUSES)}")
    return Run(file, machine_of(d.get("hardware")), job_of(d),
               text(d.get("label") or d["method"], "label"), _seconds(d), float(acc), status)


def _advice(d: dict, file: str) -> Advice:
    rows = d.get("rows")
    if not isinstance(rows, list):
        raise Refused(f"rows is {_show(rows)}, not a list of probed configurations")
    recommended = text(d.get("recommended"), "recommended", "-")
    best = next((r for r in rows if isinstance(r, dict) and r.get("label") == recommended), {})
    secs = best.get("predicted_seconds")
    if secs is not None:
        secs = _number(best, "predicted_seconds")
    return Advice(file, machine_of(d.get("hardware")), recommended, secs)


def depth(data: Any) -> int:
    """How deeply `data` (parsed JSON) nests lists and objects (iteratively: no recursion)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack += [(v, level + 1) for v in (value.values() if isinstance(value, dict)
                                                   else value)]
    return deepest


def read_limited(path: Path, folder: Path) -> Any:
    """The parsed JSON of a hand-in, read with limits; :class:`Refused` saying why not.

    Only a regular file inside `folder` (after symlinks) is opened, without blocking (a FIFO
    never holds the class up) and without following a last symlink; at most
    :data:`MAX_HANDIN_BYTES` are read, and JSON nested more than :data:`MAX_DEPTH` levels is
    refused (the parser's recursion is caught too).
    """
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(folder))):
        raise Refused("a link to a file outside the folder: not read")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise Refused(f"cannot be opened ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Refused("not a regular file (a FIFO, a device or a socket): not read")
        if st.st_size > MAX_HANDIN_BYTES:
            raise Refused(f"{st.st_size:,} bytes; a result file has at most "
                          f"{MAX_HANDIN_BYTES:,}")
        raw = f.read(MAX_HANDIN_BYTES + 1)
    if len(raw) > MAX_HANDIN_BYTES:
        raise Refused(f"more than {MAX_HANDIN_BYTES:,} bytes; a result file has fewer")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refused("not a text file") from None
    except RecursionError:
        raise Refused(f"nested more than {MAX_DEPTH} levels deep: not a costtrain result") from None
    except json.JSONDecodeError as exc:
        raise Refused(f"not valid JSON ({exc.msg} at line {exc.lineno}): truncated or edited? "
                      "ask for the file again") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise Refused(f"not a costtrain result ({str(exc)[:80]})") from None
    if depth(data) > MAX_DEPTH:
        raise Refused(f"nested more than {MAX_DEPTH} levels deep: not a costtrain result")
    return data


def read_file(path: Path, folder: Path | None = None) -> tuple[list[Run], list[Advice]]:
    """The runs (or the advice) in one result file inside `folder` (default: its own
    folder); :class:`Refused` if it is not one, with the reason."""
    data = read_limited(path, path.parent if folder is None else folder)
    if isinstance(data, dict) and "recommended" in data and "rows" in data:
        return [], [_advice(data, path.name)]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise Refused("an empty list: no results in it")
    return [_run(d, path.name) for d in items], []


def _fingerprint(run: Run) -> str:
    return json.dumps([run.machine, run.job, run.label, run.seconds, run.accuracy])


def collect(folder: str | Path) -> Collected:
    """Read every ``*.json`` under `folder` (sorted by path); refuse bad and repeated files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CosttrainError(f"{str(folder)!r} is not a folder: give the folder the students' "
                             "result files were copied into.")
    paths = sorted(p for p in folder.rglob("*.json") if not p.name.startswith(".")
                   and not os.path.isdir(p))
    if not paths:
        raise CosttrainError(f"no result files (*.json) in {str(folder)!r}; students write them "
                             "with costtrain compare --out results/NAME.json.")
    out, seen = Collected(files=len(paths)), {}
    for path in paths:
        name = str(path.relative_to(folder))
        try:
            runs, advice = read_file(path, folder)
        except (Refused, OSError) as exc:
            out.refused.append((name, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 one odd file never stops the class's table
            out.refused.append((name, f"unreadable ({type(exc).__name__})"))
            continue
        keys = [_fingerprint(r) for r in runs] + [json.dumps([a.machine, a.recommended,
                                                              a.predicted_seconds])
                                                  for a in advice]
        earlier = {seen[k] for k in keys if k in seen}
        if earlier and all(k in seen for k in keys):
            out.refused.append((name, f"a copy of {', '.join(sorted(earlier))} (the same runs): "
                                      "counted once"))
            continue
        fresh = [r for r, k in zip(runs, keys) if k not in seen]
        if len(fresh) < len(runs):
            out.notes.append(f"{name}: {len(runs) - len(fresh)} run(s) repeat runs of "
                             f"{', '.join(sorted(earlier))}; counted once")
        for k in keys:
            seen.setdefault(k, name)
        out.runs += fresh
        out.advice += advice
        out.notes += [f"{name}: {r.label} ended '{r.status}', listed but not ranked"
                      for r in fresh if r.status != OK]
    return out


# ------------------------------------------------------------------ tables and figure

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MARKUP = re.compile(r"([\\`|\[\]])")


def cell(value: Any) -> str:
    """Text from a hand-in, safe in a Markdown table and in the HTML it renders to: one line
    (control characters and line breaks become a space, so no row can be added), ``|`` and
    backslashes escaped (no cell added), ``[``/``]`` and backticks escaped (no link, no image,
    no code span), ``<``, ``>`` and ``&`` as HTML entities (no tag, no script)."""
    one_line = " ".join(_CONTROL.sub(" ", str(value)).split())
    return html.escape(_MARKUP.sub(r"\\\1", one_line), quote=False)


def _spread(runs: list[Run]) -> Spread:
    return spread([s for r in runs for s in r.seconds])


def _cell(s: Spread) -> str:
    if s.n < 2:
        return f"{s.median:.1f} s (1 run)"
    return f"{s.median:.1f} s [{s.low:.1f}-{s.high:.1f}] ({s.n} runs)"


def winner(configs: dict[str, list[Run]]) -> str:
    """The configuration with the lowest median end-to-end time, and how sure that is
    (labels escaped by :func:`cell`)."""
    ranked = sorted(configs, key=lambda k: _spread(configs[k]).median)
    best = ranked[0]
    name = {k: cell(k) for k in ranked[:2]}
    if len(ranked) == 1:
        return f"{name[best]} (the only configuration)"
    a, b = _spread(configs[best]), _spread(configs[ranked[1]])
    if a.n < 2 or b.n < 2:
        once = " and ".join(name[k] for k, x in ((best, a), (ranked[1], b)) if x.n < 2)
        return (f"{name[best]} ({b.median / a.median:.2f}x faster than {name[ranked[1]]}; "
                f"{once} ran once: no range to judge the noise)")
    if a.overlaps(b):
        return f"{name[best]} (within noise of {name[ranked[1]]})"
    return (f"{name[best]} ({b.median / a.median:.2f}x faster than {name[ranked[1]]}, ranges "
            "apart)")


def table(c: Collected) -> str:
    """The class's table as Markdown: winners by machine, then every configuration. Every
    string that came from a file goes through :func:`cell`."""
    groups = c.groups()
    lines = [f"# The class's hardware table", "",
             f"{c.files} file(s) read, {len(c.refused)} refused; {len(c.runs)} run(s) from "
             f"{len({r.machine for r in c.runs} | {a.machine for a in c.advice})} kind(s) of "
             "machine. Times are end to end (set-up + training + evaluation): median [min-max] "
             "over every run and repeat handed in.", ""]
    for job in sorted({j for j, _ in groups}):
        machines = sorted(m for j, m in groups if j == job)
        lines += [f"## {cell(job)}", "", "| machine | winner (lowest median end to end) |",
                  "|---|---|"]
        lines += [f"| {cell(m)} | {winner(groups[job, m])} |" for m in machines]
        lines += ["", "| machine | configuration | end to end | test acc % | files |",
                  "|---|---|---|---|---|"]
        for m in machines:
            configs = groups[job, m]
            for label in sorted(configs, key=lambda k: _spread(configs[k]).median):
                rs = configs[label]
                accs = [100 * r.accuracy for r in rs if not math.isnan(r.accuracy)]
                acc = (f"{min(accs):.1f}" if len(set(accs)) < 2 else
                       f"{min(accs):.1f}-{max(accs):.1f}") if accs else "-"
                files = ", ".join(cell(f) for f in sorted({r.file for r in rs}))
                lines.append(f"| {cell(m)} | {cell(label)} | {_cell(_spread(rs))} | {acc} | "
                             f"{files} |")
        lines.append("")
    if c.advice:
        lines += ["## What `costtrain advise` recommended", "",
                  "| machine | recommended | predicted s | file |", "|---|---|---|---|"]
        lines += [f"| {cell(a.machine)} | {cell(a.recommended)} | "
                  f"{'-' if a.predicted_seconds is None else f'{a.predicted_seconds:.1f}'} | "
                  f"{cell(a.file)} |" for a in sorted(c.advice, key=lambda a: (a.machine, a.file))]
        lines.append("")
    if c.notes:
        lines += ["Notes:", ""] + [f"- {cell(n)}" for n in c.notes] + [""]
    if c.refused:
        lines += ["Refused files (not counted):", ""]
        lines += [f"- {cell(name)}: {cell(why)}" for name, why in c.refused] + [""]
    return "\n".join(lines)


MAX_FIGURE_LABEL = 60  # characters of a label or machine drawn in the figure


def _plain(value: str, limit: int = MAX_FIGURE_LABEL) -> str:
    """A hand-in's text for the figure: one line, at most `limit` characters (drawn with
    mathtext off: ``$...$`` is text, not a formula)."""
    one_line = " ".join(_CONTROL.sub(" ", value).split())
    return one_line if len(one_line) <= limit else one_line[:limit - 3] + "..."


def figure(c: Collected, path: str | Path) -> Path:
    """Median end-to-end seconds per configuration and machine, min-max as error bars."""
    import matplotlib
    groups = c.groups()
    rows = [(job, m, label, _spread(cfgs[label]))
            for (job, m), cfgs in sorted(groups.items())
            for label in sorted(cfgs, key=lambda k: _spread(cfgs[k]).median)]
    if not rows:
        raise CosttrainError("no finished runs to draw.")
    # text from the files is plain text: "$\\undefined$" in a label is drawn, not parsed
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        _draw(rows, path := Path(path))
    return path


def _draw(rows: list, path: Path) -> None:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 1.2 + 0.28 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    colors: dict[str, str] = {}
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for i, (job, m, label, s) in enumerate(rows):
        new = m not in colors
        color = colors.setdefault(m, palette[len(colors) % len(palette)])
        ax.barh(i, s.median, color=color, xerr=[[s.median - s.low], [s.high - s.median]],
                capsize=2, label=_plain(m) if new else None)
    ax.set_yticks(range(len(rows)), [f"{_plain(label)} ({s.n})" for _, _, label, s in rows],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("end-to-end seconds, median and min-max (runs)")
    jobs = sorted({r[0] for r in rows})
    ax.set_title("The class's machines: " + "; ".join(_plain(j, 2 * MAX_FIGURE_LABEL)
                                                       for j in jobs), fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------ command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``costtrain class collect DIR [--out table.md] [--figure fig.png]``."""
    sub = parser.add_subparsers(dest="class_command", required=True, metavar="ACTION")
    p = sub.add_parser("collect", help="merge the result files students hand in into one table "
                                       "and figure",
                       description="Merge costtrain result files (run/compare/advise --out) from "
                                   "a folder into one table: which method won on which kind of "
                                   "machine, with ranges where repeats exist.")
    p.add_argument("folder", help="folder with the students' *.json result files (searched "
                                  "recursively)")
    p.add_argument("--out", default=None, help="also write the table here (Markdown)")
    p.add_argument("--figure", default=None, help="also draw the figure here (e.g. class.png)")


def _write_text(path: str | Path, text: str) -> None:
    """Write `text` through a temporary file in the same folder (never half a file)."""
    import os
    import tempfile

    from ..result import output_target
    target = output_target(path, "--out")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_cli(args: argparse.Namespace) -> None:
    """Write --out and --figure, then print the table (a closed stdout loses nothing); exit 2
    (an error) if any file was refused."""
    from ..result import check_writable
    for path, what in ((args.out, "--out"), (args.figure, "--figure")):
        if path:
            check_writable(path, what)
    c = collect(args.folder)
    text = table(c)
    written = []
    try:
        if args.out:
            _write_text(args.out, text)
            written.append(f"table: {args.out}")
        if args.figure and c.groups():
            written.append(f"figure: {figure(c, args.figure)}")
    except OSError as exc:  # after the work (a full disk): an output error, exit 5
        raise Unwritable(f"cannot write {exc.filename or args.out}: "
                         f"{exc.strerror or exc}.") from None
    print(text)
    for line in written:
        print(line)
    if c.refused:
        raise CosttrainError(f"{len(c.refused)} of {c.files} file(s) refused (listed above); the "
                             f"table holds the {c.files - len(c.refused)} valid one(s).")
    return None
