"""The course notebooks executed headless by papermill at two CI parameter sets (they must finish,
save their figures and name only configurations that ran) and the reference outputs checked by
nbval (the slow half of test_notebooks.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_notebooks import CHECK, FIGURES, NB_DIR, REFERENCE, _code, _tagged

from costtrain.advice.compare import comparison_plan
from costtrain.course.notebooks import (CI_PARAMETERS, CI_PARAMETERS_B, NotebookError,
                                        notebook_parameters, run_notebooks)
from costtrain.utils import num_cores


def _run_all(tmp: Path, params: dict, only=None) -> dict:
    runs = {}
    try:
        run_notebooks(NB_DIR, tmp / "out", figures_dir=tmp / "figures", parameters=params, only=only,
                      cell_timeout=300, progress=False, on_done=lambda r: runs.update({r.name: r}))
    except NotebookError:
        pass  # each notebook's own test reports its failure
    return runs


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every course notebook run once by papermill on the CI parameters."""
    tmp = tmp_path_factory.mktemp("course")
    return tmp, _run_all(tmp, CI_PARAMETERS)


@pytest.fixture(scope="module")
def executed_b(tmp_path_factory):
    """Notebooks 01-04 run by papermill on a second, different CI parameter set."""
    tmp = tmp_path_factory.mktemp("course_b")
    return tmp, _run_all(tmp, CI_PARAMETERS_B, only=["01_", "02_", "03_", "04_"])


