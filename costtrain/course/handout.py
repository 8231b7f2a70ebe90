"""The printable handout and the teacher's pages: ``make handout`` (and ``make kit``).

``python -m costtrain.course.handout [OUT_DIR]`` (default ``build/handout``) renders the teacher's
kit in ``docs/teaching/`` to two self-contained HTML files, diagrams embedded, ready to print
(or save as PDF) from any browser:

* ``handout.html`` for students: the course at a glance (with the reference run times), the
  decision flow, the diagrams, the commands, the glossary;
* ``teacher.html``: the 90-minute plan, discussion questions, common mistakes, how to run a
  class, and the exercise solutions read from the notebooks.

``python -m costtrain.course.handout --update-docs`` (``make kit``) refreshes the generated
parts of the kit, the docs and the README (every ``<!-- generated: NAME -->`` block,
:data:`GENERATORS`: the course tables, run times, learning objectives, the class's one command)
and ``solutions.md`` (with the reference run's values) from the notebooks and their executed
reference copies; ``tests/test_teaching.py`` and ``tests/test_docs.py`` fail when they are out
of step. Markdown is rendered with mistune (installed with JupyterLab's nbconvert). No torch.
"""
from __future__ import annotations

import argparse
import base64
import html
import os
import re
import sys
from pathlib import Path

from ..errors import CosttrainError
from ..result import check_folder_writable
from .arc import (LESSONS, anchor, exercises, lesson, objectives, reference_answers,
                  reference_run, reference_runs)

DOCS = Path("docs") / "teaching"
NOTEBOOKS = Path("notebooks")
DEFAULT_OUT = Path("build") / "handout"
STUDENT_PAGES = ("handout.md", "glossary.md")
TEACHER_PAGES = ("plan.md", "discussion.md", "mistakes.md", "running-a-class.md",
                 "solutions.md")
BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n).*?(<!-- end generated -->)", re.S)
CSS = """
body { font: 11pt/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 52em; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.7em; border-bottom: 2px solid #1f78b4; }
h2 { font-size: 1.35em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.08em; margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f0f4f8; white-space: nowrap; }
td.num { white-space: nowrap; text-align: right; }
td.short { white-space: nowrap; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Consolas, monospace; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
img { max-width: 100%; height: auto; display: block; margin: 0.8em auto; }
.page { break-before: page; }
.generated { color: #555; font-size: 0.85em; }
@media print { body { margin: 0; max-width: none; } a { color: inherit; text-decoration: none; }
               h2, h3 { break-after: avoid; } table, img, pre { break-inside: avoid; } }
"""
SHORT_CELL = re.compile(r"<td>([^<]{1,28})</td>")
NUMBER_CELL = re.compile(r"<td>([\s\d.,:%$x()+\-–]*\d[\s\d.,:%$x()+\-–smin]*)</td>")


# ------------------------------------------------------------------ generated Markdown

def minutes_table(notebooks: str | Path = NOTEBOOKS) -> str:
    """The reference copies' run times as a Markdown table."""
    runs = reference_runs(notebooks)
    if not runs:
        return "No executed reference copies were found: run `make notebooks` first.\n"
    rows = ["| notebook | run time (reference) | machine | load average | ran |",
            "|---|---|---|---|---|"]
    for r in runs:
        rows.append(f"| {r.stem} | {r.seconds:.0f} s ({r.minutes:.1f} min) | {r.machine}, "
                    f"{r.cores} cores | {r.load or '-'} | {r.when} |")
    total = sum(r.seconds for r in runs)
    rows.append(f"| all {_count(len(runs))} | {total:.0f} s ({total / 60:.1f} min) | | | |")
    return "\n".join(rows) + "\n"


