"""Students' copies of the course: ``costtrain student [DIR]`` / ``make student``.

The notebooks in ``notebooks/`` are the *executed reference copies* (what nbval checks, what a
teacher and a reader on GitHub see): every output is already there, the answer to every "predict,
then run" exercise included. A student predicts in a copy without outputs. :func:`write_copies`
builds one from each jupytext source ``notebooks/NN_name.py`` (the one thing an author edits) into
a folder git ignores (``student/`` by default, beside ``notebooks/`` so the notebooks' links into
``../docs/`` resolve), copies the diagrams they show, and records the hash of every file it wrote
in ``.costtrain-student.json``. Run again, it refreshes a copy only while the copy is still what it
wrote (the source changed); a copy the student edited or ran and saved is kept, named, and replaced
only with ``force`` (``--force``), which first moves the student's copy into ``backup/``.

Hiding an answer that sits above the run it predicts: a Markdown cell tagged ``answer`` is folded
whole in the students' copies (``<details>``), and so is a span of a Markdown cell between
``<!-- answer -->`` and ``<!-- /answer -->``; the reference copies show both as written (see the
contributor's guide). No torch here.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CosttrainError

DEFAULT_DIR = Path("student")
SOURCES = "[0-9][0-9]*_*.py"  # the jupytext sources: 00_setup.py ... 06_your_decision.py
MANIFEST = ".costtrain-student.json"
ANSWER_TAG = "answer"
ANSWER_SPAN = re.compile(r"<!--\s*answer\s*-->(.*?)<!--\s*/answer\s*-->", re.S)
SUMMARY = "An answer: open it after you have run the exercise"


@dataclass
class Written:
    """What :func:`write_copies` did: files written, refreshed, kept (edited) or replaced."""

    folder: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    backed_up: dict[str, Path] = field(default_factory=dict)

    def report(self, command: str = "costtrain student --force") -> str:
        lines = [f"{len(self.written)} notebook(s) written, {len(self.unchanged)} already up to "
                 f"date in {self.folder}"]
        lines += [f"  replaced your copy of {n}; yours is in {p}" for n, p in self.backed_up.items()]
        if self.kept:
            lines.append(f"  kept {len(self.kept)} copy(ies) you edited or ran: "
                         f"{', '.join(self.kept)}")
            lines.append(f"  (to replace them with fresh ones, run `{command}`; your copies are "
                         f"moved to {self.folder / 'backup'} first)")
        return "\n".join(lines)


def fold(markdown: str, summary: str = SUMMARY) -> str:
    """`markdown` folded into a ``<details>`` block (Markdown inside still renders)."""
    return f"<details><summary>{summary}</summary>\n\n{markdown.strip()}\n\n</details>"


def hide_answers(source: str, tags: list[str]) -> str:
    """A Markdown cell's source as the students see it: whole cell folded when tagged
    ``answer``, else every ``<!-- answer -->`` span folded in place."""
    if ANSWER_TAG in tags:
        return fold(source)
    return ANSWER_SPAN.sub(lambda m: "\n\n" + fold(m.group(1)) + "\n\n", source)


def clean_copy(source: str | Path):
    """The students' notebook for the jupytext source `source`: no outputs, no execution
    counts, answers marked in the source folded, not paired with a .py (so saving it in
    JupyterLab writes only the .ipynb), cell ids fixed (the same source gives the same bytes)."""
    import jupytext

    source = Path(source)
    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = hashlib.sha1(f"{source.stem}:{i}".encode()).hexdigest()[:8]
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "markdown":
            cell.source = hide_answers(cell.source, tags)
        elif cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _render(nb) -> bytes:
    import nbformat
    return (nbformat.writes(nb) + "\n").encode("utf-8")


def sources(notebooks: str | Path = "notebooks") -> list[Path]:
    """The course's jupytext sources, in order."""
    folder = Path(notebooks)
    found = sorted(folder.glob(SOURCES))
    if not found:
        raise CosttrainError(f"no notebook sources ({SOURCES}) in {str(folder)!r}: run from the "
                             "repository root or pass --notebooks-dir.")
    return found


def _manifest(folder: Path) -> dict:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_copies(folder: str | Path = DEFAULT_DIR, notebooks: str | Path = "notebooks", *,
                 force: bool = False) -> Written:
    """Write the students' copies of every course notebook into `folder` (see the module's
    docstring); never replace a copy the student changed unless `force`."""
    folder, notebooks = Path(folder), Path(notebooks)
    paths = sources(notebooks)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CosttrainError(f"cannot create {str(folder)!r} ({exc.strerror}): pass a folder you "
                             "can write to.") from None
    record = _manifest(folder)
    done = Written(folder)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for src in paths:
        name = src.with_suffix(".ipynb").name
        data = _render(clean_copy(src))
        target = folder / name
        if target.exists():
            current = _sha(target.read_bytes())
            if current == _sha(data):
                done.unchanged.append(name)
                record[name] = _sha(data)
                continue
            if current != record.get(name):  # not what we wrote: the student's own
                if not force:
                    done.kept.append(name)
                    continue
                backup = folder / "backup" / f"{src.stem}-{stamp}.ipynb"
                backup.parent.mkdir(exist_ok=True)
                shutil.move(target, backup)
                done.backed_up[name] = backup
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        record[name] = _sha(data)
        done.written.append(name)
    diagrams = notebooks / "diagrams"
    if diagrams.is_dir():  # the notebooks show diagrams/NAME.svg
        shutil.copytree(diagrams, folder / "diagrams", dirs_exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n",
                                   encoding="utf-8")
    return done


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``costtrain student``."""
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_DIR),
                        help="where the students' copies go (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="also replace copies you edited or ran (yours are moved to "
                             "FOLDER/backup/ first)")
    parser.add_argument("--notebooks-dir", default="notebooks",
                        help="folder with the jupytext sources NN_name.py (default: %(default)s)")


def run_cli(args: argparse.Namespace) -> None:
    """Entry point of ``costtrain student``."""
    done = write_copies(args.folder, args.notebooks_dir, force=args.force)
    print(done.report(f"costtrain student --force {args.folder}"))
