"""``costtrain class collect``: the class's result files merged into one table and figure.

The files come from real runs of the CLI (tiny jobs). A class has many machines; this test has
one, so one file is copied and its machine stamp (``hardware``) edited to stand for a second,
16-core machine: the numbers in it are this machine's, only the stamp is simulated.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


def costtrain(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "costtrain", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.parametrize("make,msg", [
    (lambda d: d, "no result files (*.json)"),
    (lambda d: d / "nothing-here", "is not a folder"),
])
def test_an_empty_or_missing_folder_is_a_clear_error(tmp_path, make, msg):
    p = costtrain("class", "collect", str(make(tmp_path)))
    assert p.returncode == 2 and msg in p.stderr


def test_the_class_command_parses_without_torch():
    code = ("import sys\nfrom costtrain import cli\n"
            "try:\n    cli.main(['class', 'collect', '--no-such-option'])\n"
            "except SystemExit as e:\n    print(e.code)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert out.stdout.split() == ["2", "False"], out.stderr
