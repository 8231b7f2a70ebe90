"""``costtrain class collect`` on the result files of real runs of the CLI (the slow half of
test_class_collect.py, which says how the second machine is simulated)."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from test_class_collect import ROOT, costtrain

from costtrain.course.classroom import collect, table

JOB = ["--model", "mlp", "--subset", "400", "--no-progress"]


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> Path:
    """Three real runs of the same work (2 epochs): the baseline twice (a repeat) and Hogwild!
    with 2 processes of 1 epoch each."""
    folder = tmp_path_factory.mktemp("runs")
    base = ["--method", "baseline", "--threads", "1", "--epochs", "2"]
    for name, args in (("ada_baseline.json", base), ("ada_baseline_again.json", base),
                       ("bo_hogwild.json", ["--method", "hogwild", "--processes", "2"])):
        p = costtrain("run", *args, *JOB, "--out", str(folder / name))
        assert p.returncode == 0, p.stderr
    return folder


def handed_in(real_runs: Path, dest: Path) -> Path:
    """A class's folder: the real files, one re-stamped as another machine, a copy, junk."""
    dest.mkdir()
    for f in real_runs.iterdir():
        shutil.copy(f, dest / f.name)
    data = json.loads((real_runs / "ada_baseline.json").read_text())
    for r in data:  # simulated: another machine's stamp on this machine's numbers
        r["hardware"] = dict(r["hardware"], cpu="Simulated 16-core CPU (test)", cores=16)
    (dest / "cy_other_machine.json").write_text(json.dumps(data))
    shutil.copy(real_runs / "bo_hogwild.json", dest / "dee_copy_of_bo.json")
    text = (real_runs / "ada_baseline.json").read_text()
    (dest / "ed_truncated.json").write_text(text[: len(text) // 2])
    no_stamp = json.loads(text)
    no_stamp[0].pop("hardware")
    (dest / "fay_no_stamp.json").write_text(json.dumps(no_stamp))
    return dest


def test_collect_merges_real_runs_refuses_bad_files_and_keeps_the_valid(real_runs, tmp_path):
    folder = handed_in(real_runs, tmp_path / "class")
    out, fig = tmp_path / "table.md", tmp_path / "class.png"
    p = costtrain("class", "collect", str(folder), "--out", str(out), "--figure", str(fig))
    assert p.returncode == 2, p.stderr  # some files were refused: a script must notice
    assert "3 of 7 file(s) refused" in p.stderr and "4 valid" in p.stderr
    text = p.stdout
    here = json.loads((real_runs / "ada_baseline.json").read_text())[0]["hardware"]
    assert f"{here['cpu']}, {here['cores']} cores" in text
    assert "Simulated 16-core CPU (test), 16 cores" in text
    # the refused files are named with the reason; the valid ones are all in the table
    assert "dee_copy_of_bo.json: a copy of bo_hogwild.json" in text
    assert "ed_truncated.json: not valid JSON" in text
    assert "fay_no_stamp.json: no machine stamp" in text
    for name in ("ada_baseline.json", "ada_baseline_again.json", "bo_hogwild.json",
                 "cy_other_machine.json"):
        assert name in text.split("Refused files")[0], name
    # the repeated configuration has a range, the winner is named per machine
    assert "(2 runs)" in text and "hogwild 2x1" in text
    assert text.count("| baseline 2 ep |") == 2  # on each machine
    assert out.read_text().strip() and out.read_text().strip() in text
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_winner_is_the_lowest_median_and_noise_is_named(real_runs):
    c = collect(real_runs)
    assert not c.refused and len(c.runs) == 3
    ((job, machine), configs), = c.groups().items()
    # the median as the course defines it (of two runs: their mean), from the files' seconds
    medians = {label: statistics.median(s for r in rs for s in r.seconds)
               for label, rs in configs.items()}
    fastest = min(medians, key=medians.get)
    row = next(line for line in table(c).splitlines() if line.startswith(f"| {machine} |"))
    assert f"| {fastest} (" in row, row  # computed from the files, not assumed
    assert "ran once: no range" in row or "within noise" in row or "ranges apart" in row


def test_a_clean_folder_exits_0_and_writes_nothing_extra(real_runs, tmp_path):
    p = costtrain("class", "collect", str(real_runs))
    assert p.returncode == 0, p.stderr
    assert "0 refused" in p.stdout and "Refused files" not in p.stdout


def test_collecting_needs_no_torch(real_runs):
    code = ("import sys\nfrom costtrain.course.classroom import collect, table\n"
            f"print(len(collect({str(real_runs)!r}).runs))\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert out.stdout.split() == ["3", "False"], out.stderr
