"""Run the course notebooks headless with papermill: ``costtrain notebooks`` / ``make notebooks``.

Every notebook has one cell tagged ``parameters`` (papermill) holding small classroom values;
``ci=True`` injects even smaller ones (:data:`CI_PARAMETERS`). Notebooks run with the
``python3`` kernel, their own folder as working directory, and write figures to ``figures_dir``
(passed relative to that folder, so executed copies hold no machine paths).

The sources a course author edits are the jupytext "percent" files ``notebooks/NN_name.py``,
paired with the ``.ipynb``. ``reference=True`` (``make notebooks``) is the reference build:
it executes every notebook at the classroom defaults, writes the executed copy back over the
``.ipynb`` (cleaned by :func:`clean_reference`: no injected cell, no papermill timings, no
widget state) and the figures into the repository's ``figures/``. Any other run writes
executed copies to ``notebooks/out/`` and figures to ``notebooks/out/figures/`` (ignored).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..errors import CosttrainError
from ..result import check_folder_writable

KERNEL = "python3"
PARAMETERS_TAG = "parameters"
# NN_name and NNx_name (03b_ follows 03_: "_" sorts before letters)
NOTEBOOK_GLOB = "[0-9][0-9]*_*.ipynb"
# Small values for continuous integration; each notebook receives the ones it declares.
CI_PARAMETERS: dict[str, Any] = {
    "subset": 1200,
    "test_subset": 400,
    "total_epochs": 2,
    "workers_list": [2],
    "only": ["baseline", "hogwild 2x", "ps"],
    "oversub_subset": 300,
    "oversub_timeout": 5.0,
    "eval_every": 600,
    "advise_budget": 5.0,
    "average_every_list": [1, 8],  # 05: local SGD's H values (two: each run starts processes)
    "machines_list": [2, 4, 8],  # 05: machine counts to predict (no run: predictions are free)
    "sparse_train": 4000,
    "sparse_test": 1000,
    "sweep_k": [4, 512],
    "sweep_train": 2000,
    "decision_budget": 20.0,  # 06: seconds for advise's probes (some are skipped at this size)
    "wordnet_subset": 4096,  # 03b: WordNet nouns to train on (a power of two: full batches)
    "repeats": 2,  # 01b: alternating repeats of every lever; 04: of every configuration
    "measure_compile": False,  # 01b: torch.compile's first step alone outlasts a CI run (said so)
    "batch_sizes": [32, 128],  # 01b: batch size against time to accuracy
}
# A second, different CI set: the test runs 01-04 with both and checks that the executed text
# names only configurations that ran (no hard-coded names or counts).
CI_PARAMETERS_B: dict[str, Any] = {
    "subset": 600,
    "test_subset": 200,
    "total_epochs": 1,
    "epochs": 1,
    "threads_list": [1],
    "workers_list": [1],
    "only": ["baseline", "hogwild 2x"],
    "oversub_timeout": 0.0,
    "eval_every": 300,
    "advise_budget": 0.0,
}
MAX_IMAGE_BYTES = 200_000


class NotebookError(CosttrainError):
    """A notebook failed; the message names the notebook, the cell and the error."""


@dataclass
class NotebookRun:
    """One executed notebook: where its output went, how long it took, and any error."""

    name: str
    output: Path
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def find_notebooks(folder: str | Path = "notebooks",
                   only: Iterable[str] | None = None) -> list[Path]:
    """The numbered course notebooks in `folder`, in order (``only``: name prefixes to keep;
    ``03`` keeps 03_ and 03b_, ``03_`` only 03_)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CosttrainError(f"notebook folder {str(folder)!r} not found; run from the "
                             "repository root or pass --notebooks-dir.")
    paths = sorted(folder.glob(NOTEBOOK_GLOB))
    if only:
        only = list(only)
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
        if not paths:
            raise CosttrainError(f"no notebook in {str(folder)!r} starts with any of {only}.")
    if not paths:
        raise CosttrainError(f"no numbered notebooks ({NOTEBOOK_GLOB}) in {str(folder)!r}.")
    return paths


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Names and defaults of the notebook's ``parameters`` cell; error if it has none."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise NotebookError(
            f"{Path(path).name}: expected exactly one cell tagged {PARAMETERS_TAG!r}, found "
            f"{len(tagged)}. Tag the cell of small, overridable values (JupyterLab: property "
            "inspector > Cell Tags) so papermill can inject parameters.")
    return _literals(tagged[0].source, Path(path).name)


def _literals(source: str, name: str) -> dict[str, Any]:
    """Names and values (literals; else their source text) assigned in a parameters cell."""
    import ast
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookError(f"{name}: the parameters cell is not valid Python: "
                            f"{exc}") from None
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    try:
                        found[t.id] = ast.literal_eval(node.value)
                    except ValueError:
                        found[t.id] = ast.unparse(node.value)
    return found


