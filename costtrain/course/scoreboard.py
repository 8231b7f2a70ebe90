"""One scoreboard through the course: every notebook's measured runs in one table.

Each notebook ends by calling :func:`record` with the runs it measured: they are written to
``out/scoreboard.json`` next to the notebooks (replacing that notebook's rows from an earlier
run, so re-running a notebook does not count it twice) and :func:`show` returns the table so
far. Runs are compared only within one job (dataset, model, training images, samples trained):
the notebooks use different data sizes, and the table says so instead of mixing them. Within a
job the fastest one-process run end to end is marked "to beat", and every run's speed is given
against it. No torch.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from ..result import RunResult, write_json_atomic

DEFAULT = Path("out") / "scoreboard.json"
FINDINGS = Path("out") / "findings.json"  # what a notebook concluded on this machine, by name


def row(notebook: str, r: RunResult) -> dict[str, Any]:
    """The scoreboard's view of one run."""
    cfg = r.config or {}
    return {"notebook": notebook, "label": r.label, "method": r.method,
            "dataset": cfg.get("dataset", "?"), "model": cfg.get("model", "?"),
            "images": cfg.get("train_samples"), "samples": r.samples,
            "processes": cfg.get("processes", cfg.get("workers", 1)),
            "total_seconds": r.total_seconds, "test_accuracy": r.test_accuracy,
            "status": r.status, "machine": f"{r.hardware.get('cpu', '?')}, "
                                           f"{r.hardware.get('cores', '?')} cores"}


def load(path: str | Path = DEFAULT) -> list[dict[str, Any]]:
    """The rows recorded so far ([] when there is no scoreboard yet or it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def record(notebook: str, results: Iterable[RunResult],
           path: str | Path = DEFAULT) -> list[dict[str, Any]]:
    """Replace `notebook`'s rows with `results` (finished runs only); return every row."""
    rows = [d for d in load(path) if d.get("notebook") != notebook]
    rows += [row(notebook, r) for r in results if r.status == "ok"]
    write_json_atomic(path, rows)
    return rows


def _job(d: dict[str, Any]) -> str:
    images = f"{d['images']:,} images" if isinstance(d.get("images"), int) else "? images"
    return f"{d['dataset']} / {d['model']}, {images}, {d['samples']:,} samples trained"


def show(path: str | Path = DEFAULT, notebook: str | None = None) -> str:
    """The scoreboard as text: one table per job, fastest end to end first (with `notebook`:
    only that notebook's runs, and a line saying what else the scoreboard holds)."""
    from ..advice.report import format_table
    everything = load(path)
    rows = [d for d in everything if notebook is None or d.get("notebook") == notebook]
    if not rows:
        return "The scoreboard is empty: run the notebooks from 01 on."
    out = []
    for job in sorted({_job(d) for d in rows}):
        mine = sorted((d for d in rows if _job(d) == job), key=lambda d: d["total_seconds"])
        single = [d for d in mine if d.get("processes") == 1]
        best = single[0] if single else None
        body = [[d["label"] + (" (to beat)" if d is best else ""), d["notebook"],
                 round(d["total_seconds"], 1),
                 None if math.isnan(d["test_accuracy"]) else round(100 * d["test_accuracy"], 1),
                 None if best is None else f"{best['total_seconds'] / d['total_seconds']:.2f}x"]
                for d in mine]
        out += [f"{job}:", format_table(body, ["run", "notebook", "end to end s", "test acc %",
                                              "vs fastest 1-process"]), ""]
    machines = sorted({d["machine"] for d in rows})
    out.append(f"{len(rows)} run(s) from {len({d['notebook'] for d in rows})} notebook(s) on "
               + "; ".join(machines) + ". Runs are compared only within one job.")
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
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    data.setdefault(notebook, {})[name] = {**value, "hardware": hardware_info()}
    write_json_atomic(path, data)
    return data


def findings(path: str | Path = FINDINGS) -> dict[str, Any]:
    """Every finding recorded so far ({} when none or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
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
    return kept, rec.get("why", "")