def course_table(notebooks: str | Path = NOTEBOOKS, link: str | None = None) -> str:
    """Every notebook of the course with what it shows and its reference copy's run time, as a
    Markdown table; `link`: the notebooks' folder as seen from the page (None: no links)."""
    runs = {r.stem: r for r in reference_runs(notebooks)}
    rows = ["| notebook | what it shows | run time (reference copy) |", "|---|---|---|"]
    for item in LESSONS:
        name = f"[{item.stem}]({link}/{item.stem}.ipynb)" if link is not None else item.stem
        r = runs.get(item.stem)
        took = f"{r.seconds:.0f} s ({r.minutes:.1f} min)" if r else "not executed yet"
        rows.append(f"| {name} | {item.shows} | {took} |")
    total = sum(r.seconds for r in runs.values())
    rows.append(f"| all {_count(len(LESSONS))} | | {total:.0f} s ({total / 60:.1f} min)"
                f"{'' if len(runs) == len(LESSONS) else f' ({len(runs)} executed)'} |")
    where = sorted({f"{r.machine}, {r.cores} cores" for r in runs.values()})
    dates = sorted(r.when[:10] for r in runs.values())
    if runs:
        rows += ["", f"Reference copies run at the classroom defaults on {' and '.join(where)}, "
                     f"{dates[0]}{'' if dates[0] == dates[-1] else f' to {dates[-1]}'}; your "
                     "machine prints its own time in each notebook's last cell."]
    return "\n".join(rows) + "\n"


def _count(n: int) -> str:
    words = "zero one two three four five six seven eight nine ten".split()
    return words[n] if n < len(words) else str(n)


def objectives_md(notebooks: str | Path = NOTEBOOKS) -> str:
    """Every notebook's "You will learn" list, in course order."""
    parts = []
    for item in LESSONS:
        bullets = "\n".join(f"- {o}" for o in objectives(item.stem, notebooks))
        parts.append(f"**{item.stem}** ({item.title})\n{bullets}\n")
    return "\n".join(parts)


PLACEHOLDER = "(The notebook adds this run's numbers.)"


def _value(v: float | str) -> str:
    """A measured value as the check cell's sentence quotes it."""
    return repr(v) if isinstance(v, str) else f"{v:.3g}"


def lesson_solutions(stem: str, notebooks: str | Path = NOTEBOOKS) -> list[str]:
    """The Markdown lines of one notebook's exercises: task, hint, worked answer, and what the
    executed reference copy measured and answered (with its machine and date)."""
    found = exercises(stem, notebooks)
    if not found:
        return []
    ref = reference_run(stem, notebooks)
    answers = reference_answers(stem, notebooks) if ref else {}
    where = (f"the reference run of `notebooks/{stem}.ipynb` ({ref.machine}, {ref.cores} cores, "
             f"{ref.when}{f', load average {ref.load}' if ref.load else ''})") if ref else ""
    out = [f"## {stem}: {lesson(stem).title}", ""]
    if ref and answers:
        out += [f"Reference numbers below: {where}. A student's run prints its own.", ""]
    for ex in found:
        out += [f"### {stem[:3].rstrip('_')}.{ex.number} {ex.title}", "", ex.task, ""]
        if ex.hint:
            out += [f"*Hint.* {ex.hint}", ""]
        got = answers.get(ex.number)
        if got and got.measured is not None:
            tie = ("; the run could not tell it from "
                   + " or ".join(f"**{_value(a)}**" for a in got.also)
                   + ", so the check accepts either" if got.also else "")
            out += [f"*Reference value:* **{_value(got.measured)}** (what the check cell compares "
                    f"the guess with, on the reference run{tie}).", ""]
        elif got and got.checked:
            out += ["*Reference value:* not recorded in this reference copy (it was executed "
                    "before check cells kept their value; `make notebooks` adds it).", ""]
        if got and got.answer:
            # the notebooks write \\$ for JupyterLab; a Markdown page needs only \$
            out += ["*Worked answer, as the reference run computed it.*", "",
                    got.answer.replace("\\\\$", "\\$"), ""]
        else:
            text = ex.answer or "(none given)"
            if PLACEHOLDER in text and ref is None:
                text = text.replace(PLACEHOLDER, "(The notebook adds this run's numbers; the "
                                    "reference copy is not executed: run `make notebooks`.)")
            out += ["*Worked answer.*", "", text, ""]
    return out