def _describe(exc: BaseException, nb_path: Path) -> str:
    """A short description of a papermill failure that points at the cell of the source notebook."""
    from papermill.exceptions import PapermillExecutionError
    if not isinstance(exc, PapermillExecutionError):
        return f"{nb_path.name}: {type(exc).__name__}: {exc}"
    import nbformat
    cells = nbformat.read(nb_path, as_version=4).cells
    where = next((f"cell {i + 1} of {len(cells)}" for i, c in enumerate(cells)
                  if c.source == exc.source), "the injected parameters cell")
    src = exc.source.strip().splitlines()
    head = "\n    ".join(src[:6]) + ("\n    ..." if len(src) > 6 else "")
    return (f"{nb_path.name}: {where} (In [{exc.exec_count}]) raised {exc.ename}: "
            f"{exc.evalue}\n    {head}")


def run_notebook(path: str | Path, out_dir: str | Path, *,
                 parameters: Mapping[str, Any] | None = None, kernel: str = KERNEL,
                 cell_timeout: float | None = 900, progress: bool = True) -> NotebookRun:
    """Execute one notebook with papermill into `out_dir`; never raises for cell errors.

    Only parameters that the notebook declares are injected. The working directory is the
    notebook's folder, as in JupyterLab.
    """
    import papermill

    path = Path(path)
    declared = notebook_parameters(path)
    params = {k: v for k, v in (parameters or {}).items() if k in declared}
    out = Path(out_dir) / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(str(path), str(out), parameters=params, kernel_name=kernel,
                                   cwd=str(path.parent), progress_bar=progress,
                                   execution_timeout=cell_timeout)
    except Exception as exc:  # papermill wraps cell errors; keep going, report at the end
        error = _describe(exc, path)
    return NotebookRun(path.name, out, time.perf_counter() - t0, error)


def clean_reference(path: str | Path, source: str | Path | None = None) -> None:
    """Make an executed notebook a clean reference copy, in place.

    Drops papermill's injected-parameters cell and its metadata (timings, machine paths),
    widget state and execution timestamps; refuses error outputs and images over
    :data:`MAX_IMAGE_BYTES`. With `source` (the notebook that was run) the cell ids are kept.
    """
    import base64

    import nbformat
    nb = nbformat.read(path, as_version=4)
    ids = [c.get("id") for c in nbformat.read(source, as_version=4).cells] if source else None
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    for i, cell in enumerate(nb.cells):
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
        if ids and len(ids) == len(nb.cells):
            cell["id"] = ids[i]
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            continue
        # a widget cannot render without its state: keep the panels' text, drop progress bars
        cell["outputs"] = [o for o in cell.outputs if _keep(o)]
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise NotebookError(f"{Path(path).name}: cell {i + 1} stored an error "
                                    f"({out.get('ename')}: {out.get('evalue')}).")
            png = out.get("data", {}).get("image/png")
            if png and len(base64.b64decode(png)) > MAX_IMAGE_BYTES:
                raise NotebookError(f"{Path(path).name}: cell {i + 1} has an image over "
                                    f"{MAX_IMAGE_BYTES // 1000} kB; save it smaller.")
    _restate_opening(nb, Path(path))
    nbformat.write(nb, path)


def _restate_opening(nb: Any, path: Path) -> None:
    """Put this run's own time into the opening's "Measured minutes". Executed, the opening
    read the reference copy before this run, so the new copy would disagree with its own last
    cell; `path` (the executed copy, on disk) now holds this run's first and last cells."""
    import re

    from .arc import lesson, opening
    try:
        lesson(path.stem)
    except (KeyError, ValueError):
        return  # not a course notebook: nothing to restate
    text = str(opening(path.stem, path.parent))
    for cell in nb.cells:
        if cell.cell_type != "code" or not re.search(r"\bopening\(", cell.source):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/markdown" in data:
                data["text/markdown"] = text
                data["text/plain"] = repr(text)


def _keep(output: dict) -> bool:
    """False for a widget output other than a Run panel (e.g. a progress bar frozen at 0 %)."""
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" not in data:
        return True
    return str(data.get("text/plain", "")).startswith("Run panel")


def _figures_param(figures: Path, notebooks_dir: Path) -> str:
    """`figures` relative to the notebooks' folder when inside the project (outputs then hold
    no machine paths), else absolute (so a re-run from another folder writes the same place)."""
    if figures.is_relative_to(notebooks_dir.parent):
        return os.path.relpath(figures, notebooks_dir)
    return str(figures)


