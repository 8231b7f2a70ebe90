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
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..advice.noise import Spread, spread
from ..errors import CosttrainError

OK = "ok"

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


class Refused(ValueError):
    """A file that cannot be collected; the message says why."""


def machine_of(hardware: Any) -> str:
    """``"AMD EPYC 7B13, 2 cores"`` (plus the GPU when there is one), from a machine stamp."""
    if not isinstance(hardware, dict) or not hardware.get("cpu") or not hardware.get("cores"):
        raise Refused("no machine stamp (the 'hardware' field with 'cpu' and 'cores'): write it "
                      "with costtrain run/compare/advise --out, not by hand")
    gpu = f", {hardware['gpu']}" if hardware.get("gpu") else ""
    return f"{hardware['cpu']}, {hardware['cores']} cores{gpu}"


def job_of(d: dict) -> str:
    """``"fashion-mnist / simple, 40,000 samples, evaluated during training"``: runs are
    compared only within one job. Evaluating on the test set during training (``--target-accuracy``
    or ``--eval-every``) adds to the end-to-end time, so it is part of the job."""
    cfg = d.get("config") or {}
    points = (d.get("eval_curve") or {}).get("samples") or []
    when = "evaluated during training" if len(points) > 1 else "evaluated at the end"
    return (f"{cfg.get('dataset', '?')} / {cfg.get('model', '?')}, "
            f"{int(d.get('samples') or 0):,} samples, {when}")


def _number(d: dict, key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise Refused(f"{key} is {v!r}, not a number of seconds")
    return float(v)


def _seconds(d: dict) -> list[float]:
    """End-to-end seconds of a result: every repeat of a --repeats run, else its own total."""
    reps = (d.get("extra") or {}).get("repeats")
    if isinstance(reps, list) and reps:
        return [_number(x, "total_seconds") for x in reps if isinstance(x, dict)]
    if "total_seconds" in d:
        return [_number(d, "total_seconds")]
    return [sum(_number(d, k) for k in ("setup_seconds", "train_seconds", "eval_seconds"))]


def _run(d: Any, file: str) -> Run:
    if not isinstance(d, dict) or not isinstance(d.get("method"), str) \
            or not isinstance(d.get("config"), dict):
        raise Refused("not a costtrain result (a RunResult needs 'method' and 'config')")
    acc = d.get("test_accuracy")
    return Run(file, machine_of(d.get("hardware")), job_of(d),
               d.get("label") or d["method"], _seconds(d),
               float(acc) if isinstance(acc, (int, float)) else float("nan"),
               str(d.get("status", OK)))


def _advice(d: dict, file: str) -> Advice:
    rows = [r for r in d.get("rows", []) if isinstance(r, dict)]
    best = next((r for r in rows if r.get("label") == d.get("recommended")), {})
    secs = best.get("predicted_seconds")
    return Advice(file, machine_of(d.get("hardware")), str(d.get("recommended")),
                  float(secs) if isinstance(secs, (int, float)) else None)


def read_file(path: Path) -> tuple[list[Run], list[Advice]]:
    """The runs (or the advice) in one result file; :class:`Refused` if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise Refused("not a text file") from None
    except json.JSONDecodeError as exc:
        raise Refused(f"not valid JSON ({exc.msg} at line {exc.lineno}): truncated or edited? "
                      "ask for the file again") from None
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
    paths = sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))
    if not paths:
        raise CosttrainError(f"no result files (*.json) in {str(folder)!r}; students write them "
                             "with costtrain compare --out results/NAME.json.")
    out, seen = Collected(files=len(paths)), {}
    for path in paths:
        name = str(path.relative_to(folder))
        try:
            runs, advice = read_file(path)
        except (Refused, OSError) as exc:
            out.refused.append((name, str(exc)))
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

def _spread(runs: list[Run]) -> Spread:
    return spread([s for r in runs for s in r.seconds])


def _cell(s: Spread) -> str:
    if s.n < 2:
        return f"{s.median:.1f} s (1 run)"
    return f"{s.median:.1f} s [{s.low:.1f}-{s.high:.1f}] ({s.n} runs)"


def winner(configs: dict[str, list[Run]]) -> str:
    """The configuration with the lowest median end-to-end time, and how sure that is."""
    ranked = sorted(configs, key=lambda k: _spread(configs[k]).median)
    best = ranked[0]
    if len(ranked) == 1:
        return f"{best} (the only configuration)"
    a, b = _spread(configs[best]), _spread(configs[ranked[1]])
    if a.n < 2 or b.n < 2:
        once = " and ".join(k for k, x in ((best, a), (ranked[1], b)) if x.n < 2)
        return (f"{best} ({b.median / a.median:.2f}x faster than {ranked[1]}; {once} ran once: "
                "no range to judge the noise)")
    if a.overlaps(b):
        return f"{best} (within noise of {ranked[1]})"
    return f"{best} ({b.median / a.median:.2f}x faster than {ranked[1]}, ranges apart)"


def table(c: Collected) -> str:
    """The class's table as Markdown: winners by machine, then every configuration."""
    groups = c.groups()
    lines = [f"# The class's hardware table", "",
             f"{c.files} file(s) read, {len(c.refused)} refused; {len(c.runs)} run(s) from "
             f"{len({r.machine for r in c.runs} | {a.machine for a in c.advice})} kind(s) of "
             "machine. Times are end to end (set-up + training + evaluation): median [min-max] "
             "over every run and repeat handed in.", ""]
    for job in sorted({j for j, _ in groups}):
        machines = sorted(m for j, m in groups if j == job)
        lines += [f"## {job}", "", "| machine | winner (lowest median end to end) |",
                  "|---|---|"]
        lines += [f"| {m} | {winner(groups[job, m])} |" for m in machines]
        lines += ["", "| machine | configuration | end to end | test acc % | files |",
                  "|---|---|---|---|---|"]
        for m in machines:
            configs = groups[job, m]
            for label in sorted(configs, key=lambda k: _spread(configs[k]).median):
                rs = configs[label]
                accs = [100 * r.accuracy for r in rs if not math.isnan(r.accuracy)]
                acc = (f"{min(accs):.1f}" if len(set(accs)) < 2 else
                       f"{min(accs):.1f}-{max(accs):.1f}") if accs else "-"
                files = ", ".join(sorted({r.file for r in rs}))
                lines.append(f"| {m} | {label} | {_cell(_spread(rs))} | {acc} | {files} |")
        lines.append("")
    if c.advice:
        lines += ["## What `costtrain advise` recommended", "",
                  "| machine | recommended | predicted s | file |", "|---|---|---|---|"]
        lines += [f"| {a.machine} | {a.recommended} | "
                  f"{'-' if a.predicted_seconds is None else f'{a.predicted_seconds:.1f}'} | "
                  f"{a.file} |" for a in sorted(c.advice, key=lambda a: (a.machine, a.file))]
        lines.append("")
    if c.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in c.notes] + [""]
    if c.refused:
        lines += ["Refused files (not counted):", ""]
        lines += [f"- {name}: {why}" for name, why in c.refused] + [""]
    return "\n".join(lines)


