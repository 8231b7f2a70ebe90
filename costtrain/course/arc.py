"""The course as one arc: the notebooks in order, what each teaches, where to go next, and how
long its reference copy took.

Nothing here is typed twice: a notebook's learning objectives are read from its own "You will
learn" list, its exercises (with hints and worked answers) from its own Markdown, and its time
from the executed reference copy in the repository (the first cell says on which machine and
when it ran, the last how long it took). A notebook opens with :func:`opening` and ends with
:func:`closing`; the teacher's kit and the handout (:mod:`costtrain.course.handout`) use the rest.
No torch here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

GLOSSARY = "../docs/teaching/glossary.md"  # as linked from notebooks/ (and from student/)
# The executed reference copies, in a checkout (an editable install); absent elsewhere.
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "notebooks"

# One set of classroom defaults for the notebooks' parameters cells (01-06), so that "the
# baseline to beat" is the same job from notebook to notebook. A notebook that needs another
# value says why on that line ("differs: ..."); tests/test_teaching.py holds them to this.
CLASSROOM: dict[str, Any] = {
    "dataset": "fashion-mnist",
    "subset": 6000,  # training images
    "test_subset": 2000,  # test images
    "batch_size": 64,
    "lr": 0.01,
    "momentum": 0.5,
    "seed": 42,
}
# For scale, with its source: what small conv nets reach on Fashion-MNIST when trained fully.
TYPICAL_ACCURACY = (
    "For scale: fully trained (all 60,000 images, many epochs), small two-convolution nets reach "
    "about 87.6-92.5 % test accuracy on Fashion-MNIST, and people labelling the images reach "
    "83.5 % (the submitted results in the [benchmark table of the dataset's authors]"
    "(https://github.com/zalandoresearch/fashion-mnist#benchmark), which they note are "
    "untested). The classroom runs train an epoch or two on a subset, so expect less."
)


@dataclass(frozen=True)
class Lesson:
    """One notebook of the course: its file stem, a short title, the glossary words it uses,
    where to look next, and what it shows (one line, for the course tables of the README, the
    docs and the handout)."""

    stem: str
    title: str
    terms: tuple[str, ...]
    see_also: tuple[str, ...] = ()
    shows: str = ""


LESSONS: tuple[Lesson, ...] = (
    Lesson("00_setup", "Set-up check", ("set-up",),
           shows="your machine, the data, how a notebook trains (parameters cell, Run panel, "
                 "live plot), a smoke run that says what it checked"),
    Lesson("01_baseline", "The baseline: one process, measured",
           ("set-up", "end to end", "steady state", "oversubscription"), ("03_hogwild",),
           shows="the baseline to beat: one process, threads against speed; oversubscription "
                 "explained; where the time goes (per-sample transforms against in-memory "
                 "tensors)"),
    Lesson("01b_free_speedups", "Free speed-ups first: compile, bf16, channels_last, batch size",
           ("set-up", "steady state", "within noise", "break-even", "time-to-accuracy"),
           ("01_baseline", "06_your_decision"),
           shows="the levers of one process before more processes: `torch.compile`, bf16, "
                 "`channels_last`, batch size, each against the tuned baseline in alternating "
                 "repeats; compile's break-even; which levers to keep"),
    Lesson("02_parameter_server", "A parameter server: sync and async",
           ("staleness", "steady state", "end to end"), ("05_beyond_one_machine",),
           shows="push/pull and the worker and server loops; sync against async and the number "
                 "of workers; communication against compute; staleness; `torchrun` for two "
                 "machines"),
    Lesson("03_hogwild", "Hogwild!: one shared model, no locks",
           ("oversubscription", "staleness", "warm start", "steady state"),
           ("03b_sparse_hogwild", "01_baseline"),
           shows="the worker loop and its races; the original API and `train_hogwild` on the "
                 "same work; the oversubscription trap, measured"),
    Lesson("03b_sparse_hogwild", "Hogwild! where it shines: a sparse model",
           ("steady state", "within noise", "end to end", "break-even"), ("03_hogwild",),
           shows="a sparse model against the dense net, a sparsity sweep and the measured "
                 "collisions; real text (WordNet's noun supersenses)"),
    Lesson("04_compare", "The baseline, Hogwild! and the parameter server side by side: time, "
                         "accuracy, cost",
           ("one-off time", "end to end", "time-to-accuracy", "within noise", "warm start"),
           ("05_beyond_one_machine",),
           shows="the baseline (with 01b's levers), Hogwild! and the parameter server on the same "
                 "work, in repeats: set-up + training as `advise` ranks it, accuracy, loss against "
                 "samples and seconds, where a longer job changes the answer, cost; `advise`'s pick "
                 "checked (local SGD: 05)"),
    Lesson("05_beyond_one_machine", "Beyond one machine: local SGD and the network",
           ("staleness", "time-to-accuracy"), ("02_parameter_server",),
           shows="local SGD's loop; bytes against accuracy, against the parameter server at "
                 "equal samples; predicted time on LAN, Wi-Fi and WAN; `torchrun`"),
    Lesson("06_your_decision", "Your machine, your decision",
           ("end to end", "within noise", "time-to-accuracy", "probe"), ("04_compare",),
           shows="`advise` probes every single-machine method within a budget; your decision "
                 "card; your results handed in for the class's table"),
)


def lesson(stem: str) -> Lesson:
    """The :class:`Lesson` named `stem` (e.g. ``"03_hogwild"``)."""
    for item in LESSONS:
        if item.stem == stem:
            return item
    raise KeyError(f"no course notebook named {stem!r}; known: "
                   f"{', '.join(x.stem for x in LESSONS)}")


def next_lesson(stem: str) -> Lesson | None:
    """The notebook to read after `stem` (01b and 03b are side trips: 01 leads to 01b, 01b to 02,
    03 to 03b, 03b to 04)."""
    stems = [x.stem for x in LESSONS]
    i = stems.index(lesson(stem).stem)
    return LESSONS[i + 1] if i + 1 < len(LESSONS) else None


def anchor(term: str) -> str:
    """The glossary heading's anchor as GitHub and JupyterLab make it."""
    return re.sub(r"[^a-z0-9 -]", "", term.lower()).replace(" ", "-")