COURSE_STATE = ("scoreboard.json", "findings.json")  # what the notebooks hand on, in <notebooks>/out


@contextlib.contextmanager
def _course_state(out_dir: Path) -> Iterator[None]:
    """The kernels started inside keep the scoreboard and the findings in `out_dir` (the
    executed copies' folder; ``notebooks/out`` for the reference build), so a CI-sized or test
    run never overwrites what the classroom run concluded (:data:`scoreboard.STATE_ENV`)."""
    from .scoreboard import STATE_ENV
    before = os.environ.get(STATE_ENV)
    os.environ[STATE_ENV] = str(Path(out_dir).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STATE_ENV, None)
        else:
            os.environ[STATE_ENV] = before


def clear_course_state(notebooks_dir: str | Path = "notebooks") -> list[Path]:
    """Remove the scoreboard and the findings the notebooks wrote (``out/scoreboard.json``,
    ``out/findings.json`` next to them), so that a build of the whole course starts from none:
    a reference copy then shows only runs of its own build. Returns the files removed."""
    removed = []
    for name in COURSE_STATE:
        path = Path(notebooks_dir) / "out" / name
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def run_notebooks(notebooks_dir: str | Path = "notebooks", out_dir: str | Path | None = None, *,
                  figures_dir: str | Path | None = None, ci: bool = False,
                  reference: bool = False,
                  parameters: Mapping[str, Any] | None = None, only: Iterable[str] | None = None,
                  kernel: str = KERNEL, cell_timeout: float | None = 900,
                  progress: bool = True,
                  on_done: Callable[[NotebookRun], None] | None = None) -> list[NotebookRun]:
    """Run every numbered notebook with papermill; raise :class:`NotebookError` if any fails.

    Args:
        notebooks_dir: folder with ``NN_name.ipynb`` notebooks.
        out_dir: where executed copies go (default ``<notebooks_dir>/out``).
        figures_dir: where the notebooks save figures (default ``<notebooks_dir>/out/figures``;
            ``figures`` for the reference build).
        ci: inject :data:`CI_PARAMETERS` (small and fast) before `parameters`.
        reference: the reference build: classroom defaults, executed copies written back over
            the notebooks (cleaned, see :func:`clean_reference`), figures into ``figures``.
        parameters: extra values to inject (override the notebook's defaults).
        only: run only notebooks whose names start with one of these prefixes.
        on_done: called with each :class:`NotebookRun` as it finishes.
    """
    paths = find_notebooks(notebooks_dir, only)
    # fail fast, before minutes of running: a missing parameters cell, a mistyped name
    declared = set().union(*(notebook_parameters(p) for p in paths))
    if "figures_dir" in (parameters or {}):
        raise CosttrainError("set the figures folder with figures_dir= (--figures-dir), "
                             "not as a notebook parameter.")
    unknown = sorted(set(parameters or {}) - declared)
    if unknown:
        raise CosttrainError(f"no notebook has a parameter named {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(declared))}.")
    if reference and (ci or parameters or out_dir is not None):
        raise CosttrainError("the reference build runs the classroom defaults into the "
                             "notebooks themselves; drop --ci, -p and --out-dir.")
    for p in paths:
        check_parameter_types(parameters or {}, notebook_parameters(p), p.name)
    out_dir = Path(out_dir) if out_dir is not None else Path(notebooks_dir) / "out"
    if figures_dir is None:
        figures_dir = "figures" if reference else Path(notebooks_dir) / "out" / "figures"
    figures = Path(figures_dir).resolve()
    for folder, what, option in ((out_dir, "the executed notebooks' folder", "--out-dir"),
                                 (figures, "the figures folder", "--figures-dir")):
        try:  # a read-only checkout: say so before minutes of running
            check_folder_writable(folder, what)
        except CosttrainError as exc:
            raise CosttrainError(f"{exc} Pass {option} a folder you can write to.") from None
    params = {**(CI_PARAMETERS if ci else {}), **(parameters or {})}
    params["figures_dir"] = _figures_param(figures, Path(notebooks_dir).resolve())
    if reference and only is None:  # the whole course from 00: no earlier build's runs in its copies
        clear_course_state(notebooks_dir)
    runs = []
    for p in paths:
        with _course_state(out_dir):  # this run's scoreboard and findings: beside its copies
            run = run_notebook(p, out_dir, parameters=params, kernel=kernel,
                               cell_timeout=cell_timeout, progress=progress)
        if reference and run.ok:
            clean_reference(run.output, p)
            run.output = p.parent / run.output.name
            run.output.write_bytes((out_dir / p.name).read_bytes())
        runs.append(run)
        if on_done:
            on_done(run)
    failed = [r for r in runs if not r.ok]
    if failed:
        raise NotebookError(f"{len(failed)} of {len(runs)} notebook(s) failed:\n"
                            + "\n".join(r.error for r in failed))
    return runs


