"""The teacher's kit: the handout builds with its diagrams and sections, the generated parts
are in step with the notebooks, every notebook opens and closes the same way, links resolve."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from costtrain.course import arc as course
from costtrain.course import handout
from costtrain.course.diagrams import DIAGRAMS
from costtrain.errors import CosttrainError

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "teaching"
NB = ROOT / "notebooks"
TERMS = ("set-up", "end to end", "steady state", "oversubscription", "staleness", "warm start",
         "time-to-accuracy", "within noise")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("handout")
    p = subprocess.run([sys.executable, "-m", "costtrain.course.handout", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return {f.name: f.read_text() for f in out.iterdir()}


def test_make_handout_runs_the_builder():
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^handout:.*\n\t.*-m costtrain\.course\.handout", make, re.M)
    assert re.search(r"^kit:.*\n\t.*-m costtrain\.course\.handout --update-docs", make, re.M)


def test_the_handout_has_the_diagrams_the_flow_and_the_words(built):
    page = built["handout.html"]
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert page.count('src="data:image/svg+xml;base64,') == len(DIAGRAMS)
    assert 'src="../' not in page and "src=\"notebooks" not in page  # it stands alone
    for heading in ("The course at a glance", "The decision flow", "How the methods work",
                    "Rules of thumb", "Commands", "Glossary"):
        assert re.search(f">{re.escape(heading)}[^<]*</h[1-3]>", page), heading
    for term in TERMS:
        assert f'id="{course.anchor(term)}"' in page, term
    for r in course.reference_runs(NB):  # the run times, read from the reference copies
        assert f"{r.seconds:.0f} s ({r.minutes:.1f} min)" in page, r.stem
    assert 'class="num"' in page  # numbers in tables do not wrap


def test_the_teachers_pages_have_the_plan_and_every_solution(built):
    page = built["teacher.html"]
    for heading in ("A 90-minute class", "Discussion questions", "Mistakes students make",
                    "Running the course for a class", "Exercise solutions",
                    "What to expect on other machines"):
        assert re.search(f">{re.escape(heading)}[^<]*</h[1-3]>", page), heading
    found = [(x.stem, e) for x in course.LESSONS for e in course.exercises(x.stem, NB)]
    assert len(found) >= 20
    for stem, e in found:
        assert e.answer, f"{stem} exercise {e.number} has no worked answer"
    assert page.count("<em>Worked answer.</em>") + page.count(
        "<em>Worked answer, as the reference run computed it.</em>") == len(found)


def test_the_generated_parts_of_the_kit_are_in_step_with_the_notebooks():
    plan = (DOCS / "plan.md").read_text()
    assert handout.refresh(plan, NB) == plan, "run `make kit` (the plan's tables are stale)"
    assert (DOCS / "solutions.md").read_text() == handout.solutions_md(NB), \
        "run `make kit` (solutions.md is stale)"


def test_the_glossary_defines_every_word_the_notebooks_link():
    headings = {course.anchor(h) for h in re.findall(r"^### (.+)$", (DOCS / "glossary.md")
                                                     .read_text(), re.M)}
    used = {t for x in course.LESSONS for t in x.terms} | set(TERMS)
    assert {course.anchor(t) for t in used} <= headings


def test_every_notebook_opens_with_its_time_and_closes_with_takeaways_and_links():
    for x in course.LESSONS:
        src = (NB / f"{x.stem}.py").read_text()
        assert f'opening("{x.stem}")' in src, x.stem
        assert f'closing("{x.stem}"' in src and "# ## Key takeaways" in src, x.stem
        tail = src.split("# ## Key takeaways")[1]
        assert tail.rstrip().endswith('cores")'), f"{x.stem}: the timing cell must stay last"
    assert "(03b_sparse_hogwild.ipynb)" in (NB / "03_hogwild.py").read_text() \
        .split("## Where Hogwild! shines")[1].split("# %%")[0]
    assert course.next_lesson("03_hogwild").stem == "03b_sparse_hogwild"
    assert course.next_lesson("03b_sparse_hogwild").stem == "04_compare"
    assert course.next_lesson("01_baseline").stem == "01b_free_speedups"
    assert course.next_lesson("01b_free_speedups").stem == "02_parameter_server"


def test_closing_links_next_see_also_and_the_glossary():
    text = course.closing("01_baseline", ["one", "two"])
    assert text.startswith("- one\n- two")
    assert "**Next:** [01b_free_speedups.ipynb](01b_free_speedups.ipynb)" in text
    assert "[03_hogwild.ipynb](03_hogwild.ipynb)" in text
    assert "../docs/teaching/glossary.md#steady-state" in text
    assert text._repr_markdown_() == text


def _notebook(folder: Path, first: str, last: str) -> None:
    cell = lambda text: {"cell_type": "code", "source": "", "outputs": [  # noqa: E731
        {"output_type": "stream", "name": "stdout", "text": text}]}
    (folder / "01_baseline.ipynb").write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": "# x\n\n**You will learn**\n- a;\n- b\n  c.\n\nmore"},
        cell(first), cell(last)]}))


def test_reference_times_are_read_from_the_executed_copy(tmp_path):
    _notebook(tmp_path, "ran 2026-11-27 20:09 UTC on AMD EPYC, 2 core(s), Linux, load average "
                        "1.1, Python 3.11.7\ncosttrain 0.1.0", "this notebook ran for 19 s on 2 cores\n")
    r = course.reference_run("01_baseline", tmp_path)
    assert (r.seconds, r.cores, r.machine, r.load) == (19.0, 2, "AMD EPYC", "1.1")
    assert course.objectives("01_baseline", tmp_path) == ["a;", "b c."]
    assert "19 s (0.3 min) on AMD EPYC" in course.opening("01_baseline", tmp_path)
    _notebook(tmp_path, "", "not run yet")
    assert course.reference_run("01_baseline", tmp_path) is None
    assert "no executed reference copy" in course.opening("01_baseline", tmp_path)
    assert "no executed reference copy" in course.opening("01_baseline", tmp_path / "none")


def test_a_missing_image_is_a_clear_error(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs" / "teaching")
    shutil.copy(ROOT / "docs" / "benchmarks.md", tmp_path / "docs")  # the class command's source
    shutil.copytree(NB / "diagrams", tmp_path / "notebooks" / "diagrams")
    page = tmp_path / "docs" / "teaching" / "handout.md"
    page.write_text(page.read_text() + "\n![gone](../../notebooks/diagrams/gone.svg)\n")
    with pytest.raises(CosttrainError, match="gone.svg"):
        handout.build(tmp_path / "out", tmp_path)


def test_links_in_the_kit_resolve():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+:", target):
                assert (page.parent / target).exists(), f"{page.name}: {target}"


def classroom_offenders(source: str) -> list[str]:
    """Lines of a jupytext notebook's parameters cell that set a classroom default to another
    value without saying why ("differs: ..." on the line)."""
    import ast
    cell = source.split('# %% tags=["parameters"]\n', 1)[1].split("\n# %%", 1)[0]
    bad = []
    for line in cell.splitlines():
        code, _, comment = line.partition("#")
        name, eq, value = code.partition("=")
        name = name.strip()
        if not eq or name not in course.CLASSROOM or "differs:" in comment:
            continue
        if ast.literal_eval(value.strip()) != course.CLASSROOM[name]:
            bad.append(line.strip())
    return bad


def test_the_notebooks_share_one_set_of_classroom_defaults():
    """01-06 train the same job by default (subset, batch, lr, momentum, seed); a notebook that
    differs says why beside the value; every one that loads Fashion-MNIST names its size."""
    for x in course.LESSONS:
        src = (NB / f"{x.stem}.py").read_text()
        assert classroom_offenders(src) == [], x.stem
        if 'dataset = "fashion-mnist"' in src:
            assert re.search(r"^subset = ", src, re.M) and re.search(r"^test_subset = ", src, re.M), x.stem
    planted = '# %% tags=["parameters"]\nsubset = 10000  # images\nlr = 0.5  # differs: another model\n\n# %%\n'
    assert classroom_offenders(planted) == ["subset = 10000  # images"]


def test_the_typical_accuracy_is_stated_with_its_source():
    assert "github.com/zalandoresearch/fashion-mnist" in course.TYPICAL_ACCURACY
    assert "TYPICAL_ACCURACY" in (NB / "01_baseline.py").read_text()


def _executed_exercises(folder: Path, record: bool = True) -> None:
    """A planted executed 01_baseline: its header and timing cells, and an Exercises section
    with a check cell (its output carrying the measured value when `record`) and a computed
    worked answer."""
    from costtrain.course.exercises import MEASURED

    def code(source, *outputs):
        return {"cell_type": "code", "source": source, "execution_count": 1, "metadata": {},
                "outputs": list(outputs)}
    check = {"output_type": "display_data", "data": {"text/plain": "Write your guess first: ..."},
             "metadata": {MEASURED: {"measured": 1.3912}} if record else {}}
    answer = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
              "data": {"text/markdown": "<details><summary>Worked answer</summary>\n\nThis run: "
                                        "2 threads 1.39x.\n\n</details>", "text/plain": "<Md>"}}
    stream = lambda text: {"output_type": "stream", "name": "stdout", "text": text}  # noqa: E731
    (folder / "01_baseline.ipynb").write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": "# x\n\n**You will learn**\n- a.", "metadata": {}},
        code("run_header()", stream("ran 2026-12-01 21:03 UTC on Test CPU, 2 core(s), Linux, "
                                    "load average 1.1, Python 3.11\n")),
        {"cell_type": "markdown", "metadata": {},
         "source": "## Exercises\n\n**1. Threads.** Your guess went into `g`."},
        code("check_prediction(g, speedup)", check),
        code("worked_answer(f'This run: {x}')", answer),
        {"cell_type": "markdown", "metadata": {},
         "source": "**2. By hand.** Try it.\n\n<details><summary>Worked answer</summary>\n\n"
                   "Typed.\n</details>"},
        {"cell_type": "markdown", "source": "## Summary", "metadata": {}},
        code("print(took)", stream("this notebook ran for 19 s on 2 cores\n"))]}))


def test_solutions_quote_the_reference_runs_value_machine_and_date(tmp_path):
    _executed_exercises(tmp_path)
    text = "\n".join(handout.lesson_solutions("01_baseline", tmp_path))
    assert "Test CPU, 2 cores, 2026-12-01 21:03 UTC" in text
    one, two = text.split("### 01.2")
    assert "*Reference value:* **1.39**" in one
    assert "as the reference run computed it.*\n\nThis run: 2 threads 1.39x." in one
    assert "Typed." in two and "Reference value" not in two
    _executed_exercises(tmp_path, record=False)  # a copy executed before the record existed
    assert "not recorded in this reference copy" in "\n".join(
        handout.lesson_solutions("01_baseline", tmp_path))


def test_every_exercise_with_a_check_or_a_computed_answer_has_a_reference_entry():
    """Each check cell and computed worked answer of the committed copies is found (so a
    re-executed copy gives every such exercise its reference number in solutions.md)."""
    text = (DOCS / "solutions.md").read_text()
    for x in course.LESSONS:
        src = (NB / f"{x.stem}.py").read_text().split("## Exercises", 1)[-1]
        answers = course.reference_answers(x.stem, NB)
        assert sum(a.checked for a in answers.values()) == src.count("check_prediction("), x.stem
        calls = len(re.findall(r"^\s*(?:display\()?worked_answer\(", src, re.M))  # not the import
        assert sum(bool(a.answer) for a in answers.values()) == calls, x.stem
    assert "(The notebook adds this run's numbers.)" not in text


def test_a_check_cell_in_a_notebook_records_the_measured_value(monkeypatch, capsys):
    """In a kernel check_prediction shows its sentence as text and keeps the measured value in
    the output's metadata (not shown), where the solutions read it."""
    import IPython.display

    from costtrain.course import exercises
    shown = []
    monkeypatch.setattr(exercises, "_shell", lambda: object())
    monkeypatch.setattr(IPython.display, "display",
                        lambda data, raw, metadata: shown.append((data, metadata)))
    exercises.check_prediction(None, 1.39)
    ((data, metadata),) = shown
    assert data["text/plain"].startswith(exercises.WRITE_FIRST) and "1.39" not in data["text/plain"]
    assert metadata == {exercises.MEASURED: {"measured": 1.39}}
    monkeypatch.setattr(exercises, "_shell", lambda: None)
    exercises.check_prediction(1.4, 1.39)
    assert capsys.readouterr().out.startswith("Right")