def figure(c: Collected, path: str | Path) -> Path:
    """Median end-to-end seconds per configuration and machine, min-max as error bars."""
    from matplotlib.figure import Figure
    groups = c.groups()
    rows = [(job, m, label, _spread(cfgs[label]))
            for (job, m), cfgs in sorted(groups.items())
            for label in sorted(cfgs, key=lambda k: _spread(cfgs[k]).median)]
    if not rows:
        raise CosttrainError("no finished runs to draw.")
    fig = Figure(figsize=(8, 1.2 + 0.28 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    colors: dict[str, str] = {}
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for i, (job, m, label, s) in enumerate(rows):
        new = m not in colors
        color = colors.setdefault(m, palette[len(colors) % len(palette)])
        ax.barh(i, s.median, color=color, xerr=[[s.median - s.low], [s.high - s.median]],
                capsize=2, label=m if new else None)
    ax.set_yticks(range(len(rows)), [f"{label} ({s.n})" for _, _, label, s in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("end-to-end seconds, median and min-max (runs)")
    jobs = sorted({r[0] for r in rows})
    ax.set_title("The class's machines: " + "; ".join(jobs), fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


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
    """Print the table, write --out and --figure; exit 2 (an error) if any file was refused."""
    from ..result import check_writable
    if args.figure:
        check_writable(args.figure, "--figure")
    c = collect(args.folder)
    text = table(c)
    print(text)
    if args.out:
        _write_text(args.out, text)
        print(f"table: {args.out}")
    if args.figure and c.groups():
        print(f"figure: {figure(c, args.figure)}")
    if c.refused:
        raise CosttrainError(f"{len(c.refused)} of {c.files} file(s) refused (listed above); the "
                             f"table holds the {c.files - len(c.refused)} valid one(s).")
    return None