def solutions_md(notebooks: str | Path = NOTEBOOKS) -> str:
    """Every exercise with its hint and worked answer, as the notebooks have them, and the
    reference run's value and computed answer where the executed reference copy has them."""
    out = ["# Exercise solutions", "",
           "Generated from the notebooks' own exercises, hints and worked answers, and from the "
           "outputs of their executed reference copies, by `make kit` (do not edit here: edit "
           "the notebook, then run `make kit`; after `make notebooks` the reference numbers "
           "follow). A *reference value* is what an exercise's check cell compared the guess "
           "with on the reference run; a worked answer \"as the reference run computed it\" "
           "quotes that run's numbers. Both are one machine's: a student's run prints its own.",
           ""]
    for item in LESSONS:
        out += lesson_solutions(item.stem, notebooks)
    return "\n".join(out).rstrip() + "\n"


MAKE_RUN_BLOCK = re.compile(
    r"<!-- measured (?P<date>\d{4}-\d{2}-\d{2}): `make run` \(`(?P<command>[^`]+)`\) on the "
    r"(?P<machine>.+?) box.*?(?P<min>\d+) min (?P<s>\d+) s wall \[id: make-run\] -->"
    r"(?P<body>.*?)<!-- /measured -->", re.S)
ACCURACY_CELL = re.compile(r"([\d.]+) \(([\d.]+)-([\d.]+)\)\s*$")


def make_run_measurement(root: str | Path = ".") -> dict:
    """The dated `make run` measurement in docs/benchmarks.md: date, machine, command, wall
    seconds, repeats, its target and the lowest final test accuracy (%) of any configuration."""
    path = Path(root) / "docs" / "benchmarks.md"
    m = MAKE_RUN_BLOCK.search(path.read_text(encoding="utf-8")) if path.is_file() else None
    if m is None:
        raise CosttrainError(f"{path}: no measured `make run` block marked [id: make-run]; the "
                             "class command is sized from it.")
    table = m["body"].split("```")[1]
    lows = [float(c[2]) for c in (ACCURACY_CELL.search(line) for line in table.splitlines()
                                  if "median" not in line) if c]
    option = lambda name: float(re.search(rf"--{name} (\d+(?:\.\d+)?)", m["command"])[1])  # noqa: E731
    return {"date": m["date"], "machine": m["machine"], "command": m["command"],
            "seconds": 60 * int(m["min"]) + int(m["s"]), "repeats": int(option("repeats")),
            "subset": int(option("subset")), "target": option("target-accuracy"),
            "lowest_accuracy": min(lows)}


def class_command_md(notebooks: str | Path = NOTEBOOKS) -> str:
    """The class's one command (:data:`costtrain.course.classroom.CLASS_JOB`), how long it takes
    and why its target is reachable, from the dated `make run` measurement."""
    from .classroom import CLASS_JOB, class_command

    ref = make_run_measurement(Path(notebooks).parent)
    job = CLASS_JOB
    minutes = ref["seconds"] / 60 * job["repeats"] / ref["repeats"]
    same = job["subset"] == ref["subset"]
    reach = ("every configuration can reach it" if job["target_accuracy"] < ref["lowest_accuracy"]
             else "NOT every configuration reached it: lower the target")
    return "\n".join([
        "Every student runs the class's one command and hands in the file it writes (`NAME`: "
        "the student's name or machine; `$(hostname)` in a Linux or macOS shell, "
        "`$env:COMPUTERNAME` in Windows PowerShell):",
        "",
        f"    {class_command()}",
        "",
        (f"It is `make run`'s job (the same {job['subset']:,} Fashion-MNIST images and "
         f"{job['total_epochs']} epochs of work for every configuration, so the reference box's "
         "`make run` table is the class's reference row)" if same else
         f"It trains {job['subset']:,} Fashion-MNIST images x {job['total_epochs']} epochs of "
         "work per configuration") +
        f" with {job['repeats']} repeats, the fewest that give every configuration a range. "
        f"**How long:** `make run` took {int(ref['seconds'] // 60)} min {int(ref['seconds'] % 60)} "
        f"s with {ref['repeats']} repeats on the 2-core {ref['machine']} reference box "
        f"(measured {ref['date']}, `docs/benchmarks.md`), so expect a little over "
        f"{minutes:.1f} min there with {job['repeats']}, and more on a slower laptop. On a "
        "busy one it takes longer still (it re-runs a repeat the machine was busy for) and "
        f"says so (\"busy\") instead of naming a winner. **The target, {job['target_accuracy']} %:** in that measurement the "
        f"lowest final test accuracy of any configuration was {ref['lowest_accuracy']} %, so "
        f"{reach}.",
        ""])