def glossary_links(terms: tuple[str, ...] | list[str], glossary: str = GLOSSARY) -> str:
    """``[steady state](../docs/teaching/glossary.md#steady-state), ...``"""
    return ", ".join(f"[{t}]({glossary}#{anchor(t)})" for t in terms)


# ------------------------------------------------------------------ reading the notebooks

def _cells(stem: str, folder: str | Path) -> list[dict]:
    path = Path(folder) / f"{stem}.ipynb"
    with open(path, encoding="utf-8") as f:
        return json.load(f)["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _text(cell: dict) -> str:
    """What a code cell printed (streams and text/plain results)."""
    parts = []
    for out in cell.get("outputs", []):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def objectives(stem: str, folder: str | Path = "notebooks") -> list[str]:
    """The notebook's "You will learn" bullets, one string each."""
    intro = _source(_cells(stem, folder)[0])
    block = intro.split("**You will learn**", 1)[-1].split("\n\n", 1)[0]
    items = re.split(r"\n- ", "\n" + block.strip())
    return [" ".join(i.split()) for i in items if i.strip()]


@dataclass(frozen=True)
class Exercise:
    """One exercise: number, title, task, hint and worked answer (Markdown)."""

    number: int
    title: str
    task: str
    hint: str
    answer: str


_DETAILS = re.compile(r"<details><summary>(Hint|Worked answer)</summary>(.*?)</details>", re.S)
_TITLE = re.compile(r"^\*\*(\d+)\.(?:\s+(.+?))?\*\*", re.M)


def exercises(stem: str, folder: str | Path = "notebooks") -> list[Exercise]:
    """The exercises of the notebook, read from its "## Exercises" section."""
    text, inside = [], False
    for cell in _cells(stem, folder):
        if cell["cell_type"] != "markdown":
            if inside and "worked_answer(" in _source(cell):
                text.append(f"<details><summary>Worked answer</summary>\n\n{_static_answer(_source(cell))}"
                            "\n\n</details>")
            continue
        src = _source(cell)
        if src.lstrip().startswith("## "):
            inside = src.lstrip().startswith("## Exercises")
        if inside:
            text.append(src)
    body = "\n\n".join(text)
    found = []
    starts = list(_TITLE.finditer(body))
    for m, nxt in zip(starts, starts[1:] + [None]):
        chunk = body[m.end():nxt.start() if nxt else len(body)]
        parts = dict((k, v.strip()) for k, v in _DETAILS.findall(chunk))
        task = _DETAILS.sub("", chunk).strip()
        title = m.group(2) or _first_sentence(task)
        found.append(Exercise(int(m.group(1)), title.rstrip("."), task,
                              parts.get("Hint", ""), parts.get("Worked answer", "")))
    return found


@dataclass(frozen=True)
class ReferenceAnswer:
    """What the executed reference copy says for one exercise: the value its check compared the
    guess with (None where it has no check, or the copy predates the record), and the worked
    answer the run computed (Markdown, None where it is typed)."""

    number: int
    measured: float | str | None
    answer: str | None
    checked: bool = False  # the exercise has a check cell
    also: tuple[str, ...] = ()  # answers the reference run could not tell from `measured`


def reference_answers(stem: str, folder: str | Path = "notebooks") -> dict[int, ReferenceAnswer]:
    """Exercise number -> :class:`ReferenceAnswer`, read from the outputs of the executed copy's
    "## Exercises" section: a ``check_prediction`` cell's value (the output metadata
    ``costtrain/measured``) and a ``worked_answer`` cell's Markdown. Empty when not executed."""
    from .exercises import MEASURED

    found: dict[int, dict] = {}
    inside, current = False, None
    for cell in _cells(stem, folder):
        src = _source(cell)
        if cell["cell_type"] == "markdown":
            if src.lstrip().startswith("## "):
                inside, current = src.lstrip().startswith("## Exercises"), None
            titles = _TITLE.findall(src) if inside else []
            current = int(titles[-1][0]) if titles else current
            continue
        if not inside or current is None:
            continue
        slot = found.setdefault(current, {"measured": None, "answer": None, "checked": False,
                                          "also": ()})
        slot["checked"] |= "check_prediction(" in src
        for out in cell.get("outputs", []):
            record = (out.get("metadata") or {}).get(MEASURED)
            if "check_prediction(" in src and isinstance(record, dict) and "measured" in record:
                slot["measured"] = record["measured"]
                slot["also"] = tuple(record.get("also") or ())
            text = (out.get("data") or {}).get("text/markdown")
            if "worked_answer(" in src and text:
                text = "".join(text) if isinstance(text, list) else text
                m = re.search(r"<details><summary>Worked answer</summary>(.*)</details>", text,
                              re.S)
                slot["answer"] = (m.group(1) if m else text).strip()
    return {n: ReferenceAnswer(n, v["measured"], v["answer"], v["checked"], v["also"])
            for n, v in found.items() if v["checked"] or v["answer"]}


def _static_answer(source: str) -> str:
    """The fixed text of a ``worked_answer(...)`` call; the run's numbers are left out (they
    are computed when the notebook runs)."""
    import ast

    call = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "worked_answer")
    def fixed(node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):  # the literal parts only, not the values or their formats
            return "".join(fixed(v) for v in node.values if isinstance(v, ast.Constant))
        if isinstance(node, ast.BinOp):
            return fixed(node.left) + fixed(node.right)
        if isinstance(node, ast.IfExp):  # one branch
            return fixed(node.body)
        return ""
    kept = re.split(r"\s*This run\b", fixed(call.args[0]) if call.args else "")[0].strip()
    return (kept + "\n\n" if kept else "") + "(The notebook adds this run's numbers.)"


