"""The course executed once per test session, for every test that reads an executed notebook.

Each course notebook runs once by papermill (``costtrain.course.notebooks.run_notebooks``, the
runner ``make notebooks`` uses) at the CI parameters (set ``a``), and notebooks 01-04 once more
at the second, different CI set (``b``): the check that the executed text names only
configurations that ran needs two sets. Nothing else executes them again: the checks of
tests/slow/test_notebooks_slow.py read these runs, and tests/slow/test_browser.py shows them in
JupyterLab (it runs only the notebooks whose Run panel it drives, in its own kernel).

The runs go two at a time (:data:`LANES`), each in a kernel of its own: a notebook spends much of
its time starting processes and kernels, which leaves a core idle. Each lane is a process of its
own, because papermill changes the working directory of the process it runs in (to the
notebooks' folder) while a notebook runs. The two runs of one notebook never overlap. The first
request waits for all of them (:func:`execute`): nothing else runs beside the course, so no
timing-based test shares the cores with it.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from costtrain.course.notebooks import (CI_PARAMETERS, CI_PARAMETERS_B, NotebookError,
                                        NotebookRun, find_notebooks, notebook_parameters,
                                        run_notebooks)

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
PARAMETERS = {"a": CI_PARAMETERS, "b": CI_PARAMETERS_B}
TWICE = ("01_", "02_", "03_", "04_")  # the notebooks also run at set b
LANES = 2
CELL_TIMEOUT = 300  # seconds for one cell at the CI parameters (a hang fails with its cell named)
# Longest first (CI parameters, 2-core box), so that the two lanes end together; only an order:
# a wrong guess costs time, never a result.
LONGEST_FIRST = ("04_compare", "01b_free_speedups", "03_hogwild", "03b_sparse_hogwild",
                 "06_your_decision", "00_setup", "01_baseline", "05_beyond_one_machine",
                 "02_parameter_server")


class Course:
    """The executed course: :meth:`run` is one notebook's run at one parameter set."""

    def __init__(self, folder: Path, runs: dict[tuple[str, str], NotebookRun],
                 seconds: float) -> None:
        self.folder, self.runs, self.seconds = folder, runs, seconds

    def out(self, which: str) -> Path:
        """The folder of the executed copies at parameter set `which`."""
        return _out(self.folder, which)

    def figures(self, which: str) -> Path:
        """The folder the notebooks saved their figures in at parameter set `which`."""
        return _figures(self.folder, which)

    def run(self, name: str, which: str = "a") -> NotebookRun:
        """Notebook `name`'s run at parameter set `which`: ``run.ok``, ``run.error`` (names the
        cell, its source and the exception), ``run.output`` (the executed copy), ``run.seconds``."""
        if (name, which) not in self.runs:
            raise KeyError(f"{name} is not run at parameter set {which!r}")
        return self.runs[name, which]


def execute(folder: Path, lanes: int = LANES) -> Course:
    """Execute the course into `folder`, `lanes` notebooks at a time; return when all are done."""
    t0 = time.monotonic()
    names = sorted((p.stem for p in find_notebooks(NB_DIR)), key=_order)
    jobs = [(n, "a") for n in names] + [(n, "b") for n in names if n.startswith(TWICE)]
    locks = {n: threading.Lock() for n in names}
    context = multiprocessing.get_context("spawn")  # not fork: the test process has threads

    with ProcessPoolExecutor(lanes, mp_context=context) as processes, \
            ThreadPoolExecutor(lanes, thread_name_prefix="course") as lanes_:
        def lane(name: str, which: str) -> NotebookRun:
            with locks[name]:  # the two runs of one notebook never overlap
                return processes.submit(_execute, name, which, folder).result()
        futures = {job: lanes_.submit(lane, *job) for job in jobs}
        runs = {job: f.result() for job, f in futures.items()}
    return Course(folder, runs, time.monotonic() - t0)


def _execute(name: str, which: str, folder: Path) -> NotebookRun:
    """One notebook at one parameter set (in a lane's process); never raises."""
    path = NB_DIR / f"{name}.ipynb"
    declared = notebook_parameters(path)  # the runner refuses a name no notebook declares
    params = {k: v for k, v in PARAMETERS[which].items() if k in declared}
    done: list[NotebookRun] = []
    t0 = time.monotonic()
    try:
        run_notebooks(NB_DIR, _out(folder, which), figures_dir=_figures(folder, which),
                      parameters=params, only=[name], cell_timeout=CELL_TIMEOUT, progress=False,
                      on_done=done.append)
    except NotebookError:
        pass  # the run holds the error; each reader reports it
    except Exception as exc:  # refused before running: no run to hold it
        done.append(NotebookRun(path.name, _out(folder, which) / path.name,
                                time.monotonic() - t0, f"{type(exc).__name__}: {exc}"))
    return done[0]


def _out(folder: Path, which: str) -> Path:
    return folder / f"out_{which}"


def _figures(folder: Path, which: str) -> Path:
    return folder / f"figures_{which}"


def _order(name: str) -> int:
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else -1  # a new notebook: first