def _type_fits(value: Any, default: Any) -> bool:
    """`value` may replace `default`: same type (an int where a float is expected is fine)."""
    if value is None or default is None or isinstance(default, str):  # str: maybe non-literal
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def check_parameter_types(parameters: Mapping[str, Any], defaults: Mapping[str, Any],
                          notebook: str = "the notebook") -> None:
    """Refuse, before any cell runs, values whose type differs from the notebook's default."""
    for name, value in parameters.items():
        if name in defaults and not _type_fits(value, defaults[name]):
            default = defaults[name]
            raise CosttrainError(
                f"parameter {name}={value!r} is of type {type(value).__name__}, but {notebook} "
                f"expects {type(default).__name__} (its default is {name}={default!r}).")


def defaults_of(notebook: str, folders: Iterable[str | Path] | None = None) -> dict[str, Any]:
    """The parameters cell's defaults of `notebook` (e.g. ``"03_hogwild"``), read from its
    ``.ipynb``, else its jupytext ``.py`` twin, in the first of `folders` that has one (default:
    the working directory, its ``notebooks/`` and the repository's ``notebooks/``); {} when
    none is found."""
    folders = folders or [Path.cwd(), Path.cwd() / "notebooks",
                          Path(__file__).resolve().parents[2] / "notebooks"]
    for folder in map(Path, folders):
        ipynb, py = folder / f"{notebook}.ipynb", folder / f"{notebook}.py"
        if ipynb.is_file():
            return notebook_parameters(ipynb)
        if py.is_file():
            cell = re.search(r'^# %% tags=\["parameters"\]\n(.*?)(?=^# %%|\Z)', py.read_text(),
                             re.S | re.M)
            if cell:
                return _literals(cell[1], py.name)
    return {}


def check_parameters(namespace: Mapping[str, Any], notebook: str) -> None:
    """A notebook's first cell after its parameters calls this with ``globals()``: a value
    papermill injected (``papermill -p subset abc``) or an edit gave whose type differs from
    the default is refused there, in one sentence, by the rule of ``costtrain notebooks``
    (:func:`check_parameter_types`), before any cell uses it. Nothing is checked when the
    notebook's file is not found (:func:`defaults_of`)."""
    defaults = defaults_of(notebook)
    check_parameter_types({k: namespace[k] for k in defaults if k in namespace}, defaults,
                          notebook)


def _param(text: str) -> tuple[str, Any]:
    """``name=value`` with value parsed as a Python literal when possible."""
    import ast
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``costtrain notebooks``."""
    parser.add_argument("--reference", action="store_true",
                        help="the reference build (make notebooks): classroom defaults, "
                             "executed copies written back into the notebooks, figures into "
                             "figures/")
    parser.add_argument("--ci", action="store_true",
                        help="small CI parameters (a few minutes in all) instead of the "
                             "classroom defaults")
    parser.add_argument("-p", "--param", type=_param, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="override a notebook parameter, e.g. -p subset=5000 (repeatable)")
    parser.add_argument("--only", nargs="*", default=None, metavar="PREFIX",
                        help="run only notebooks whose names start with these, e.g. 01 03")
    parser.add_argument("--notebooks-dir", default="notebooks",
                        help="folder with the numbered notebooks (default: %(default)s)")
    parser.add_argument("--out-dir", default=None,
                        help="where executed copies go (default: <notebooks-dir>/out)")
    parser.add_argument("--figures-dir", default=None,
                        help="where figures are saved (default: <notebooks-dir>/out/figures; "
                             "figures/ with --reference)")
    parser.add_argument("--cell-timeout", type=float, default=900,
                        help="seconds one cell may run before the notebook fails "
                             "(default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_cli(args: argparse.Namespace) -> None:
    """Entry point of ``costtrain notebooks``: prints one line per notebook."""
    def done(r: NotebookRun) -> None:
        print(f"{r.name:<28} {'ok' if r.ok else 'FAILED':<6} {r.seconds:7.1f} s  -> {r.output}",
              flush=True)

    t0 = time.perf_counter()
    runs = run_notebooks(args.notebooks_dir, args.out_dir, figures_dir=args.figures_dir,
                         ci=args.ci, reference=args.reference, parameters=dict(args.param),
                         only=args.only,
                         cell_timeout=args.cell_timeout, progress=not args.no_progress,
                         on_done=done)
    print(f"{len(runs)} notebook(s) in {time.perf_counter() - t0:.1f} s")
    return None
