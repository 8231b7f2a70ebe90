"""One scoreboard through the course: every notebook's measured runs in one table.

Each notebook ends by calling :func:`record` with the runs it measured: they are written to
``out/scoreboard.json`` next to the notebooks (replacing that notebook's rows from an earlier
run, so re-running a notebook does not count it twice) and :func:`show` returns the table so
far. Runs are compared only within one job (dataset, model, training images, evaluations during
training, samples trained):
the notebooks use different data sizes, and the table says so instead of mixing them. Within a
job, runs of one configuration (the same method, threads and settings, whatever their labels)
are one row: the median end-to-end time of its runs, with their range. The fastest one-process
configuration is marked "to beat", and every other's speed is given against it, "within
noise" where the ranges of repeated configurations overlap. No torch.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from ..advice.noise import spread
from ..result import RunResult, write_json_atomic

STATE_ENV = "COSTTRAIN_COURSE_STATE"  # the folder of a run of the course (set by `costtrain notebooks`)
DEFAULT = Path("out") / "scoreboard.json"
IMAGE_DATASETS = ("mnist", "fashion-mnist", "cifar10")  # the others hold feature ids: "training samples"
FINDINGS = Path("out") / "findings.json"  # what a notebook concluded on this machine, by name


def _state(path: str | Path) -> Path:
    """`path`, or where a headless run of the course keeps its state: `costtrain notebooks`
    sets :data:`STATE_ENV` to its executed copies' folder, so a CI-sized or test run of the
    course never mixes its scoreboard and findings with the reader's own (``out/`` next to the
    notebooks, where JupyterLab runs them)."""
    folder = os.environ.get(STATE_ENV)
    if folder and Path(path) in (DEFAULT, FINDINGS):
        return Path(folder) / Path(path).name
    return Path(path)


def row(notebook: str, r: RunResult) -> dict[str, Any]:
    """The scoreboard's view of one run."""
    cfg = r.config or {}
    return {"notebook": notebook, "label": r.label, "method": r.method,
            "dataset": cfg.get("dataset", "?"), "model": cfg.get("model", "?"),
            "images": cfg.get("train_samples"), "samples": r.samples,
            "evaluations": sum(1 for n in (r.eval_curve or {}).get("samples", []) if n < r.samples),
            "processes": cfg.get("processes", cfg.get("workers", 1)), "threads": r.threads,
            "configuration": configuration(r),
            "total_seconds": r.total_seconds, "test_accuracy": r.test_accuracy,
            "status": r.status, "machine": f"{r.hardware.get('cpu', '?')}, "
                                           f"{r.hardware.get('cores', '?')} cores"}


def configuration(r: RunResult) -> str:
    """What makes two runs the same configuration: the method, the threads, every setting of
    ``config`` and the number of evaluations (periodic evaluation is part of the end-to-end
    time); not the label, which a notebook chooses."""
    settings = sorted((str(k), repr(v)) for k, v in (r.config or {}).items())
    evaluations = len((r.eval_curve or {}).get("samples", []))
    return repr((r.method, r.threads, settings, evaluations))


