"""Prose that is true at every parameter set.

A sentence a reader sees in a notebook's Markdown cell or in the README is typed once and read
beside outputs that change with every machine and parameter set. So typed prose may not name a
measured figure (a number followed by %, x, s, seconds or samples/s): the notebook computes
such a sentence from its run (Markdown output), or leaves it out. Exempt, explicitly:

* code (fenced blocks and inline spans), link targets and HTML comments;
* exercise prompts: a paragraph that starts with a bold number (``**2.`` or ``**Exercise 2``)
  says what to try, not what happened;
* README and docs/ only: a *measured block*, ``<!-- measured YYYY-MM-DD: `command` -->`` ...
  ``<!-- /measured -->``, the record of one dated measurement and the command that made it
  (tests/test_docs.py checks the dates), and a *generated block* (``<!-- generated: NAME -->``
  ... ``<!-- end generated -->``), written from its source by ``make kit`` and checked in step;
* a *fixed fact* (a default, a definition, a property of the data, not a measurement): the line
  carries ``<!-- fixed: why -->``. The whole course may have at most ``MAX_FIXED`` of them.

The helpers that build computed sentences (``costtrain.advice.prose``) are tested below too.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

from costtrain.advice import prose
from costtrain.result import RunResult

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.py"))
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))  # the reference pages (the kit, docs/teaching, aside)
GENERATED = re.compile(r"<!-- generated: [\w-]+ -->\n.*?<!-- end generated -->", re.S)
MAX_FIXED = 12

# a number (not part of a word, version, path or formula) followed by a unit of a measurement
FIGURE = re.compile(r"(?<![\w.,/^*])\d[\d,]*(?:\.\d+)?"
                    r"(?:\s?%|\s?[x×](?![\w(])(?!\s*[\d(])|\s(?:s|seconds?)\b|\s?samples/s)")
FIXED = re.compile(r"<!--\s*fixed:\s*(\S[^>]*?)\s*-->")
MEASURED_OPEN = re.compile(r"<!--\s*measured\s+(\d{4}-\d{2}-\d{2}):\s*`[^`]+`.*?-->")
MEASURED_ANY = re.compile(r"<!--\s*/?measured\b")
PROMPT = re.compile(r"^\*\*(?:Exercise\s+)?\d+\b")


def _plain(text: str) -> str:
    """`text` without code, link targets, URLs and HTML comments."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"<!--.*?-->", " ", text, flags=re.S)


def _paragraphs(markdown: str) -> list[str]:
    """Blank-line separated paragraphs; a fenced block is one paragraph."""
    out, cur, fenced = [], [], False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if cur:
                out.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    if cur:
        out.append("\n".join(cur))
    return out


def offending(markdown: str, where: str, readme: bool = False) -> tuple[list[str], int]:
    """(sentences of `markdown` that name a measured figure, number of fixed-fact comments).

    Each offending sentence is given as ``where: sentence``."""
    bad, fixed, inside = [], 0, False
    if readme:
        markdown = GENERATED.sub("", markdown)
    for para in _paragraphs(markdown):
        if readme and MEASURED_ANY.search(re.sub(r"```.*?```", "", para, flags=re.S)):
            if not re.fullmatch(r"\s*<!--.*?-->\s*", para, re.S):
                raise AssertionError(f"{where}: a measured-block marker must be a paragraph of its own: "
                                     f"{para[:120]!r}")
            for m in MEASURED_ANY.finditer(para):
                closing = para[m.start():m.end() + 1].startswith("<!-- /") or "/measured" in m.group(0)
                if not closing and not MEASURED_OPEN.match(para, m.start()):
                    raise AssertionError(f"{where}: a measured block must open with "
                                         f"<!-- measured YYYY-MM-DD: `command` -->: {para[:120]!r}")
                inside = not closing
            continue  # the marker paragraph itself
        if inside or PROMPT.match(para.lstrip()):
            continue
        lines = []
        for line in para.splitlines():
            if FIXED.search(line):
                fixed += 1
                line = FIGURE.sub("#", _plain(line))
            lines.append(line)
        rows = [ln for ln in lines if ln.lstrip().startswith("|")]  # a table row is one unit
        text = " ".join(_plain("\n".join(ln for ln in lines if ln not in rows)).split())
        units = re.split(r"(?<=[.!?:;])\s+(?=[A-Z*(\-])", text) + [" ".join(_plain(r).split()) for r in rows]
        bad += [f"{where}: {u}" for u in units if FIGURE.search(u)]
    if inside:
        raise AssertionError(f"{where}: a measured block is not closed with <!-- /measured -->")
    return bad, fixed


