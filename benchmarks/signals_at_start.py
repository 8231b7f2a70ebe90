"""Signals at any moment of start-up: does every run end with its exit code, and no traceback?

    python benchmarks/signals_at_start.py [--trials 100] [--span 3] [--signal TERM] [--parallel 3]

Starts ``costtrain run --method hogwild`` (a long run, so that only the signal ends it) in a
session of its own, `trials` times, and sends the signal to the whole process group (as
``timeout``, systemd, Slurm and a closed terminal do) at offsets spread evenly over the first
`span` seconds: during the interpreter's start, the imports (numpy, torch), the early start of
the warm workers, the data loading and the first steps. Each trial records the exit status,
the seconds from the signal to the exit, whether a traceback was printed and whether any
process of the run outlived it; a run still going 20 s after the signal counts as LOST.

Expected: 143 for SIGTERM (129 SIGHUP, 130 SIGINT) from costtrain's handler; -15 (-1, -2),
what a shell also shows as 143 (129, 130), only when the signal came before the interpreter
had run any of costtrain (the first tens of milliseconds). There, and only there, Ctrl-C can
also be Python's own KeyboardInterrupt traceback (exit 1): nothing of costtrain runs yet.
``tests/slow/test_signals_at_start.py`` runs a sample of the same offsets.

The dated measurements are on docs/benchmarks.md (Signals at start-up).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--method", "hogwild", "--processes", "2", "--subset", "600", "--model", "mlp",
       "--batch-size", "4", "--epochs-per-process", "2000", "--no-progress"]
CODES = {signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGINT: 130}
LOST_AFTER = 20.0


def trial(offset: float, sig: int = signal.SIGTERM, cwd: str | Path | None = None) -> dict:
    """One run, signalled `offset` seconds after it started: what became of it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT),
                                                       os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, "-m", "costtrain", *RUN], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True, env=env, cwd=cwd,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(offset)
    tree = [p.pid]
    try:
        tree += [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
    except psutil.Error:
        pass
    t = time.monotonic()
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        out, err = p.communicate(timeout=LOST_AFTER)
        code, took = p.returncode, time.monotonic() - t
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        code, took = "LOST", LOST_AFTER
    time.sleep(1.0)  # the workers' parent-death signal
    survivors = []
    for pid in tree[1:]:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                survivors.append(pid)
                os.kill(pid, signal.SIGKILL)
        except psutil.Error:
            pass
    text = err.decode(errors="replace")
    return dict(offset=round(offset, 3), code=code, seconds=round(took, 2),
                traceback="Traceback" in text, survivors=survivors,
                said=next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")[:160])


def acceptable(row: dict, sig: int = signal.SIGTERM) -> bool:
    """costtrain's exit code (or the signal's own, before any costtrain code ran), no
    traceback, nothing left running."""
    return (row["code"] in (CODES[sig], -sig) and not row["traceback"]
            and not row["survivors"])


def offsets(trials: int, span: float) -> list[float]:
    return [span * i / trials for i in range(trials)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--span", type=float, default=3.0, help="seconds the offsets cover")
    p.add_argument("--signal", default="TERM", choices=["TERM", "HUP", "INT"])
    p.add_argument("--parallel", type=int, default=3)
    a = p.parse_args()
    sig = getattr(signal, f"SIG{a.signal}")
    t0 = time.monotonic()
    with ThreadPoolExecutor(a.parallel) as pool:
        rows = list(pool.map(lambda off: trial(off, sig), offsets(a.trials, a.span)))
    bad = [r for r in rows if not acceptable(r, sig)]
    by_code: dict = {}
    for r in rows:
        by_code[r["code"]] = by_code.get(r["code"], 0) + 1
    for r in bad:
        print("BAD", r)
    took = sorted(r["seconds"] for r in rows)
    print(f"SIG{a.signal}: {len(rows)} trials, offsets 0-{a.span:g} s, in "
          f"{time.monotonic() - t0:.0f} s (load {os.getloadavg()[0]:.1f}); exit codes "
          f"{dict(sorted(by_code.items(), key=str))}; tracebacks "
          f"{sum(r['traceback'] for r in rows)}; survivors "
          f"{sum(bool(r['survivors']) for r in rows)}; signal to exit: median "
          f"{took[len(took) // 2]:.2f} s, max {took[-1]:.2f} s; {len(bad)} not acceptable")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
