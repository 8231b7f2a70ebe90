"""The course notebooks executed: each once by papermill for the whole session (the `course`
fixture, tests/course_runs.py), at two CI parameter sets for 01-04; they must finish, save their
figures and name only configurations that ran. And the committed reference outputs checked by
nbval at the classroom defaults (the slow half of test_notebooks.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_notebooks import CHECK, FIGURES, NB_DIR, REFERENCE, _code, _tagged

from costtrain.advice.compare import comparison_plan
from costtrain.course.notebooks import CI_PARAMETERS, CI_PARAMETERS_B, notebook_parameters
from costtrain.utils import num_cores

# the first test waits for the course's papermill runs; nbval's own deadline is 600 s
pytestmark = pytest.mark.timeout(1800)


@pytest.mark.parametrize("name", list(FIGURES))
def test_notebook_runs_headless_and_saves_its_figures(course, name):
    run = course.run(name)
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
        f = course.figures("a") / fig
        assert f.exists() and f.stat().st_size > 5000, f"{name} did not save {fig}"


def test_the_ending_writes_the_card_and_checks_its_prediction(course):
    """06 at the CI parameters: the decision card (Markdown and PNG) whose first line is the
    job, a verdict word the probes allow, the job run from the panel set beside its predicted
    range, Next."""
    nb = nbformat.read(course.run("06_your_decision").output, as_version=4)
    text = _text(nb)
    assert CI_PARAMETERS["decision_budget"] < 90  # the CI budget is the small one
    card = (course.figures("a") / "06_decision_card.md").read_text()
    assert card.startswith("# Your job, your machine, your decision")
    epochs = 10  # 06's default job: 10 epochs of the (CI-sized) training set
    assert card.splitlines()[2].startswith(
        f"**Job:** simple on fashion-mnist, {epochs} epoch(s) of {CI_PARAMETERS['subset']:,} "
        f"training images = {epochs * CI_PARAMETERS['subset']:,} samples")
    assert re.search(r"\*\*(Recommended|Tie \(within noise\)|Soonest predicted, one probe each):"
                     r"\*\* ", text)
    assert f"--subset {CI_PARAMETERS['subset']}" in card and f"--epochs {epochs}" in card
    assert re.search(r"measured [\d.,]+ s of set-up \+ training against the predicted [\d.,]+ s "
                     r"\[[\d.,]+ to [\d.,]+\]: [\d.]+x, (inside|above|below) the predicted range "
                     r"\(one run\)\.", text)
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
def test_executed_text_names_only_configurations_that_ran(course, name):
    for which, params in (("a", CI_PARAMETERS), ("b", CI_PARAMETERS_B)):
        if name in ("01b_free_speedups", "03b_sparse_hogwild", "05_beyond_one_machine") \
                and params is CI_PARAMETERS_B:  # (06 names the configurations advise probed)
            continue  # the second set is for 01-04; 01b, 03b and 05 are run at the first only
        run = course.run(name, which)
        assert run.ok, run.error
        nb = nbformat.read(run.output, as_version=4)
        # the advice probes configurations of its own; it names those
        text = _text(nb, skip="recommend(")
        pattern, ran = _ran(name, params, notebook_parameters(NB_DIR / f"{name}.ipynb"))
        named = _named(pattern, text)
        assert named, f"{name}: the outputs name no configuration at all"
        assert named <= ran, f"{name} at {params}: names {sorted(named - ran)}, but only {sorted(ran)} ran"


def _checked_cells(path: Path) -> list:
    """What nbval compares of one committed notebook: its imports, its parameters (classroom
    defaults) and its cells marked NBVAL_CHECK_OUTPUT, each with its reference output; the first
    line of each names the notebook it comes from."""
    nb = nbformat.read(path, as_version=4)
    first = _code(nb)[0]
    cells = [c for c in nb.cells if c is first or "parameters" in c.metadata.get("tags", [])
             or CHECK in c.source]
    for c in cells:
        c.source = f"# {path.name}\n{c.source}"
    return cells


def _checked_course(folder: Path) -> Path:
    """One notebook of every committed notebook's checked cells, run in one kernel (one start,
    one import of torch instead of nine). Before each notebook's cells, ``%reset -f`` empties
    the namespace: a checked cell still sees only its own notebook's imports and parameters."""
    nb = nbformat.read(REFERENCE[0], as_version=4)
    nb.cells = []
    for path in REFERENCE:
        nb.cells.append(nbformat.v4.new_code_cell(f"# {path.name}\n%reset -f"))
        nb.cells += _checked_cells(path)
    out = folder / "checked_course.ipynb"
    nbformat.write(nb, out)
    return out


def test_nbval_checks_the_committed_reference_outputs(tmp_path):
    """nbval re-runs the checked cells of each committed notebook at its classroom defaults and
    compares their output with the reference: a package change that alters a dataset size, a
    work plan, a configuration table, a torchrun command or the code shown fails here. (The
    classroom defaults are not the CI parameters of the course's run: these cells run apart.)"""
    path = _checked_course(tmp_path)
    p = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), "--nbval-cell-timeout", "300", str(path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert " passed" in p.stdout
    cells = len(_code(nbformat.read(path, as_version=4)))
    assert f"{cells} passed" in p.stdout, p.stdout[-2000:]  # every cell ran, none skipped


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