def notebook_markdown(path: Path) -> list[tuple[int, str]]:
    """(cell index, source) of every Markdown cell of the jupytext source `path`."""
    nb = jupytext.read(path)
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def course_offenders() -> tuple[list[str], int]:
    bad, fixed = [], 0
    for path in NOTEBOOKS:
        for i, source in notebook_markdown(path):
            b, f = offending(source, f"{path.stem} cell {i}")
            bad += b
            fixed += f
    for page in [README, *DOCS]:
        b, f = offending(page.read_text(), page.relative_to(ROOT).as_posix(), readme=True)
        bad += b
        fixed += f
    return bad, fixed


# --- the scanner itself ----------------------------------------------------------------------

@pytest.mark.parametrize("sentence", [
    "Two threads trained 1.5x faster than one.",
    "It reached 63.7 % test accuracy.",
    "The set-up took 4.8 s here.",
    "One process trained 5,519 samples/s.",
    "Spawning took 2.9 seconds.",
    "Hogwild! was 12% faster.",
    "A job of a few seconds loses 40 % of its speed-up.",
    "Both add 3-4 s of start-up.",
])
def test_the_scanner_finds_a_measured_figure(sentence):
    bad, _ = offending(f"Some text.\n\n{sentence}\n", "t")
    assert len(bad) == 1 and sentence.rstrip(".") in bad[0]


@pytest.mark.parametrize("markdown", [
    "The paper (Niu et al., NIPS 2011) and [the notes](https://x.org/a-1.5x.html).",
    "Fashion-MNIST has 60,000 training and 10,000 test images of 28×28 pixels.",
    "Each process gets `max(1, 2 // 4) = 1` thread, so 4 × 1 runs 4 threads on 2 cores.",
    "With 2x2 and 4x1 the total work is the same; `2 x (N-1) x payload` bytes.",
    "```python\nprint(f'{speedup:.1f}x faster, 5 s')\n```",
    "**3. Batch size.** Train once at batch 64 and once for 60 s, predict 1.5x.",
    "The default timeout is 60 s. <!-- fixed: the default of --timeout -->",
    "Set `oversub_timeout` to 0 to skip the 2 x 2 demo of the 2010s.",
])
def test_the_scanner_lets_through_what_is_not_a_measurement(markdown):
    assert offending(markdown, "t")[0] == []


def test_measured_blocks_are_dated_and_closed():
    block = ("Intro.\n\n<!-- measured 2026-11-27: `costtrain compare` on a 2-core box -->\n\n"
             "| run | s |\n|---|---|\n| a | 4.8 |\n\nIt took 4.8 s.\n\n<!-- /measured -->\n\nAfter.\n")
    assert offending(block, "README", readme=True)[0] == []
    assert offending(block.replace("It took", "\n\nOutside it took 4.8 s.\n\nIt took").replace(
        "<!-- /measured -->\n\nAfter.", "<!-- /measured -->\n\nAfter, 3.1 s."), "README", readme=True)[0] \
        == ["README: After, 3.1 s."]
    with pytest.raises(AssertionError, match="must open with"):
        offending("<!-- measured last week -->\n\n1.2 s\n\n<!-- /measured -->", "README", readme=True)
    with pytest.raises(AssertionError, match="not closed"):
        offending("<!-- measured 2026-11-27: `make run` -->\n\n1.2 s\n", "README", readme=True)


# --- the course ------------------------------------------------------------------------------

def test_no_static_sentence_names_a_measured_figure():
    bad, _ = course_offenders()
    assert not bad, (f"{len(bad)} typed sentence(s) name a measured figure: compute them from the "
                     "run (display(Markdown(...))) or remove them; a default or definition may carry "
                     "<!-- fixed: why -->; a README measurement belongs in a dated measured block:\n"
                     + "\n".join(bad))


def test_the_fixed_fact_allow_list_stays_small():
    _, fixed = course_offenders()
    assert fixed <= MAX_FIXED, f"{fixed} <!-- fixed: ... --> comments; at most {MAX_FIXED}"


def test_notebooks_escape_dollars_in_generated_markdown():
    """Every Markdown a notebook generates goes through prose.md (a $ would start LaTeX)."""
    for path in NOTEBOOKS:
        text = path.read_text()
        raw = re.findall(r"Markdown\((?!md\()", text)
        assert not raw, f"{path.name}: display Markdown through costtrain.advice.prose.md(...)"


# --- the helpers that build computed sentences ----------------------------------------------

def test_md_escapes_dollars_outside_code_only():
    text = "($0.0000098, electricity at $0.2/kWh) `cost = $x` and\n```\necho $HOME\n```"
    out = prose.md(text)
    # two backslashes: the rendered text keeps one, so JupyterLab's MathJax shows a dollar
    assert out.startswith(r"(\\$0.0000098, electricity at \\$0.2/kWh) `cost = $x` and")
    assert prose.md(r"\$1") == prose.md("$1") == r"\\$1"  # a single escape is upgraded
    assert "echo $HOME" in out and prose.md(out) == out  # already escaped: unchanged
    # no unescaped $ pair is left for a LaTeX renderer outside code
    assert not re.search(r"(?<!\\)\$", re.sub(r"```.*?```|`[^`]*`", "", out, flags=re.S))