GENERATORS = {"minutes": minutes_table, "objectives": objectives_md,
              "course": course_table,  # the handout: no links
              "course-readme": lambda nb: course_table(nb, "notebooks"),
              "course-docs": lambda nb: course_table(nb, "../notebooks"),
              "class-command": class_command_md}


def refresh(text: str, notebooks: str | Path = NOTEBOOKS) -> str:
    """`text` with every ``<!-- generated: NAME -->`` block rebuilt from the notebooks."""
    def fill(m: re.Match) -> str:
        name = m.group(2)
        if name not in GENERATORS:
            raise CosttrainError(f"unknown generated block {name!r}; known: "
                                 f"{', '.join(GENERATORS)}")
        return m.group(1) + GENERATORS[name](notebooks) + m.group(3)
    return BLOCK.sub(fill, text)


def generated_pages(root: str | Path = ".") -> list[Path]:
    """Every page that may hold generated blocks: the kit, the other docs and the README."""
    root = Path(root)
    return sorted((root / DOCS).glob("*.md")) + sorted((root / "docs").glob("*.md")) + \
        [p for p in [root / "README.md"] if p.is_file()]


def update_docs(root: str | Path = ".") -> list[Path]:
    """Rewrite the generated parts of the kit, the docs and the README in `root`; return the
    files changed."""
    root = Path(root)
    docs, notebooks = root / DOCS, root / NOTEBOOKS
    changed = []
    for path in generated_pages(root):
        if path.name == "solutions.md":
            continue
        old = path.read_text(encoding="utf-8")
        new = refresh(old, notebooks)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    sol = docs / "solutions.md"
    new = solutions_md(notebooks)
    if not sol.exists() or sol.read_text(encoding="utf-8") != new:
        sol.write_text(new, encoding="utf-8")
        changed.append(sol)
    return changed


# ------------------------------------------------------------------ HTML

def _markdown():
    try:
        import mistune
    except ImportError:
        raise CosttrainError("the handout needs mistune (it comes with JupyterLab's nbconvert): "
                             "pip install mistune") from None
    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])


def _embed_images(body: str, folder: Path) -> str:
    """Replace ``src="relative.svg"`` with data: URIs, so the HTML stands alone."""
    def embed(m: re.Match) -> str:
        src = m.group(1)
        if re.match(r"[a-z]+:", src):
            return m.group(0)
        path = (folder / html.unescape(src)).resolve()
        if not path.is_file():
            raise CosttrainError(f"the handout shows {src}, which does not exist ({path.name} "
                                 "not found): run `python -m costtrain.course.diagrams` or fix the link.")
        kind = "image/svg+xml" if path.suffix == ".svg" else f"image/{path.suffix[1:]}"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:{kind};base64,{data}"'
    return re.sub(r'src="([^"]+)"', embed, body)


def _local_links(body: str) -> str:
    """Links to another page of the kit point inside the one HTML file."""
    def link(m: re.Match) -> str:
        target = m.group(1)
        page, _, frag = target.partition("#")
        if re.match(r"[a-z]+:", target) or not page.endswith(".md"):
            return m.group(0)
        return f'href="#{frag or "page-" + Path(page).stem}"'
    return re.sub(r'href="([^"]+)"', link, body)


