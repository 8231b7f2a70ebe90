"""The landing page and the docs: every relative link (and its #anchor) resolves, every path
named in backticks exists, measured blocks are dated and no block is older than what it quotes,
generated blocks are in step, the README stays a landing page, stale lines stay gone, and the
install commands without make are the Makefile's."""
from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

import pytest

from costtrain.course import handout

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "notebooks" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MEASURED = [README, *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
OPEN = re.compile(r"<!-- measured (\d{4}-\d{2}-\d{2}): `[^`]+`(.*?)-->", re.S)
CLOSE = "<!-- /measured -->"
DATE = re.compile(r"\b(20\d\d-\d\d-\d\d)\b")


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _without_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def slug(heading: str) -> str:
    """A Markdown heading's anchor as GitHub makes it."""
    text = re.sub(r"`|\*\*?|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for h in re.findall(r"^#{1,6} (.+)$", _without_code(page.read_text()), re.M):
        s = slug(h)
        found.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return found


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_resolves(page):
    for target in LINK.findall(_without_code(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, frag = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{_rel(page)}: {target} does not exist"
        if frag and dest.suffix == ".md":
            assert frag in anchors(dest), f"{_rel(page)}: {target}: no heading #{frag}"


EXAMPLE_PATHS = {"costtrain/train/easgd.py", "tests/test_easgd.py"}  # contributing's worked example


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_path_named_in_backticks_exists(page):
    for path in re.findall(r"`((?:costtrain|tests|benchmarks|examples|docs|notebooks)/[\w./-]+"
                           r"\.(?:py|md|svg|ipynb))`", page.read_text()):
        if path in EXAMPLE_PATHS or "NN" in path:  # an example, a placeholder
            continue
        assert (ROOT / path).exists(), f"{_rel(page)}: `{path}` does not exist"


def blocks(page: Path) -> list[dict]:
    """The measured blocks of a page: date, id, quoted ids, opening marker, body (markers shown
    inside fenced code are examples, not blocks)."""
    raw = page.read_text()
    text = re.sub(r"```.*?```", lambda m: re.sub(r"[^\n]", " ", m[0]), raw, flags=re.S)
    out, pos = [], 0
    while (m := OPEN.search(text, pos)) is not None:
        end = text.find(CLOSE, m.end())
        assert end > 0, f"{_rel(page)}: the block of {m[1]} is not closed"
        nested = OPEN.search(text, m.end(), end)
        assert nested is None, f"{_rel(page)}: a block opens inside the block of {m[1]}"
        attrs = m[2]
        ident = re.search(r"\[id: ([\w-]+)\]", attrs)
        quotes = re.search(r"\[quotes: ([\w\-, ]+)\]", attrs)
        out.append({"page": _rel(page), "date": m[1], "id": ident[1] if ident else None,
                    "quotes": [q.strip() for q in quotes[1].split(",")] if quotes else [],
                    "marker": m[0], "body": raw[m.end():end]})
        pos = end + len(CLOSE)
    assert text.count(CLOSE) == len(out), f"{_rel(page)}: a closing marker without its block"
    return out


ALL_BLOCKS = [b for p in MEASURED for b in blocks(p)]


def test_the_measured_blocks_exist_and_are_named_once():
    assert len(ALL_BLOCKS) >= 10
    ids = [b["id"] for b in ALL_BLOCKS if b["id"]]
    assert len(ids) == len(set(ids)), ids
    assert {"make-run", "make-test", "install-size"} <= set(ids)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[f"{b['page']}:{b['date']}" for b in ALL_BLOCKS])
def test_no_block_is_older_than_what_it_quotes(block):
    """A block's date is the newest measurement in it: a date inside it may not be later, and a
    block it quotes ([quotes: ID]) may not be newer. No date lies in the future."""
    date = block["date"]
    assert date <= dt.date.today().isoformat(), f"{block['page']}: {date} is in the future"
    later = [d for d in DATE.findall(block["body"]) if d > date]
    assert not later, (f"{block['page']}: the block of {date} quotes a later measurement "
                       f"({', '.join(later)}): give that measurement a block of its own")
    by_id = {b["id"]: b for b in ALL_BLOCKS if b["id"]}
    for q in block["quotes"]:
        assert q in by_id, f"{block['page']}: quotes unknown block {q!r}"
        assert by_id[q]["date"] <= date, (f"{block['page']}: the block of {date} quotes {q}, "
                                          f"measured later ({by_id[q]['date']}): update it")


def test_the_readme_quotes_the_measurement_it_names():
    """The headline numbers are the make-run block's own."""
    (make_run,) = [b for b in ALL_BLOCKS if b["id"] == "make-run"]
    head = next(b for b in blocks(README) if b["quotes"] == ["make-run"])
    numbers = re.findall(r"\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+", head["body"])
    source = make_run["marker"] + make_run["body"]
    missing = [n for n in numbers if n not in source and n.replace(",", "") not in source]
    assert numbers and not missing, missing


def test_the_generated_blocks_of_the_readme_and_the_docs_are_in_step():
    for page in handout.generated_pages(ROOT):
        text = page.read_text()
        assert handout.refresh(text, ROOT / "notebooks") == text, f"{_rel(page)}: run `make kit`"
    assert "<!-- generated: course-readme -->" in README.read_text()


def test_the_readme_is_a_landing_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 160, "the README is the landing page: move detail to docs/"
    for command in ("make lab", "make run", "make test", "costtrain advise",
                    "](docs/teaching/README.md)", "TORCH_INDEX=https://download.pytorch.org/whl/cpu"):
        assert command in text, command
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in text, f"the README does not link {page.name}"


@pytest.mark.parametrize("stale", ["1..cores workers", "3–5 exercises", "3-5 exercises",
                                   "same job throughout", "Recommended: hogwild",
                                   "ranks by one-off end-to-end time", "Notebooks 01-05 add"])
def test_stale_lines_are_gone(stale):
    for page in PAGES:
        assert stale not in handout.BLOCK.sub("", page.read_text()), f"{_rel(page)}: {stale!r}"


def test_the_advise_example_is_a_dated_card_or_marked_for_regeneration():
    """The example is what `costtrain advise` printed, in a measured block (its job line first
    and a command that runs it), or, when stale, a marker naming the command to regenerate it."""
    section = (ROOT / "docs" / "advise.md").read_text().split("## An example", 1)[1].split("\n## ", 1)[0]
    if re.search(r"<!-- regenerate: `costtrain advise [^`]+`", section):
        return
    m = OPEN.search(section)
    assert m and "`costtrain advise" in m[0], "no measured block of `costtrain advise` in the example"
    card = section[m.end():section.index(CLOSE)]
    assert "**Job:**" in card and "costtrain run --method" in card


def test_the_install_without_make_runs_the_makefiles_steps():
    make = (ROOT / "Makefile").read_text()
    page = (ROOT / "docs" / "install.md").read_text()
    windows = page.split("## Windows without `make`", 1)[1]
    run_args = re.search(r"^RUN_ARGS \?= (.+)$", make, re.M)[1]
    assert f"costtrain compare {run_args} --out results/compare.json --figures results/figures" in windows
    assert "$(RUN_ARGS) --out results/compare.json --figures results/figures" in make
    assert 'pip install -e ".[dev]"' in windows and "pip install -q -e '.[dev]'" in make
    assert "ipykernel install --sys-prefix --name python3" in windows and \
        "ipykernel install --sys-prefix --name python3" in make
    assert "costtrain student" in windows and "default_url=/lab/tree/student/00_setup.ipynb" in windows
    assert "download=True" in windows and "download=True" in make


def test_torch_index_is_used_only_when_set_and_pins_pyprojects_versions():
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCH_INDEX \?=\s*$", make, re.M), "empty by default: CI tests PyPI's wheels"
    uses = [ln for ln in make.splitlines() if "$(TORCH_INDEX)" in ln]
    assert uses and all(ln.lstrip().startswith("$(if $(TORCH_INDEX),") for ln in uses)
    specs = re.findall(r"'([^']+)'", re.search(r"^TORCH_SPECS := (.+)$", make, re.M)[1])
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(specs) == sorted(d for d in deps if re.match(r"torch(vision)?\b", d))
    conda = (ROOT / "docs" / "install.md").read_text()
    assert " ".join(f"'{s}'" for s in specs) in conda