@pytest.mark.parametrize("fraction", [0.62949999, 0.6295, 0.63749, 0.6375, 0.0987, 0.99999, 0.5])
def test_a_sentence_quotes_the_tables_rounding(fraction):
    """The accuracy a sentence quotes is the one results_table prints (63.7 under 63.8 was a bug:
    the table rounded twice)."""
    from costtrain.advice.report import results_table
    r = RunResult(method="baseline", config={}, label="x", test_accuracy=fraction,
                  setup_seconds=1.23456, train_seconds=10.2501, eval_seconds=0.04449)
    row = results_table([r]).splitlines()[-1].split()
    assert row[-1] + " %" == prose.pct(fraction)
    # columns: run, threads, setup, warm setup, train, eval, total, ...
    assert row[4] + " s" == prose.secs(r.train_seconds) and row[2] + " s" == prose.secs(r.setup_seconds)
    assert row[6] + " s" == prose.secs(r.total_seconds)


def test_number_formats_like_a_table():
    assert [prose.number(x) for x in (0.04449, 4.0671, 63.75, 5519.4, float("nan"))] == \
        ["0.0445", "4.07", "63.8", "5,519", "-"]


def test_one_run_sentence_names_no_winner():
    text = prose.one_run_sentence("End to end", {"a": 2.82, "b": 3.44})
    assert text.startswith("End to end, one run each: a 2.82 s, b 3.44 s. One run each names no winner")
    assert "fastest" not in text and "first" not in text
    assert prose.one_run_sentence("Seconds", {"a": 2.0}) == "Seconds: a 2 s (one run)"
    with pytest.raises(ValueError):
        prose.one_run_sentence("x", {})


def test_ranking_sentence_uses_the_ranges():
    apart = prose.ranking_sentence("End to end", {"a": [2.0, 2.1, 2.2], "b": [3.0, 3.1, 3.3]})
    assert apart.startswith("End to end (medians): lowest a 2.1 s (2 s to 2.2 s, 3 runs), ahead of b")
    close = prose.ranking_sentence("End to end", {"a": [2.0, 2.5, 3.1], "b": [3.0, 3.1, 3.3]})
    assert "within noise" in close and "winner" in close
    acc = prose.ranking_sentence("Accuracy", {"a": [0.6, 0.61], "b": [0.7, 0.71]}, prose.pct,
                                 higher_is_better=True)
    assert "highest b 70.5 %" in acc
    same = prose.ranking_sentence("Accuracy", {"a": [0.6, 0.6], "b": [0.7, 0.7]}, prose.pct,
                                  higher_is_better=True, one_seed=True)
    assert "no winner named" in same and "highest" not in same and "beyond" not in same
    once = prose.ranking_sentence("End to end", {"a": [2.0], "b": [3.0, 3.1]})
    assert "one run each" in once and "names no winner" in once


def test_target_sentence():
    assert "(one run)" in prose.target_sentence({"a": [1.2], "b": [None]}, "75 %")
    assert "one run each" in prose.target_sentence({"a": [1.2], "b": [1.5]}, "75 %")
    assert "(b did not reach it)" in prose.target_sentence({"a": [1.2], "b": [None]}, "75 %")
    assert prose.target_sentence({"a": [None]}, "75 %") == "no configuration reached 75 %"
    assert "within noise" in prose.target_sentence({"a": [1.0, 1.4], "b": [1.3, 1.6]}, "75 %")


def test_noise_sentence_finds_a_repeated_configuration():
    def r(threads, rate, **config):
        return RunResult(method="baseline", config={"batch_size": 64, **config}, threads=threads,
                         steady_samples_per_second=rate)
    runs = [r(2, 3431.0), r(1, 3767.0), r(2, 5519.0), r(2, 6903.0, pipeline="memory")]
    assert prose.noise_sentence(runs).startswith(
        "one configuration (baseline, 2 thread(s), the same settings) ran 2 times here: "
        "3,431 samples/s to 5,519 samples/s (1.61x apart)")
    assert prose.noise_sentence(runs[:2]) is None


def test_values_reads_repeats_then_the_run():
    r = RunResult(method="x", config={}, train_seconds=2.0, cost={"time_to_target_seconds": 1.5})
    assert prose.values(r, "train_seconds") == [2.0]
    assert prose.values(r, "time_to_target_seconds") == [1.5]
    r.extra["repeats"] = [{"train_seconds": 1.0}, {"train_seconds": 3.0}]
    assert prose.values(r, "train_seconds") == [1.0, 3.0]
    assert prose.values(r, "time_to_target_seconds") == [1.5]  # not in every repeat


def test_span_says_when_every_value_prints_the_same():
    from costtrain.advice.prose import span
    assert span([0.4381, 0.4379]) == "43.8 % in each"
    assert span([0.431, 0.438]) == "43.1 % to 43.8 %"