def _first_sentence(text: str) -> str:
    """Up to the first '?' or '. ' after 30 characters (so "e.g." does not end it)."""
    flat = " ".join(text.split())
    m = re.compile(r"[?]|\.(?= [A-Z])").search(flat, 30)
    return flat[:m.end()] if m else flat


@dataclass(frozen=True)
class ReferenceRun:
    """How the executed reference copy of a notebook ran: when, where, how long."""

    stem: str
    seconds: float
    cores: int
    when: str
    machine: str
    load: str

    @property
    def minutes(self) -> float:
        return self.seconds / 60

    def describe(self) -> str:
        load = f", load average {self.load}" if self.load else ""
        return (f"{self.seconds:.0f} s ({self.minutes:.1f} min) on {self.machine}, "
                f"{self.cores} core(s){load}, {self.when}")


_HEADER = re.compile(r"ran (?P<when>.+? UTC) on (?P<machine>.+?), (?P<cores>\d+) core\(s\)"
                     r"(?:, [^,]+)?(?:, load average (?P<load>[\d.]+))?")
_TOOK = re.compile(r"this notebook ran for (?P<s>[\d.]+) s on (?P<cores>\d+) cores")


def reference_run(stem: str, folder: str | Path = "notebooks") -> ReferenceRun | None:
    """The time the committed reference copy of `stem` reports, or None if it has none."""
    try:
        code = [c for c in _cells(stem, folder) if c["cell_type"] == "code"]
    except (OSError, ValueError, KeyError):
        return None
    if not code:
        return None
    took = _TOOK.search(_text(code[-1]))
    head = _HEADER.search(_text(code[0]))
    if not took:
        return None
    return ReferenceRun(stem, float(took["s"]), int(took["cores"]),
                        head["when"] if head else "date not recorded",
                        head["machine"] if head else "the reference machine",
                        (head["load"] or "") if head else "")


