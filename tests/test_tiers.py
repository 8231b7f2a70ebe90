"""The two tiers are folders: a test's tier is where its file lives (tests/conftest.py), never a
list of names, so a renamed test cannot move between `make check` and the slow tier."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import conftest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


class _Item:
    """What the tier hook reads of a collected test: its file, its marks, its node id."""

    def __init__(self, path: Path, marked: bool = False) -> None:
        self.path, self.nodeid = path, f"{path.relative_to(ROOT)}::test_x"
        self.marks = ["slow"] if marked else []

    def add_marker(self, mark) -> None:
        self.marks.append(mark.name)

    def get_closest_marker(self, name: str):
        return name if name in self.marks else None


def test_the_slow_folder_marks_its_tests_and_only_those():
    slow, fast = _Item(TESTS / "slow" / "test_renamed_anything.py"), _Item(TESTS / "test_x.py")
    conftest.pytest_collection_modifyitems(None, [slow, fast])
    assert slow.marks == ["slow"] and fast.marks == []


def test_a_slow_mark_outside_the_slow_folder_is_refused():
    with pytest.raises(pytest.UsageError, match=r"outside tests/slow/.*\n  tests/test_x.py::test_x"):
        conftest.pytest_collection_modifyitems(None, [_Item(TESTS / "test_x.py", marked=True)])


def test_no_list_of_test_names_decides_a_tier():
    text = (TESTS / "conftest.py").read_text()
    assert not re.search(r"SLOW_(FILES|TESTS|FIXTURES)|originalname", text)
    for path in TESTS.glob("test_*.py"):  # a mark by hand would be refused at collection anyway
        assert not re.search(r"mark\.slow\b", path.read_text()) or path.name == "test_tiers.py", path.name


def test_test_file_names_are_unique_across_the_folders():
    """Without __init__.py, pytest imports a test file by its base name: two alike would clash."""
    names = [p.name for p in TESTS.rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_make_check_leaves_the_slow_tier_out_and_make_test_runs_both():
    make = (ROOT / "Makefile").read_text()
    check = re.search(r"^check:.*\n((?:\t.*\n)+)", make, re.M)[1]
    test = re.search(r"^test:.*\n((?:\t.*\n)+)", make, re.M)[1]
    assert '-m "not slow"' in check and "-m" not in test.replace("-m pytest", "")
    assert "--durations=12" in test


def test_a_hang_fails_with_a_name(request):
    """pytest-timeout is on for every test (the dev extra installs it): a default in pyproject, longer
    per module where a module waits for more (the course, the browser)."""
    assert request.config.pluginmanager.hasplugin("timeout")
    assert float(request.config.getini("timeout")) == 300