def _heading_ids(body: str) -> str:
    def add(m: re.Match) -> str:
        text = re.sub(r"<[^>]+>", "", m.group(2))
        return f'<h{m.group(1)} id="{anchor(html.unescape(text))}">{m.group(2)}</h{m.group(1)}>'
    return re.sub(r"<h([1-4])>(.*?)</h\1>", add, body)


def render_page(text: str, folder: Path, stem: str, notebooks: Path) -> str:
    """One Markdown page of the kit (its generated blocks refreshed) as an HTML section;
    `folder` is where its relative links and images start."""
    body = _markdown()(refresh(text, notebooks))
    body = NUMBER_CELL.sub(r'<td class="num">\1</td>', body)
    body = SHORT_CELL.sub(r'<td class="short">\1</td>', body)  # no wrapping in short cells
    body = _local_links(_heading_ids(_embed_images(body, folder)))
    return f'<section class="page" id="page-{stem}">\n{body}\n</section>'


def render(title: str, sections: list[str]) -> str:
    """A standalone HTML document of rendered `sections`."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(sections) + "\n</body>\n</html>\n")


def build(out_dir: str | Path = DEFAULT_OUT, root: str | Path = ".") -> list[Path]:
    """Write handout.html and teacher.html into `out_dir`; return their paths."""
    root = Path(root)
    docs, notebooks = root / DOCS, root / NOTEBOOKS
    missing = [n for n in STUDENT_PAGES + TEACHER_PAGES if not (docs / n).is_file()]
    if missing:
        raise CosttrainError(f"{docs}: missing {', '.join(missing)}; run from the repository "
                             "root (or pass --root).")
    out = check_folder_writable(out_dir, "OUT_DIR")  # before the work: a clear refusal
    written = []
    for name, title, pages in (
            ("handout.html", "costtrain: the course on one handout", STUDENT_PAGES),
            ("teacher.html", "costtrain: the teacher's kit", TEACHER_PAGES)):
        sections = []
        for page in pages:
            # the solutions as the notebooks have them now, even if solutions.md is stale
            text = (solutions_md(notebooks) if page == "solutions.md"
                    else (docs / page).read_text(encoding="utf-8"))
            sections.append(render_page(text, docs, Path(page).stem, notebooks))
        _write(out / name, render(title, sections))
        written.append(out / name)
    return written


class Unwritable(Exception):
    """A file of the handout could not be written after the work began (exit 5)."""


def _write(path: Path, text: str) -> None:
    """Write `text` through a temporary file in the same folder: never half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise Unwritable(f"cannot write {path}: {exc.strerror or exc}.") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m costtrain.course.handout",
                                description="Build the printable handout and the teacher's "
                                            "pages (HTML), or refresh the kit's generated parts.")
    p.add_argument("out_dir", nargs="?", default=str(DEFAULT_OUT),
                   help="where the HTML files go (default: %(default)s)")
    p.add_argument("--root", default=".", help="the repository root (default: %(default)s)")
    p.add_argument("--update-docs", action="store_true",
                   help="rewrite the generated parts of docs/ and README.md from the notebooks")
    args = p.parse_args(argv)
    try:
        if args.update_docs:
            changed = update_docs(args.root)
            print("\n".join(str(c) for c in changed) or "docs/teaching is up to date")
            return 0
        for path in build(args.out_dir, args.root):
            print(path)
    except CosttrainError as exc:  # refused before any page was written: OUT_DIR, --root
        print(f"costtrain: error: {exc}", file=sys.stderr)
        return 2
    except Unwritable as exc:  # the disk filled up, the folder went away, ...
        print(f"costtrain: error: {exc}", file=sys.stderr)
        return 5
    except OSError as exc:  # --update-docs: a page of the kit or the README
        print(f"costtrain: error: cannot write {exc.filename or 'a page'}: "
              f"{exc.strerror or exc}.", file=sys.stderr)
        return 5
    return 0


if __name__ == "__main__":
    sys.exit(main())
