"""The committed SVG diagrams: regenerated from the script, shown where people read."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import matplotlib
import pytest

from costtrain.course import diagrams

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / diagrams.DEFAULT_DIR
TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)


def _creator(svg: str) -> str:
    m = re.search(r"<dc:title>Matplotlib v([^,<]+)", svg)
    return m.group(1) if m else ""


def test_regenerating_gives_the_committed_files(tmp_path):
    paths = diagrams.draw_all(tmp_path)
    assert sorted(p.name for p in paths) == sorted(diagrams.DIAGRAMS)
    assert sorted(p.name for p in COMMITTED.glob("*.svg")) == sorted(diagrams.DIAGRAMS), (
        "notebooks/diagrams/ differs from costtrain.course.diagrams.DIAGRAMS: run "
        "`python -m costtrain.course.diagrams` and commit the result")
    for p in paths:
        new, old = p.read_text(), (COMMITTED / p.name).read_text()
        if _creator(old) == matplotlib.__version__:  # same drawing library: the same bytes
            assert new == old, f"{p.name} is out of date: run `python -m costtrain.course.diagrams`"
        else:  # another matplotlib writes other path data; the words must still be the same
            assert TEXT.findall(new) == TEXT.findall(old), p.name


def test_drawing_twice_is_deterministic(tmp_path):
    a, b = diagrams.draw_all(tmp_path / "a"), diagrams.draw_all(tmp_path / "b")
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), x.name
        assert "<dc:date>" not in x.read_text()  # no timestamp in the file


def test_the_diagrams_say_what_they_show():
    words = {"hogwild_races.svg": ["race", "stale", "shared weights w"],
             "parameter_server.svg": ["sync", "async", "push", "pull", "staleness"],
             "local_sgd.svg": ["average", "H = 4"],
             "oversubscription.svg": ["core 0", "P x T &gt; C", "cores // processes"],
             "decision_flow.svg": ["Hogwild!", "local SGD", "costtrain advise"]}
    assert set(words) == set(diagrams.DIAGRAMS)
    for name, expected in words.items():
        text = " ".join(TEXT.findall((COMMITTED / name).read_text()))
        for w in expected:
            assert w in text, (name, w)


def test_every_diagram_is_shown_in_a_notebook_and_the_docs():
    course = (ROOT / "docs" / "course.md").read_text()
    notebooks = "\n".join(p.read_text() for p in (ROOT / "notebooks").glob("[0-9]*.py"))
    assert "](notebooks/diagrams/decision_flow.svg)" in (ROOT / "README.md").read_text()
    for name in diagrams.DIAGRAMS:
        assert f"](../notebooks/diagrams/{name})" in course, name
        if name != "decision_flow.svg":  # the flow is the handout's and notebook 06's
            assert f"](diagrams/{name})" in notebooks, name


def test_no_mermaid_in_the_notebooks():
    """Mermaid shows as raw text on GitHub and needs JupyterLab >= 4.1 (the floor is 4.0)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lab = next(d for d in meta["dependencies"] if d.startswith("jupyterlab"))
    floor = tuple(int(x) for x in re.search(r">=\s*([\d.]+)", lab).group(1).split("."))
    uses = [nb.name for nb in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
            if "```mermaid" in nb.read_text()]
    assert not uses or floor >= (4, 1), f"{uses} use Mermaid: raise the JupyterLab floor to 4.1"
    assert not uses, (f"{uses} use a Mermaid diagram, which GitHub shows as raw text; draw it "
                      "in costtrain/diagrams.py instead")


def test_a_bad_command_line_says_how_to_use_it(capsys):
    assert diagrams.main(["a", "b"]) == 2
    assert "usage: python -m costtrain.course.diagrams" in capsys.readouterr().err
