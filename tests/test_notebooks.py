"""The course notebooks: sources and executed reference copies in step and clean; the widgets'
contract; the runner on small notebooks written here. The course itself executed, and its
reference outputs checked by nbval: slow/test_notebooks_slow.py."""
from __future__ import annotations

import base64
import inspect
import json
import re
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from costtrain.cli import main
from costtrain.errors import CosttrainError
from costtrain.course.notebooks import (MAX_IMAGE_BYTES,
                                        NotebookError, _param, find_notebooks, notebook_parameters,
                                        run_notebooks)

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
FIGURES = {
    "00_setup": ["00_samples.png"],
    "01_baseline": ["01_threads.png", "01_time_breakdown.png"],
    "01b_free_speedups": ["01b_levers.png", "01b_compile_break_even.png",
                          "01b_batch_time_to_accuracy.png"],
    "02_parameter_server": ["02_ps_throughput.png", "02_comm_compute.png", "02_staleness.png"],
    "03_hogwild": ["03_hogwild_losses.png", "03_native_losses.png", "03_oversubscription.png"],
    "03b_sparse_hogwild": ["03b_speedup.png", "03b_sparsity_sweep.png", "03b_collisions.png",
                           "03b_wordnet_rows.png", "03b_wordnet_collisions.png"],
    "04_compare": ["04_losses_samples.png", "04_losses_seconds.png", "04_accuracy_vs_time.png",
                   "04_cost_to_target.png"],
    "05_beyond_one_machine": ["05_bytes_vs_accuracy.png", "05_predicted_time_to_accuracy.png"],
    "06_your_decision": ["06_decision_card.png"],
}
NOTEBOOKS = [NB_DIR / f"{name}.ipynb" for name in FIGURES]
# Notebooks that follow the course's conventions (Run panel, exercises, executed reference copy
# checked by nbval): all of them.
REFERENCE = list(NOTEBOOKS)
MACHINE_PATH = re.compile(r"(?<![\w.~])/(home|Users|root|tmp|work|mnt|opt|var|usr|private)/"
                          r"|\b[A-Za-z]:\\\\")
TRAINING_LOOP = re.compile(r"\.backward\(|\.zero_grad\(|optimizer\.step\(|opt\.step\(")
TRAINS = re.compile(r"\b(train_baseline|train_hogwild|train_parameter_server|train_local_sgd|train_model|"
                    r"run_comparison|recommend)\(|panel\.run\(")
FORBIDDEN = ("sys.path", "matplotlib.use(", "interact_manual", "set_start_method")
CHECK = "# NBVAL_CHECK_OUTPUT"


def _ids(paths):
    return [p.stem for p in paths]


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _tagged(nb, tag):
    return [i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])]


def _cells(nb):
    """What a source and its notebook must agree on: each cell's type, source and tags."""
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


# --- the notebooks as committed --------------------------------------------------------------

def test_the_course_has_its_notebooks_in_order():
    names = [p.stem for p in find_notebooks(NB_DIR)]
    assert set(FIGURES) <= set(names) and names == sorted(names)
    assert not (NB_DIR / "_build.py").exists(), "the sources are the jupytext .py files"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_and_its_jupytext_source_are_in_sync(path):
    source = path.with_suffix(".py")
    assert source.exists(), f"{source.name} (jupytext percent source) is missing"
    text = jupytext.read(source)
    assert text.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    nb = nbformat.read(path, as_version=4)
    assert _cells(text) == _cells(nb), (
        f"{path.name} and {source.name} differ: edit the .py and run "
        f"`jupytext --sync notebooks/{source.name}`, then `make notebooks`")


@pytest.mark.parametrize("path", REFERENCE, ids=_ids(REFERENCE))
def test_notebook_is_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    intro = nb.cells[0]
    assert intro.cell_type == "markdown"
    assert "You will learn" in intro.source and "**Time:**" in intro.source
    assert "run_header()" in _code(nb)[0].source, "the first code cell says where it ran"
    (i,) = _tagged(nb, "parameters")
    assert nb.cells[i + 1].cell_type == "code", "derived values belong in the cell after it"
    params = notebook_parameters(path)
    assert {"figures_dir", "progress", "subset", "seed"} <= set(params)
    assert params["figures_dir"] == "out/figures", "interactive runs write to the ignored folder"
    # papermill must read every line too, else it cannot tell which parameters it overrides
    assert list(papermill.inspect_notebook(str(path))) == list(params)
    sources = "\n".join(c.source for c in _code(nb))
    assert not TRAINING_LOOP.search(sources), "training loops belong in the costtrain package"
    for bad in FORBIDDEN:
        assert bad not in sources, bad
    assert "run_panel(" in sources and "panel.run()" in sources
    assert "%matplotlib inline" in sources
    checked = [c for c in _code(nb) if CHECK in c.source]
    assert checked, "nbval must check something against the reference"
    assert not [c.source for c in checked if TRAINS.search(c.source)], \
        "a checked cell must print the same on every machine: no training in it"
    if path.stem != "00_setup":
        md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert md.count("<details><summary>Hint</summary>") >= 3
        # a worked answer is folded Markdown, typed or computed from the run (worked_answer(...))
        assert md.count("<details><summary>Worked answer</summary>") + sources.count("worked_answer(") >= 3
        assert "check_prediction(" in sources


