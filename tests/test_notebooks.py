"""The course notebooks: well formed and clean as committed; executed headless by papermill
on the CI parameters (they must finish and save their figures); then re-run by nbval."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from costtrain.cli import main
from costtrain.notebooks import (CI_PARAMETERS, NotebookError, _param, find_notebooks,
                                 notebook_parameters, run_notebooks)

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
FIGURES = {
    "00_setup": ["00_samples.png"],
    "01_baseline": ["01_threads.png", "01_time_breakdown.png"],
    "02_parameter_server": ["02_ps_throughput.png", "02_comm_compute.png", "02_staleness.png"],
    "03_hogwild": ["03_hogwild_losses.png", "03_native_losses.png", "03_oversubscription.png"],
    "04_compare": ["04_losses_samples.png", "04_losses_seconds.png", "04_accuracy_vs_time.png",
                   "04_cost_to_target.png"],
    "05_beyond_one_machine": ["05_bytes_vs_accuracy.png", "05_predicted_time_to_accuracy.png"],
}
NOTEBOOKS = [NB_DIR / f"{name}.ipynb" for name in FIGURES]
MACHINE_PATH = re.compile(r"(?<![\w.~])/(home|Users|root|tmp|work|mnt|opt|var|usr|private)/"
                          r"|\b[A-Za-z]:\\\\")
TRAINING_LOOP = re.compile(r"\.backward\(|\.zero_grad\(|optimizer\.step\(|opt\.step\(")
TRAINS = re.compile(r"\b(train_baseline|train_hogwild|train_parameter_server|train_local_sgd|train_model|"
                    r"run_comparison)\(")
FORBIDDEN = ("sys.path", "matplotlib.use(", "interact_manual", "set_start_method")


def _ids(paths):
    return [p.stem for p in paths]


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _tagged(nb, tag):
    return [i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])]


# --- the notebooks as committed --------------------------------------------------------------

def test_the_course_has_its_notebooks_in_order():
    names = [p.stem for p in find_notebooks(NB_DIR)]
    assert set(FIGURES) <= set(names) and names == sorted(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    intro = nb.cells[0]
    assert intro.cell_type == "markdown"
    assert "You will learn" in intro.source and "Time on a laptop" in intro.source
    (i,) = _tagged(nb, "parameters")
    assert nb.cells[i + 1].cell_type == "code", "derived values belong in the cell after it"
    params = notebook_parameters(path)
    assert {"figures_dir", "progress", "subset", "seed"} <= set(params)
    # papermill must read every line too, else it cannot tell which parameters it overrides
    assert list(papermill.inspect_notebook(str(path))) == list(params)
    sources = "\n".join(c.source for c in _code(nb))
    assert not TRAINING_LOOP.search(sources), "training loops belong in the costtrain package"
    for bad in FORBIDDEN:
        assert bad not in sources, bad
    assert "training_controls(" in sources and "read_controls(controls)" in sources
    assert "%matplotlib inline" in sources
    varying = [c for c in _code(nb) if TRAINS.search(c.source)]
    assert varying and all("# NBVAL_IGNORE_OUTPUT" in c.source for c in varying)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_has_no_errors_or_machine_paths(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", [])
        assert not [o for o in outputs if o.output_type == "error"], f"cell {i} stores an error"
        text = cell.source + json.dumps(outputs)
        assert not MACHINE_PATH.search(text), f"cell {i}: machine path {MACHINE_PATH.search(text)[0]}"


def test_committed_notebooks_match_their_builder():
    p = subprocess.run([sys.executable, str(NB_DIR / "_build.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_widgets_only_set_values():
    from costtrain.widgets import epoch_splits, read_controls, split_control, training_controls
    c = training_controls(method="hogwild", total_epochs=4, processes=2, batch_size=32, lr=0.05)
    assert read_controls(c) == dict(method="hogwild", processes=2, epochs_per_process=2,
                                    batch_size=32, lr=0.05)
    c.controls["split"].value = (4, 1)
    assert read_controls(c)["processes"] * read_controls(c)["epochs_per_process"] == 4
    assert epoch_splits(6) == [(1, 6), (2, 3), (3, 2), (6, 1)]
    with pytest.raises(ValueError, match="cannot share 4 epochs"):
        split_control(4, 3)
    with pytest.raises(ValueError, match="method must be one of"):
        training_controls(method="sgd")
    with pytest.raises(ValueError, match="learning rate"):
        training_controls(lr=5.0)
    with pytest.raises(ValueError, match="at least one value"):
        training_controls(batch_size=None, lr=None)


# --- the runner --------------------------------------------------------------------------------

def _write(folder: Path, name: str, cells: list, tag: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, src in enumerate(cells):
        cell = nbformat.v4.new_code_cell(src)
        if i == 0 and tag:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_a_notebook_without_parameters_cell_is_refused_before_running(tmp_path):
    _write(tmp_path / "nbs", "01_fine.ipynb", ["value = 1", "print(value)"])
    _write(tmp_path / "nbs", "02_untagged.ipynb", ["value = 1", "print(value)"], tag=False)
    with pytest.raises(NotebookError, match="02_untagged.ipynb: expected exactly one cell "
                                            "tagged 'parameters', found 0"):
        run_notebooks(tmp_path / "nbs", tmp_path / "out", figures_dir=tmp_path / "figs")
    assert not (tmp_path / "out").exists()


def test_a_mistyped_parameter_is_refused_before_running(tmp_path):
    _write(tmp_path / "nbs", "01_fine.ipynb", ["value = 1", "print(value)"])
    with pytest.raises(ValueError, match="no notebook has a parameter named valeu; known: value"):
        run_notebooks(tmp_path / "nbs", tmp_path / "out", parameters={"valeu": 2})
    assert not (tmp_path / "out").exists()


def test_runner_injects_parameters_and_names_the_failing_cell(tmp_path):
    nbs = tmp_path / "nbs"
    _write(nbs, "01_ok.ipynb", ["value = 1\nfigures_dir = 'nowhere'",
                                "from pathlib import Path\n"
                                "Path(figures_dir, 'ok.txt').write_text(str(value))"])
    _write(nbs, "02_bad.ipynb", ["value = 1", "x = 2", "raise ValueError(f'boom {value}')"])
    done = []
    with pytest.raises(NotebookError) as e:
        run_notebooks(nbs, tmp_path / "out", figures_dir=tmp_path / "figs",
                      parameters={"value": 7}, progress=False, on_done=done.append)
    msg = str(e.value)
    assert "1 of 2 notebook(s) failed" in msg
    assert "02_bad.ipynb: cell 3 of 3" in msg and "ValueError: boom 7" in msg
    assert "raise ValueError" in msg  # the failing cell's source
    assert (tmp_path / "figs" / "ok.txt").read_text() == "7"  # injected, and the run went on
    assert [r.ok for r in done] == [True, False]
    assert (tmp_path / "out" / "02_bad.ipynb").exists()


def test_cli_runs_notebooks_and_reports_failures(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    _write(nbs, "01_ok.ipynb", ["value = 1\nfigures_dir = 'nowhere'",
                                "from pathlib import Path\n"
                                "Path(figures_dir, 'v.txt').write_text(repr(value))",
                                "assert value != 0, 'value must not be 0'"])
    args = ["notebooks", "--notebooks-dir", str(nbs), "--figures-dir", str(tmp_path / "figs"),
            "--no-progress"]
    assert main([*args, "-p", "value=[3, 4]"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"01_ok\.ipynb +ok .* -> .*out/01_ok\.ipynb", out), out
    assert (tmp_path / "figs" / "v.txt").read_text() == "[3, 4]"
    assert main([*args, "-p", "value=0", "--only", "01"]) == 2
    err = capsys.readouterr().err
    assert "costtrain: error: 1 of 1 notebook(s) failed" in err
    assert "01_ok.ipynb: cell 3 of 3 (In [4]) raised AssertionError: value must not be 0" in err


def test_cli_options(capsys):
    assert _param("subset=5000") == ("subset", 5000)
    assert _param("workers_list=[1, 2]") == ("workers_list", [1, 2])
    assert _param("dataset=mnist") == ("dataset", "mnist")
    with pytest.raises(SystemExit):
        main(["notebooks", "-p", "no-equals-sign"])
    assert "expected NAME=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["notebooks", "--help"])
    assert e.value.code == 0 and "--ci" in capsys.readouterr().out


# --- the real notebooks, executed --------------------------------------------------------------

@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every course notebook run once by papermill on the CI parameters."""
    tmp = tmp_path_factory.mktemp("course")
    runs = {}
    try:
        run_notebooks(NB_DIR, tmp / "out", figures_dir=tmp / "figures", ci=True,
                      cell_timeout=300, progress=False, on_done=lambda r: runs.update({r.name: r}))
    except NotebookError:
        pass  # each notebook's own test reports its failure
    return tmp, runs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FIGURES))
def test_notebook_runs_headless_and_saves_its_figures(executed, name):
    tmp, runs = executed
    run = runs[f"{name}.ipynb"]
    assert run.ok, run.error  # names the cell, its source and the exception
    nb = nbformat.read(run.output, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    (i,) = _tagged(nb, "injected-parameters")
    assert f"subset = {CI_PARAMETERS['subset']}" in nb.cells[i].source
    assert all(c.execution_count for c in _code(nb))
    outputs = [o for c in _code(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # conclusions are computed from the run: Markdown generated in code
    assert any("text/markdown" in o.get("data", {}) for o in outputs)
    for fig in FIGURES[name]:
        f = tmp / "figures" / fig
        assert f.exists() and f.stat().st_size > 5000, f"{name} did not save {fig}"


@pytest.mark.slow
def test_nbval_passes_on_the_executed_notebooks(executed):
    tmp, runs = executed
    paths = [str(r.output) for r in runs.values() if r.ok]
    assert paths
    p = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp), "--nbval-cell-timeout", "300", *paths],
                       cwd=tmp, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert " passed" in p.stdout
