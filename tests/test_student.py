"""Two copies of each notebook, one source: the students' copies (``costtrain student``, ``make
student``) have no outputs and match the jupytext sources; a student's edited copy is never
replaced without --force; the reference copies in notebooks/ are executed and say so."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

from costtrain.cli import main
from costtrain.course import student
from costtrain.course.arc import LESSONS

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"


def _cells(nb, fold=False):
    """Each cell's type, source and tags (the students' Markdown with its answers folded)."""
    out = []
    for c in nb.cells:
        tags = sorted(c.metadata.get("tags", []))
        src = student.hide_answers(c.source, tags) if fold and c.cell_type == "markdown" else c.source
        out.append((c.cell_type, src.strip(), tags))
    return out


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("class") / "student"
    done = student.write_copies(folder, NB)
    assert len(done.written) == len(LESSONS) and not done.kept
    return folder


def test_the_students_copies_have_no_outputs_and_match_the_sources(copies):
    names = sorted(p.name for p in copies.glob("*.ipynb"))
    assert names == sorted(f"{x.stem}.ipynb" for x in LESSONS)
    for x in LESSONS:
        nb = nbformat.read(copies / f"{x.stem}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.outputs == [] and c.execution_count is None for c in code), x.stem
        assert "jupytext" not in nb.metadata, f"{x.stem}: a copy must not pair with a .py"
        assert nb.metadata.kernelspec.name == "python3"
        assert _cells(nb) == _cells(jupytext.read(NB / f"{x.stem}.py"), fold=True), x.stem
    shown = {m for x in LESSONS for m in re.findall(r"\]\((diagrams/[^)]+)\)",
                                                    (NB / f"{x.stem}.py").read_text())}
    assert shown and all((copies / d).is_file() for d in shown), "the diagrams they show"


def test_the_reference_copies_are_executed_and_labelled():
    for x in LESSONS:
        nb = nbformat.read(NB / f"{x.stem}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{x.stem}: run `make notebooks`"
        assert sum(len(c.outputs) for c in code) >= len(code) // 2, x.stem
    label = (NB / "README.md").read_text()
    assert "executed reference copies" in label and "make student" in label


def test_a_copy_the_student_changed_is_kept_until_forced(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for name in ("00_setup.py", "01_baseline.py"):
        shutil.copy(NB / name, nbs / name)
    folder = tmp_path / "student"
    assert sorted(student.write_copies(folder, nbs).written) == ["00_setup.ipynb", "01_baseline.ipynb"]
    again = student.write_copies(folder, nbs)
    assert again.written == [] and len(again.unchanged) == 2

    # the student ran 01 and saved it (outputs): that copy is theirs now
    mine = folder / "01_baseline.ipynb"
    nb = nbformat.read(mine, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="my run\n")]
    nbformat.write(nb, mine)
    edited = mine.read_bytes()
    # the author changes both sources: 00 (untouched by the student) is refreshed, 01 is kept
    for name in ("00_setup.py", "01_baseline.py"):
        (nbs / name).write_text((nbs / name).read_text() + "\n# %%\nprint('new cell')\n")
    done = student.write_copies(folder, nbs)
    assert done.written == ["00_setup.ipynb"] and done.kept == ["01_baseline.ipynb"]
    assert mine.read_bytes() == edited
    assert "costtrain student --force" in done.report() and "01_baseline.ipynb" in done.report()

    forced = student.write_copies(folder, nbs, force=True)
    assert forced.written == ["01_baseline.ipynb"]
    backup = forced.backed_up["01_baseline.ipynb"]
    assert backup.parent == folder / "backup" and backup.read_bytes() == edited
    assert "new cell" in mine.read_text() and "my run" not in mine.read_text()


def test_a_copy_not_written_by_costtrain_is_not_replaced(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    shutil.copy(NB / "00_setup.py", nbs)
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "00_setup.ipynb").write_text("{}")  # a student's own file of that name
    assert student.write_copies(folder, nbs).kept == ["00_setup.ipynb"]
    assert (folder / "00_setup.ipynb").read_text() == "{}"


def test_answers_marked_in_the_source_are_folded_in_the_copies_only():
    tagged = student.hide_answers("Exercise 6's answer: more.", ["answer"])
    assert tagged.startswith("<details><summary>") and tagged.endswith("</details>")
    assert "Exercise 6's answer: more." in tagged
    text = ("**You will learn**\n- one;\n\n<!-- answer -->\n- that real words collide more.\n"
            "<!-- /answer -->\n\nAfter.")
    folded = student.hide_answers(text, [])
    assert folded.startswith("**You will learn**\n- one;")
    assert re.search(r"<details><summary>[^<]+</summary>\n\n- that real words collide more\.\n\n"
                     r"</details>", folded)
    assert folded.rstrip().endswith("After.")
    assert student.hide_answers("Nothing marked.", ["parameters"]) == "Nothing marked."


def test_the_command_line_and_make_write_the_copies(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["student", str(tmp_path / "s")]) == 0
    assert f"{len(LESSONS)} notebook(s) written" in capsys.readouterr().out
    assert json.loads((tmp_path / "s" / student.MANIFEST).read_text()).keys() == \
        {f"{x.stem}.ipynb" for x in LESSONS}
    assert main(["student", str(tmp_path / "s"), "--notebooks-dir", str(tmp_path)]) == 2
    assert "no notebook sources" in capsys.readouterr().err
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^student:.*\n\t.*costtrain student \$\(STUDENT\) \$\(if \$\(FORCE\),--force\)",
                     make, re.M)
    assert re.search(r"^lab:.*\bstudent\b", make, re.M)
    assert "default_url=/lab/tree/$(STUDENT)/00_setup.ipynb" in make
    assert re.search(r"^STUDENT \?= student$", make, re.M)
    assert "student/" in (ROOT / ".gitignore").read_text().split()
