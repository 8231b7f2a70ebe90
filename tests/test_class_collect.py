"""``costtrain class collect``: the class's result files merged into one table and figure.

The files come from real runs of the CLI (tiny jobs). A class has many machines; this test has
one, so one file is copied and its machine stamp (``hardware``) edited to stand for a second,
16-core machine: the numbers in it are this machine's, only the stamp is simulated.
"""
from __future__ import annotations

import json
import os
import re
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


# --- hostile hand-ins: data, never markup, never a way out of the folder -----------------------

def _valid(**changes) -> list[dict]:
    """A result file as `costtrain run --out` writes it (two repeats), with `changes`."""
    from costtrain.result import RunResult
    r = RunResult(method="baseline", config={"dataset": "fashion-mnist", "model": "mlp",
                                             "epochs": 2},
                  setup_seconds=1.0, train_seconds=5.0, eval_seconds=0.5, samples=800,
                  test_accuracy=0.61, label="baseline 2 ep",
                  hardware={"cpu": "Test CPU", "cores": 2})
    d = json.loads(json.dumps(r.to_dict()))
    d.update(changes)
    return [d]


def _text(obj) -> str:
    return json.dumps(obj, allow_nan=True)


# name -> how to plant z_bad.json in the folder (next to a valid a_valid.json), what the refusal says
HOSTILE = {
    "deeply nested": (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "nested more than"),
    "samples Infinity": (lambda p: p.write_text(_text(_valid(samples=float("inf")))), "samples is inf"),
    "samples NaN": (lambda p: p.write_text(_text(_valid(samples=float("nan")))), "samples is nan"),
    "samples text": (lambda p: p.write_text(_text(_valid(samples="abc"))), "samples is 'abc'"),
    "samples of 5000 digits": (lambda p: p.write_text(_text(_valid(samples=12345)).replace(
        "12345", "9" * 5000)), "not a costtrain result"),
    "extra a list": (lambda p: p.write_text(_text(_valid(extra=[1]))), "extra is a list"),
    "extra an empty list": (lambda p: p.write_text(_text(_valid(extra=[]))), "extra is a list"),
    "repeats not objects": (lambda p: p.write_text(_text(_valid(extra={"repeats": [1, 2]}))),
                            "extra.repeats holds"),
    "cores a word": (lambda p: p.write_text(_text(_valid(hardware={"cpu": "X", "cores": "many"}))),
                     "hardware.cores is 'many'"),
    "status an object": (lambda p: p.write_text(_text(_valid(status={"a": 1}))), "status is"),
    "accuracy Infinity": (lambda p: p.write_text(_text(_valid(test_accuracy=float("inf")))),
                          "test_accuracy is inf"),
    "advice rows a number": (lambda p: p.write_text(_text({"recommended": "x", "rows": 5,
                                                           "hardware": {"cpu": "X", "cores": 2}})),
                             "rows is 5"),
    "a FIFO": (lambda p: os.mkfifo(p), "not a regular file"),
    "a link to /dev/zero": (lambda p: os.symlink("/dev/zero", p), "outside the folder"),
    "a link out of the folder": (lambda p: os.symlink("/etc/hostname", p), "outside the folder"),
    "64 MiB": (lambda p: p.write_text('{"pad": "' + "x" * (64 * 2**20) + '"}'), "bytes"),
    "a label of 5000 characters": (lambda p: p.write_text(_text(_valid(label="x" * 5000))),
                                   "label is 5,000 characters"),
}


def _collect(folder: Path, timeout: float = 30) -> tuple[subprocess.CompletedProcess, Path, Path]:
    out, fig = folder.parent / f"{folder.name}-table.md", folder.parent / f"{folder.name}.png"
    cmd = [sys.executable, "-m", "costtrain", "class", "collect", str(folder), "--out",
           str(out), "--figure", str(fig)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    except subprocess.TimeoutExpired:  # it hung (a FIFO, /dev/zero): the case fails alone
        p = subprocess.CompletedProcess(cmd, None, "", f"hung for {timeout} s")
    return p, out, fig


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    """Each hostile file in its own folder next to a valid one, collected (four at a time: each
    run is a fraction of a second of CPU)."""
    from concurrent.futures import ThreadPoolExecutor
    base = tmp_path_factory.mktemp("hostile")

    def one(i_name):
        i, name = i_name
        folder = base / f"case{i}"
        folder.mkdir()
        (folder / "a_valid.json").write_text(json.dumps(_valid()))
        HOSTILE[name][0](folder / "z_bad.json")
        return name, _collect(folder, timeout=120)  # a FIFO or /dev/zero used to hang here
    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, enumerate(HOSTILE)))


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_hand_in_is_refused_by_name_and_the_rest_collected(hostile, name):
    says = HOSTILE[name][1]
    p, out, fig = hostile[name]
    assert "Traceback" not in p.stderr, p.stderr
    assert fig.read_bytes()[:4] == b"\x89PNG" and "a_valid.json" in out.read_text()
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.strip().splitlines() == [
        "costtrain: error: 1 of 2 file(s) refused (listed above); the table holds the 1 valid "
        "one(s)."], p.stderr
    refused = p.stdout.split("Refused files")[1]
    assert "- z_bad.json: " in refused and says in refused, refused


def test_a_link_out_of_the_folder_is_never_opened(tmp_path):
    """A link to a FIFO outside the folder: opening it would block (it used to)."""
    os.mkfifo(tmp_path / "outside.fifo")
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a_valid.json").write_text(json.dumps(_valid()))
    os.symlink(tmp_path / "outside.fifo", folder / "z_bad.json")
    p, _, _ = _collect(folder, timeout=30)
    assert p.returncode == 2 and "outside the folder" in p.stdout, p.stdout + p.stderr


MARKUP = {"label": "<script>alert(1)</script> | x |\n| injected | row",
          "cpu": "<img src=x onerror=alert(1)> [a](javascript:alert(1)) ![i](http://evil/x.png)",
          "math": "$\\undefinedcmd$"}


def test_labels_and_machines_are_text_in_markdown_html_and_the_figure(tmp_path):
    import mistune
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a_valid.json").write_text(json.dumps(_valid()))
    (folder / "b_markup.json").write_text(json.dumps(_valid(
        label=MARKUP["label"], hardware={"cpu": MARKUP["cpu"], "cores": 4})))
    (folder / "c_<b>math<i>.json").write_text(json.dumps(_valid(
        label=MARKUP["math"], hardware={"cpu": MARKUP["math"], "cores": 8})))
    p, out, fig = _collect(folder)
    assert p.returncode == 0, p.stdout + p.stderr
    assert fig.read_bytes()[:4] == b"\x89PNG"  # mathtext used to fail to draw this
    text = out.read_text()
    for bad in ("<script", "<img", "<b>"):
        assert bad not in text, bad
    assert not re.search(r"(?<!\\)\]\(", text), "a link or an image"
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    for block in text.split("\n\n"):  # every row of a table has its header's cells
        rows = [ln for ln in block.splitlines() if ln.startswith("|")]
        if rows:
            cells = {len(re.findall(r"(?<!\\)\|", ln)) for ln in rows}
            assert len(cells) == 1, rows
    assert not any("injected" in ln and ln.startswith("| injected") for ln in lines)
    rendered = mistune.create_markdown(escape=False, plugins=["table"])(text)
    for bad in ("<script", "<img", "href=\"javascript", "src=\"http", "<b>"):
        assert bad not in rendered, bad
    assert "&lt;script&gt;" in rendered and "$\\undefinedcmd$" in rendered