# --- the kit's structure: 01b everywhere, one class command, numbers from their sources ----------

def _outside_generated(text: str) -> str:
    return handout.BLOCK.sub("", text)


def test_every_notebook_is_in_the_plan_the_handout_and_the_course_tables():
    plan = (DOCS / "plan.md").read_text()
    rows = [ln for ln in plan.split("## The plan", 1)[1].split("### The class's one command")[0]
            .splitlines() if ln.startswith("| ")]
    for x in course.LESSONS:
        assert any(f"[{x.stem}]" in r for r in rows), f"{x.stem} has no slot in the plan"
        assert f"| {x.stem} | {x.shows} |" in (DOCS / "handout.md").read_text(), x.stem
        assert x.shows, f"{x.stem}: say what it shows (arc.LESSONS)"
    assert "(01b)" in (DOCS / "discussion.md").read_text()
    flow = " ".join(re.findall(r">([^<]+)<", (NB / "diagrams" / "decision_flow.svg").read_text()))
    assert "(01b)" in flow and "start-up (03b" in flow, "01b and the sparse branch's condition"
    questions = re.findall(r"^### Q(\d+)\.", (DOCS / "discussion.md").read_text(), re.M)
    assert questions == [str(i) for i in range(1, len(questions) + 1)]
    cited = {int(q) for q in re.findall(r"\bQ(\d+)\b", plan)}
    assert cited == set(range(1, len(questions) + 1)), "the plan cites every question once"


