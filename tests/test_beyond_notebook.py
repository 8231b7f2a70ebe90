"""Notebook 05 is a jupytext percent source paired with its .ipynb; its CI values are declared."""
from pathlib import Path

import jupytext

from costtrain.course.notebooks import CI_PARAMETERS, notebook_parameters

NB = Path(__file__).resolve().parents[1] / "notebooks" / "05_beyond_one_machine"


def _cells(nb):
    return [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in nb.cells]


def test_source_and_notebook_are_in_step():
    src, ipynb = jupytext.read(NB.with_suffix(".py")), jupytext.read(NB.with_suffix(".ipynb"))
    assert _cells(src) == _cells(ipynb), "run: jupytext --sync notebooks/05_beyond_one_machine.py"


def test_ci_values_are_declared_and_small():
    params = notebook_parameters(NB.with_suffix(".ipynb"))
    assert {"subset", "test_subset", "eval_every", "average_every_list", "machines_list"} <= set(params)
    assert params["average_every_list"] == [1, 8, 32]  # the comparison the course shows
    ci = CI_PARAMETERS["average_every_list"]  # CI: fewer runs (each starts processes), still a comparison
    assert CI_PARAMETERS["subset"] <= 2000 and len(ci) >= 2 and set(ci) <= {1, 8, 32}