def test_notebooks_import_from_the_course_facade_only():
    """Lessons name no internal module: every costtrain import is the course's façade, the
    package's top level (the trainers, the registry) or the original project's import path."""
    allowed = {"costtrain", "costtrain.course", "costtrain.hogwild", "costtrain.methods"}
    for p in NOTEBOOKS:
        text = p.with_suffix(".py").read_text()
        found = set(re.findall(r"^\s*(?:from|import) (costtrain[\w.]*)", text, re.M))
        assert found <= allowed, (p.name, found - allowed)
        assert not re.search(r"costtrain\.(run|data|train|advice)\b", text), p.name


def test_the_mechanics_are_shown_and_sourced():
    text = {p.stem: p.with_suffix(".py").read_text() for p in NOTEBOOKS}
    assert "inspect.getsource(worker)" in text["03_hogwild"]
    assert "arxiv.org/abs/1106.5730" in text["03_hogwild"] and "Niu" in text["03_hogwild"]
    assert "Where Hogwild! shines: sparse models" in text["03_hogwild"]
    assert "my_model.py" in text["03_hogwild"]
    for fn in ("work", "serve"):
        assert f"inspect.getsource({fn})" in text["02_parameter_server"]
    assert "](diagrams/parameter_server.svg)" in text["02_parameter_server"]
    assert "](diagrams/hogwild_races.svg)" in text["03_hogwild"]
    assert "Dean et al." in text["02_parameter_server"] and "Li et al." in text["02_parameter_server"]
    assert "Goyal et al." in text["02_parameter_server"]
    assert "multiprocessing.html" in text["01_baseline"] and "context switch" in text["01_baseline"]
    assert "**End to end**" in text["01_baseline"]
    assert "Niu, Recht, Ré and Wright" in (ROOT / "costtrain" / "hogwild.py").read_text()


@pytest.mark.parametrize("path", REFERENCE, ids=_ids(REFERENCE))
def test_committed_notebook_is_a_clean_executed_reference(path):
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata
    assert not _tagged(nb, "injected-parameters")
    assert all(c.execution_count for c in _code(nb)), "commit the executed copy (make notebooks)"
    assert "ran " in json.dumps(_code(nb)[0].outputs), "the first cell prints where it ran"
    for i, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", [])
        assert not [o for o in outputs if o.output_type == "error"], f"cell {i} stores an error"
        assert "papermill" not in cell.metadata and "execution" not in cell.metadata
        text = cell.source + json.dumps(outputs)
        assert not MACHINE_PATH.search(text), f"cell {i}: machine path {MACHINE_PATH.search(text)[0]}"
        for o in outputs:
            png = o.get("data", {}).get("image/png")
            assert not png or len(base64.b64decode(png)) <= MAX_IMAGE_BYTES, f"cell {i}: image too big"
            assert "Traceback" not in o.get("text", ""), f"cell {i} printed a traceback"


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


def test_a_build_of_the_whole_course_starts_without_an_earlier_builds_scoreboard(tmp_path):
    """The reference build clears out/scoreboard.json and out/findings.json first, so that 01's
    copy cannot show runs of an earlier build's 06."""
    from costtrain.course.notebooks import clear_course_state
    out = tmp_path / "nbs" / "out"
    out.mkdir(parents=True)
    for name in ("scoreboard.json", "findings.json", "keep.txt"):
        (out / name).write_text("[]")
    assert sorted(p.name for p in clear_course_state(tmp_path / "nbs")) == ["findings.json",
                                                                            "scoreboard.json"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert clear_course_state(tmp_path / "nbs") == []
    assert "clear_course_state(notebooks_dir)" in inspect.getsource(run_notebooks)


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
    assert main([*args, "-p", "value=34"]) == 0  # an int, as the default (types are checked)
    out = capsys.readouterr().out
    assert re.search(r"01_ok\.ipynb +ok .* -> .*out/01_ok\.ipynb", out), out
    assert (tmp_path / "figs" / "v.txt").read_text() == "34"
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_the_cell_after_the_parameters_checks_their_types(path):
    """A plain papermill run (or an edit) gets the rule `costtrain notebooks` applies: the
    first cell after the parameters checks their types against the notebook's defaults."""
    nb = nbformat.read(path, as_version=4)
    (i,) = _tagged(nb, "parameters")
    assert f'check_parameters(globals(), "{path.stem}")' in nb.cells[i + 1].source


def test_check_parameters_reads_the_defaults_and_refuses_a_wrong_type(tmp_path, monkeypatch):
    from costtrain.course.notebooks import check_parameters, defaults_of
    monkeypatch.chdir(tmp_path)  # not found here: the repository's notebooks are
    assert defaults_of("03_hogwild")["subset"] == 6000
    with pytest.raises(CosttrainError, match="parameter subset='abc' is of type str, but "
                                             "03_hogwild expects int"):
        check_parameters({"subset": "abc", "lr": 0.01}, "03_hogwild")
    check_parameters({"subset": None, "lr": 1, "configs": [(2, 1)]}, "03_hogwild")
    (tmp_path / "09_mine.py").write_text('# %% tags=["parameters"]\nsteps = 3\n\n# %%\nx = 1\n')
    assert defaults_of("09_mine") == {"steps": 3}  # a jupytext twin alone will do
    check_parameters({"anything": "goes"}, "no_such_notebook")  # nothing to compare against