def reference_runs(folder: str | Path = "notebooks") -> list[ReferenceRun]:
    """Every course notebook's reference time, in course order (those that have one)."""
    return [r for r in (reference_run(x.stem, folder) for x in LESSONS) if r is not None]


# ------------------------------------------------------------------ what a notebook shows

class Md(str):
    """Markdown text that a notebook shows rendered when it is a cell's last expression."""

    def _repr_markdown_(self) -> str:
        return str(self)


def opening(stem: str, folder: str | Path | None = None) -> Md:
    """The notebook's time at the classroom defaults (from its reference copy) and its words.

    `folder` None: the repository's ``notebooks/`` (:data:`REFERENCE_DIR`), else the working
    folder; a student's copy (``student/``), even one run and saved, is never the reference."""
    folders = [folder] if folder is not None else [REFERENCE_DIR, Path(".")]
    ref = next((r for r in (reference_run(stem, f) for f in folders) if r is not None), None)
    item = lesson(stem)
    if ref is None:
        took = ("**Measured minutes:** no executed reference copy of this notebook was found, "
                "so there is no reference time to show.")
    else:
        took = (f"**Measured minutes:** the reference copy of this notebook ran at the classroom "
                f"defaults in {ref.describe()} (read from the reference copy "
                f"`notebooks/{stem}.ipynb`). The last cell prints your machine's time.")
    return Md(f"{took}\n\nWords used here (see the [glossary]({GLOSSARY})): "
              f"{glossary_links(item.terms)}.")


def closing(stem: str, takeaways: list[str], results: Sequence[Any] = ()) -> Md:
    """Key takeaways (sentences the notebook computed from its run), Next and See also links;
    led by :func:`costtrain.advice.prose.machine_note` when any of `results` ran on a busy machine."""
    from ..advice.prose import machine_note, md

    item, nxt = lesson(stem), next_lesson(stem)
    note = machine_note(results)
    lines = ([note, ""] if note else []) + [f"- {md(t)}" for t in takeaways] + [""]
    if nxt is not None:
        lines.append(f"**Next:** [{nxt.stem}.ipynb]({nxt.stem}.ipynb): {nxt.title}.")
    else:
        lines.append("**Next:** take your decision card to your own model: `costtrain.recommend` "
                     "accepts your model class and dataset.")
    see = [f"[{s}.ipynb]({s}.ipynb) ({lesson(s).title})" for s in item.see_also]
    see.append(f"the [glossary]({GLOSSARY}) ({glossary_links(item.terms)})")
    see.append("the course's [decision flow](diagrams/decision_flow.svg)")
    lines += ["", "**See also:** " + "; ".join(see) + "."]
    return Md("\n".join(lines))