def load(path: str | Path = DEFAULT) -> list[dict[str, Any]]:
    """The rows recorded so far ([] when there is no scoreboard yet or it is unreadable)."""
    try:
        data = json.loads(_state(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def record(notebook: str, results: Iterable[RunResult],
           path: str | Path = DEFAULT) -> list[dict[str, Any]]:
    """Replace `notebook`'s rows with `results` (finished runs only); return every row."""
    rows = [d for d in load(path) if d.get("notebook") != notebook]
    rows += [row(notebook, r) for r in results if r.status == "ok"]
    write_json_atomic(_state(path), rows)
    return rows


def _job(d: dict[str, Any]) -> str:
    """The job a row belongs to: the data, the model, the work and the evaluations during
    training (they pause it, and the end-to-end time includes them)."""
    unit = "images" if d.get("dataset") in IMAGE_DATASETS else "training samples"
    images = f"{d['images']:,} {unit}" if isinstance(d.get("images"), int) else f"? {unit}"
    evaluations = d.get("evaluations") or 0
    during = (f", evaluated {evaluations} time{'s' if evaluations > 1 else ''} during training"
              if evaluations else "")
    return f"{d['dataset']} / {d['model']}, {images}{during}, {d['samples']:,} samples trained"


def _groups(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`rows` grouped by configuration (a row recorded before configurations were: its own)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, d in enumerate(rows):
        groups.setdefault(d.get("configuration") or f"row {i}", []).append(d)
    return list(groups.values())


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def show(path: str | Path = DEFAULT, notebook: str | None = None) -> str:
    """The scoreboard as text: one table per job, one row per configuration (median end to end
    and range of its runs), fastest first (with `notebook`: only that notebook's runs, and a
    line saying what else the scoreboard holds)."""
    from ..advice.report import format_table
    everything = load(path)
    rows = [d for d in everything if notebook is None or d.get("notebook") == notebook]
    if not rows:
        return "The scoreboard is empty: run the notebooks from 01 on."
    out = []
    for job in sorted({_job(d) for d in rows}):
        groups = [(g, spread([d["total_seconds"] for d in g]))
                  for g in _groups([d for d in rows if _job(d) == job])]
        groups.sort(key=lambda gs: gs[1].median)
        single = [gs for gs in groups if gs[0][0].get("processes") == 1]
        best = single[0] if single else None
        body = []
        for g, s in groups:
            accs = [d["test_accuracy"] for d in g if not math.isnan(d["test_accuracy"])]
            if best is None:
                vs = None
            elif g is best[0]:
                vs = "1.00x"
            else:
                vs = f"{best[1].median / s.median:.2f}x" + (
                    " (within noise)" if s.n > 1 and best[1].n > 1 and s.overlaps(best[1]) else "")
            body.append([" / ".join(_unique(d["label"] for d in g))
                         + (" (to beat)" if best is not None and g is best[0] else ""),
                         ", ".join(_unique(d["notebook"] for d in g)), s.n,
                         f"{s.median:.1f}" + (f" ({s.low:.1f}-{s.high:.1f})" if s.n > 1 else ""),
                         round(100 * spread(accs).median, 1) if accs else None, vs])
        out += [f"{job}:", format_table(body, ["configuration", "notebook", "runs",
                                              "end to end s (range)", "test acc %",
                                              "vs fastest 1-process"]), ""]
    machines = sorted({d["machine"] for d in rows})
    out.append(f"{len(rows)} run(s) from {len({d['notebook'] for d in rows})} notebook(s) on "
               + "; ".join(machines) + ". Runs are compared only within one job; the runs of "
               "one configuration are one row (the median, and the range when it ran more than "
               "once).")
    others = sorted({d["notebook"] for d in everything} - {notebook}) if notebook else []
    if others:
        out.append(f"The scoreboard also holds {len(everything) - len(rows)} run(s) of "
                   f"{', '.join(others)}; notebook 06 shows them all.")
    return "\n".join(out)


def remember(notebook: str, name: str, value: dict[str, Any],
             path: str | Path = FINDINGS) -> dict[str, Any]:
    """Record what `notebook` concluded on this machine (e.g. 01b's kept levers, 03b's sparse
    speed-up) for the notebooks after it; the machine is stamped on it. Returns every finding."""
    from ..utils import hardware_info
    path = _state(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    data.setdefault(notebook, {})[name] = {**value, "hardware": hardware_info()}
    write_json_atomic(path, data)
    return data


def findings(path: str | Path = FINDINGS) -> dict[str, Any]:
    """Every finding recorded so far ({} when none or unreadable)."""
    try:
        data = json.loads(_state(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def kept_levers(found: dict[str, Any], hardware: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The levers notebook 01b kept on this machine, for the single-process runs after it,
    and where they come from (or why there are none): ``({"channels_last": True}, "...")``."""
    rec = found.get("01b_free_speedups", {}).get("levers")
    if not rec:
        return {}, "notebook 01b has not run on this machine, so no lever was measured"
    if any(rec.get("hardware", {}).get(k) != hardware.get(k) for k in ("cpu", "cores", "torch")):
        return {}, "notebook 01b measured its levers on another machine"
    kept = {k: v for k, v in (rec.get("kept") or {}).items() if v}
    why = rec.get("why", "")
    if kept.pop("compile", None):  # a one-off cost these runs would not each pay
        why += ("; compile is not carried here: its cost is the compile itself, which depends on "
                "what the compile cache holds (a fresh process can pay several times what 01b "
                "measured in its kernel), and in one kernel only the first run would pay it, so "
                "no run here could be timed as a one-off; 01b measured each lever alone, never "
                "compile on top of the others, so whether adding it helps is not measured here")
    return kept, why