@pytest.mark.parametrize("name", list(FIGURES))
def test_notebook_runs_headless_and_saves_its_figures(executed, name):
    tmp, runs = executed
    run = runs[f"{name}.ipynb"]
    assert run.ok, run.error  # names the cell, its source and the exception
    nb = nbformat.read(run.output, as_version=4)
    (i,) = _tagged(nb, "injected-parameters")
    assert f"subset = {CI_PARAMETERS['subset']}" in nb.cells[i].source
    assert all(c.execution_count for c in _code(nb))
    outputs = [o for c in _code(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # conclusions are computed from the run: Markdown generated in code
    assert any("text/markdown" in o.get("data", {}) for o in outputs)
    # the panel trained headless, and said with what
    if NB_DIR / f"{name}.ipynb" in REFERENCE:
        assert "settings used: " in _text(nb)
    for fig in FIGURES[name]:
        f = tmp / "figures" / fig
        assert f.exists() and f.stat().st_size > 5000, f"{name} did not save {fig}"


def test_the_ending_writes_the_card_and_checks_its_prediction(executed):
    """06 at the CI parameters: the decision card (Markdown and PNG) whose first line is the
    job, a verdict word the probes allow, the job run from the panel set beside its predicted
    range, Next."""
    tmp, runs = executed
    nb = nbformat.read(runs["06_your_decision.ipynb"].output, as_version=4)
    text = _text(nb)
    assert CI_PARAMETERS["decision_budget"] < 90  # the CI budget is the small one
    card = (tmp / "figures" / "06_decision_card.md").read_text()
    assert card.startswith("# Your job, your machine, your decision")
    epochs = 10  # 06's default job: 10 epochs of the (CI-sized) training set
    assert card.splitlines()[2].startswith(
        f"**Job:** simple on fashion-mnist, {epochs} epoch(s) of {CI_PARAMETERS['subset']:,} "
        f"training images = {epochs * CI_PARAMETERS['subset']:,} samples")
    assert re.search(r"\*\*(Recommended|Tie \(within noise\)|Soonest predicted, one probe each):"
                     r"\*\* ", text)
    assert f"--subset {CI_PARAMETERS['subset']}" in card and f"--epochs {epochs}" in card
    assert re.search(r"predicted [\d.]+ s \[[\d.]+ s to [\d.]+ s\], measured [\d.]+ s of set-up "
                     r"\+ training \([\d.]+x the prediction, (inside|above|below) the predicted "
                     r"range; one run\)", text)
    assert "**Next:**" in text


def _text(nb, skip: str | None = None) -> str:
    """Every text a reader sees in the outputs (streams, Markdown, plain text)."""
    parts = []
    for c in _code(nb):
        if skip and skip in c.source:
            continue
        for o in c.outputs:
            parts.append(o.get("text", ""))
            data = o.get("data", {})
            if "image/png" not in data:  # a figure's text is "<Figure size 700x400 ...>"
                parts.append(data.get("text/markdown", "") or data.get("text/plain", ""))
    return "\n".join(parts)


def _ran(name: str, params: dict, declared: dict) -> tuple[re.Pattern, set]:
    """A pattern for the configuration names of notebook `name` and the ones that ran."""
    p = {**declared, **{k: v for k, v in params.items() if k in declared}}
    cores = num_cores()
    if name == "01_baseline":
        threads = p["threads_list"] or sorted({1, max(1, cores // 2), cores})
        return re.compile(r"\b(\d+) threads?\b"), {str(t) for t in threads} | {str(cores)}
    if name == "02_parameter_server":
        # one worker always runs (the yardstick: sync and async then take the same steps)
        workers = sorted({1, *(p["workers_list"] or ([1, 2, 4] if cores >= 4 else [1, 2]))})
        ran = {f"{m} {w}" for m in ("sync", "async") for w in workers} | {f"sync {workers[-1]}"}
        return re.compile(r"\bps-((?:sync|async) \d+)(?:w\b| workers?\b)"), ran
    if name == "05_beyond_one_machine":  # local SGD runs, named "local-sgd 2w H=8"
        hs = {1, *p["average_every_list"]}  # H = 1 always runs: the same SGD as ps-sync, the yardstick
        return re.compile(r"\blocal-sgd (\d+w H=\d+)"), {f"{p['workers']}w H={h}" for h in hs}
    if name == "01b_free_speedups":  # batch sizes, named "batch 32"
        return re.compile(r"\bbatch (\d+)\b"), {str(b) for b in p["batch_sizes"]}
    if name == "03b_sparse_hogwild":
        top = p["processes"] or cores
        return re.compile(r"Hogwild! (\d+) process"), {str(top)}
    if name == "03_hogwild":
        t = p["total_epochs"]
        splits = [(q, t // q) for q in range(1, t + 1) if t % q == 0]
        configs = p["configs"] or list(dict.fromkeys([splits[0], splits[-1]] + splits[1:-1][:1]))
        return (re.compile(r"\b(\d+x\d+)\b|\b(\d+) process(?:es)? x (\d+) epoch"),
                {f"{a}x{b}" for a, b in configs})
    only = p["only"]
    labels = {label for label, _, _ in comparison_plan(p["total_epochs"])
              if not only or any(label.startswith(o) for o in only)}
    return re.compile(r"\b(baseline \d+ threads?|hogwild \d+x\d+(?:/\d+)?(?: shards)?|ps (?:sync|async))\b"), labels


def _named(pattern: re.Pattern, text: str) -> set:
    found = set()
    for m in pattern.finditer(text):
        groups = [g for g in m.groups() if g]
        found.add(groups[0] if len(groups) == 1 else "x".join(groups))
    return found


@pytest.mark.parametrize("name", [p.stem for p in REFERENCE
                                  if p.stem not in ("00_setup", "06_your_decision")])
def test_executed_text_names_only_configurations_that_ran(executed, executed_b, name):
    for (tmp, runs), params in ((executed, CI_PARAMETERS), (executed_b, CI_PARAMETERS_B)):
        if name in ("01b_free_speedups", "03b_sparse_hogwild", "05_beyond_one_machine") \
                and params is CI_PARAMETERS_B:  # (06 names the configurations advise probed)
            continue  # the second set is for 01-04; 01b, 03b and 05 are run at the first only
        run = runs[f"{name}.ipynb"]
        assert run.ok, run.error
        nb = nbformat.read(run.output, as_version=4)
        # the advice probes configurations of its own; it names those
        text = _text(nb, skip="recommend(")
        pattern, ran = _ran(name, params, notebook_parameters(NB_DIR / f"{name}.ipynb"))
        named = _named(pattern, text)
        assert named, f"{name}: the outputs name no configuration at all"
        assert named <= ran, f"{name} at {params}: names {sorted(named - ran)}, but only {sorted(ran)} ran"


def _checked_copy(path: Path, folder: Path) -> Path:
    """The committed notebook with only what nbval compares: the imports, the parameters
    (classroom defaults) and the cells marked NBVAL_CHECK_OUTPUT, each with its reference output."""
    nb = nbformat.read(path, as_version=4)
    first = _code(nb)[0]
    nb.cells = [c for c in nb.cells if c is first or "parameters" in c.metadata.get("tags", [])
                or CHECK in c.source]
    out = folder / path.name
    nbformat.write(nb, out)
    return out


def test_nbval_checks_the_committed_reference_outputs(tmp_path):
    """nbval re-runs the checked cells of each committed notebook at its classroom defaults and
    compares their output with the reference: a package change that alters a dataset size, a
    work plan, a configuration table, a torchrun command or the code shown fails here."""
    paths = [str(_checked_copy(p, tmp_path)) for p in REFERENCE]
    p = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), "--nbval-cell-timeout", "300", *paths],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert " passed" in p.stdout


def test_papermill_with_a_mistyped_parameter_stops_at_the_check_cell(tmp_path, monkeypatch):
    """Issue 32: plain papermill (not `costtrain notebooks`) with `-p subset abc` used to fail
    deep inside the first data cell with a TypeError; the cell after the parameters refuses it
    by the same rule, in one sentence."""
    import os

    import papermill
    root = str(NB_DIR.parent)  # the kernel imports this checkout's costtrain
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root,
                                                                    os.environ.get("PYTHONPATH")])))
    cwd = os.getcwd()
    os.chdir(NB_DIR)  # as `costtrain notebooks` and Jupyter run them: their own folder
    try:
        with pytest.raises(papermill.PapermillExecutionError) as err:
            papermill.execute_notebook(str(NB_DIR / "03_hogwild.ipynb"),
                                       str(tmp_path / "out.ipynb"), parameters={"subset": "abc"},
                                       progress_bar=False, kernel_name="python3")
    finally:
        os.chdir(cwd)
    assert err.value.ename == "CosttrainError", err.value
    assert ("parameter subset='abc' is of type str, but 03_hogwild expects int"
            in err.value.evalue), err.value.evalue