def test_one_class_command_everywhere():
    from costtrain.course.classroom import class_command
    for page in ("plan.md", "running-a-class.md", "handout.md"):
        text = (DOCS / page).read_text()
        assert "<!-- generated: class-command -->" in text, page
        assert class_command() in text, f"{page}: run `make kit`"
    for page in list(DOCS.glob("*.md")) + [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        rest = _outside_generated(page.read_text())
        assert not re.search(r"costtrain compare [^\n]*--out results/(?!compare\.json)", rest), \
            f"{page.name}: a hand-in command of its own; use the generated class-command block"


def test_the_class_command_is_sized_from_the_measured_make_run():
    """The class runs `make run`'s job (the Makefile's RUN_ARGS, as measured in the dated block
    the duration comes from) and a target every configuration reached there."""
    from costtrain.cli import build_parser
    from costtrain.course.classroom import CLASS_JOB
    ref = handout.make_run_measurement(ROOT)
    run_args = re.search(r"^RUN_ARGS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)[1]
    assert ref["command"] == f"costtrain compare {run_args}", \
        "make run changed since it was measured: re-measure it (docs/benchmarks.md)"
    default_epochs = build_parser(["compare"]).parse_args(["compare"]).total_epochs
    assert CLASS_JOB["subset"] == ref["subset"] and CLASS_JOB["total_epochs"] == default_epochs
    assert CLASS_JOB["target_accuracy"] < ref["lowest_accuracy"]
    assert CLASS_JOB["repeats"] >= 2  # a range for every configuration
    text = handout.class_command_md(NB)
    assert f"{ref['seconds'] // 60} min {ref['seconds'] % 60} s" in text and ref["date"] in text
    assert "every configuration can reach it" in text


def test_the_kit_quotes_no_notebook_default_of_its_own():
    """A kit page that names a notebook parameter with a number says the notebook's value."""
    from costtrain.course.notebooks import notebook_parameters
    params = {}
    for x in course.LESSONS:
        params.update(notebook_parameters(NB / f"{x.stem}.ipynb"))
    for page in DOCS.glob("*.md"):
        text = _outside_generated(page.read_text())
        for name, value in re.findall(r"`(\w+)`[^.`]{0,40}?\b(\d+(?:\.\d+)?) s by default", text):
            assert name in params and float(value) == float(params[name]), (page.name, name, value)


def test_the_class_table_keeps_runs_with_and_without_evaluation_apart():
    from costtrain.course.classroom import job_of
    base = {"config": {"dataset": "fashion-mnist", "model": "simple"}, "samples": 40000}
    evaluated = dict(base, eval_curve={"samples": [10000, 20000, 40000]})
    assert job_of(base) != job_of(evaluated)
    assert job_of(evaluated).endswith("evaluated during training")
    assert job_of(dict(base, eval_curve={"samples": [40000]})) == job_of(base)


def test_the_reference_copy_opens_with_its_own_time(tmp_path):
    """Executed, the opening read the copy before this run; the cleaned reference copy restates
    it from this run's last cell, so its first and last cells agree."""
    import nbformat

    from costtrain.course.notebooks import clean_reference

    nb = nbformat.v4.new_notebook()
    stale = "**Measured minutes:** ... in 40 s (0.7 min) on Old box ..."
    nb.cells = [
        nbformat.v4.new_markdown_cell("# x\n\n**You will learn**\n- a."),
        nbformat.v4.new_code_cell("print(run_header())", outputs=[nbformat.v4.new_output(
            "stream", name="stdout", text="ran 2026-12-07 10:00 UTC on New box, 2 core(s), Linux, "
                                          "load average 0.5, Python 3.11.7\n")]),
        nbformat.v4.new_code_cell('opening("01_baseline")', outputs=[nbformat.v4.new_output(
            "display_data", data={"text/markdown": stale, "text/plain": repr(stale)})]),
        nbformat.v4.new_code_cell("print(...)", outputs=[nbformat.v4.new_output(
            "stream", name="stdout", text="this notebook ran for 34 s on 2 cores\n")])]
    path = tmp_path / "01_baseline.ipynb"
    nbformat.write(nb, path)
    clean_reference(path)
    opened = nbformat.read(path, as_version=4).cells[2].outputs[0]["data"]["text/markdown"]
    assert "in 34 s (0.6 min) on New box" in opened and "40 s" not in opened


def test_the_mistyped_parameter_message_quotes_the_notebooks_default():
    """mistakes.md quotes the refusal of `-p subset=abc`: its default is the notebook's own."""
    from costtrain.course.notebooks import notebook_parameters
    text = (ROOT / "docs" / "teaching" / "mistakes.md").read_text()
    quoted = re.search(r"its default is subset=(\d+)\)", text)
    assert quoted, "mistakes.md quotes the mistyped-parameter message"
    assert int(quoted[1]) == notebook_parameters(ROOT / "notebooks" / "01_baseline.ipynb")["subset"]
