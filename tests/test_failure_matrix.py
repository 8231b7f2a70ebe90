"""The failure matrix (issue 12): every fault or bad input a user can meet, through the real CLI.

Each case runs ``python -m costtrain ...`` (or a script) in a subprocess on tiny data, injects
its fault where it has one (SIGSTOP or SIGKILL of a worker, SIGTERM / SIGINT / SIGKILL of the
parent), and asserts: the exit code, a one-paragraph message without "Traceback", the state of
the ``--out`` file, the time bound, and that no process outlived the run. Independent cases run
in parallel (a thread pool), so the whole table costs about as much as its slowest cases.
"""
from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import make_idx_dataset, write_idx

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--subset", "300", "--model", "mlp", "--no-progress"]
LONG_HOGWILD = ["--method", "hogwild", "--processes", "2", "--subset", "600", "--model", "mlp",
                "--batch-size", "4", "--epochs-per-process", "2000", "--no-progress"]
LONG_PS = ["--method", "ps", "--workers", "2", "--subset", "600", "--model", "mlp",
           "--batch-size", "4", "--epochs", "2000", "--no-progress"]
LONG_LOCAL = ["--method", "local-sgd", "--workers", "2", "--average-every", "1", "--subset", "600",
              "--model", "mlp", "--batch-size", "4", "--epochs", "2000", "--no-progress"]
PARALLEL = 3
OVER = str(len(os.sched_getaffinity(0)) + 1)  # threads: one more than the cores


@dataclass
class Case:
    name: str
    args: list[str]  # after `python -m costtrain`, with {tmp} and {data} filled in
    code: int
    says: str  # a piece of the stderr message (or stdout for warnings)
    out: str | None = None  # state of {tmp}/out.json afterwards: absent | ok | partial | diverged
    fault: str | None = None  # stop-worker | kill-worker | term | int | int-in-process | kill-parent
    # bound on the wall time (fault to exit where there is a fault): loose enough for a 2-core
    # box at load 30 (start-up alone took 90 s there); a hang is unbounded
    seconds: float = 120.0
    script: str | None = None  # run this Python script instead of the CLI
    setup: str | None = None  # a special --out target to make first: dir | fifo | under-file
    extra: dict = field(default_factory=dict)


CASES = [
    # refused before anything starts (exit 2)
    Case("bad option value", ["run", "--lr", "abc"], 2, "not a number", seconds=10),
    Case("out is a directory", ["run", *TINY, "--out", "{tmp}/outdir"], 2,
         "is a directory", "absent", setup="dir", seconds=20),
    Case("out is a FIFO", ["run", *TINY, "--out", "{tmp}/out.fifo"], 2, "is a FIFO",
         setup="fifo", seconds=20),
    Case("out under a file", ["run", *TINY, "--out", "{tmp}/afile/out.json"], 2,
         "cannot be written", setup="under-file", seconds=20),
    Case("figures not a folder", ["compare", *TINY, "--figures", "{tmp}/afile", "--only",
                                  "baseline 1"], 2, "is not a folder", setup="under-file",
         seconds=20),
    Case("compare --only no match", ["compare", *TINY, "--only", "nosuch"], 2,
         "matches no configuration", seconds=90),
    Case("ps workers beyond cores", ["run", "--method", "ps", "--workers", "1000", *TINY], 2,
         "more than is sensible", seconds=60),
    Case("no training samples", ["run", "--data-dir", "{data}/empty", "--dataset", "mnist",
                                 *TINY[2:]], 2, "no training samples", seconds=60),
    Case("labels outside classes", ["run", "--method", "hogwild", "--data-dir",
                                    "{data}/badlabels", "--dataset", "mnist", *TINY[2:]], 2,
         "labels must be 0..9", seconds=60),
    Case("bit-flipped gz", ["run", "--data-dir", "{data}/flipped", "--dataset", "mnist",
                            *TINY[2:]], 2, "delete it and fetch", seconds=60),
    Case("notebook parameter type", ["notebooks", "--notebooks-dir", str(ROOT / "notebooks"),
                                     "--only", "01", "-p", "subset=abc"], 2,
         "expects int", seconds=60),
    Case("advise budget too small", ["advise", *TINY, "--budget-seconds", "0.5"], 2,
         "nothing to recommend", seconds=90),
    Case("script without main guard", [], 1, 'if __name__ == "__main__":', seconds=120,
         script=textwrap.dedent("""
             from costtrain import train_hogwild
             from costtrain.data import load_dataset
             train_hogwild("mlp", load_dataset(subset=200, test_subset=100), processes=2)
         """)),
    # finished, but not "ok"
    Case("lr 1e30 diverges (baseline)", ["run", *TINY, "--lr", "1e30", "--out", "{tmp}/out.json"],
         4, "smaller learning rate", "diverged", seconds=90),
    Case("lr 1e30 diverges (hogwild)", ["run", "--method", "hogwild", *TINY, "--lr", "1e30",
                                        "--out", "{tmp}/out.json"], 4, "diverged", "diverged",
         seconds=300),
    Case("lr 1e30 diverges (ps), addr beyond loopback",
         ["run", "--method", "ps", "--addr", "0.0.0.0", *TINY, "--lr", "1e30", "--out",
          "{tmp}/out.json"], 4, "diverged", "diverged", seconds=120,
         extra=dict(also="unauthenticated and unencrypted")),
    # warnings, and a run that works
    Case("threads above cores, empty data dir", ["run", *TINY, "--threads", OVER, "--data-dir",
                                                 "{data}/nothing", "--out", "{tmp}/out.json"],
         0, f"costtrain: warning: {OVER} thread(s)", "ok", seconds=90,
         extra=dict(also="no fashion-mnist files in --data-dir")),
    # faults after training began: partial result kept, exit 3
    Case("hogwild worker stopped (SIGSTOP)", ["run", *LONG_HOGWILD, "--timeout", "3", "--out",
                                              "{tmp}/out.json"], 3, "hogwild worker 1 sent nothing",
         "partial", fault="stop-worker", seconds=3 + 60),
    # 20 s: the ranks must also join their group within the timeout, on a busy machine
    Case("ps worker stopped (SIGSTOP)", ["run", *LONG_PS, "--timeout", "20", "--out",
                                         "{tmp}/out.json"], 3, "rank 1", "partial",
         fault="stop-worker", seconds=20 + 60),
    Case("hogwild worker killed, no --out", ["run", *LONG_HOGWILD], 3,
         "results so far were saved to", fault="kill-worker", seconds=60),
    Case("ps worker killed", ["run", *LONG_PS, "--out", "{tmp}/out.json"], 3,
         "worker 1 (rank 1) was killed", "partial", fault="kill-worker", seconds=30),
    Case("local-sgd worker stopped (SIGSTOP)", ["run", *LONG_LOCAL, "--timeout", "20", "--out",
                                                "{tmp}/out.json"], 3, "rank 1", "partial",
         fault="stop-worker", seconds=20 + 60),
    # the parent is told to stop: the workers hand in what they have, it is saved
    Case("SIGTERM to the parent", ["run", *LONG_HOGWILD, "--out", "{tmp}/out.json"], 143,
         "terminated", "partial", fault="term", seconds=60),
    Case("Ctrl-C in the parent", ["run", *LONG_HOGWILD], 130, "results so far were saved to",
         fault="int", seconds=60),
    Case("Ctrl-C during the baseline", ["run", "--subset", "600", "--model", "mlp", "--batch-size",
                                        "4", "--epochs", "2000", "--no-progress", "--out",
                                        "{tmp}/out.json"], 130, "baseline run interrupted after",
         "partial", fault="int-in-process", seconds=30),
    Case("Ctrl-C in the parent (ps)", ["run", *LONG_PS, "--out", "{tmp}/out.json"], 130,
         "interrupted", "partial", fault="int", seconds=60),
    Case("parent killed during start-up", ["run", *LONG_HOGWILD], -9, "", fault="kill-parent",
         seconds=5),
]


# COSTTRAIN_MATRIX='word|other' runs only the cases whose name contains it (while fixing one)
CASES = [c for c in CASES if any(w in c.name for w in os.environ.get("COSTTRAIN_MATRIX", "").split("|"))]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Tiny IDX datasets: no training samples, labels outside the classes, a flipped bit."""
    root = tmp_path_factory.mktemp("matrix-data")
    make_idx_dataset(root / "empty", n_train=0, n_test=20)
    bad = make_idx_dataset(root / "badlabels", n_train=60, n_test=20)
    write_idx(bad / "train-labels-idx1-ubyte.gz", (np.arange(60) % 13).astype(np.uint8))
    flipped = make_idx_dataset(root / "flipped")
    raw = bytearray((flipped / "train-images-idx3-ubyte.gz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (flipped / "train-images-idx3-ubyte.gz").write_bytes(bytes(raw))
    (root / "nothing").mkdir()
    return root


def _workers(proc: psutil.Process) -> list[psutil.Process]:
    """Live spawned workers of `proc`, in start (= rank) order."""
    out = []
    for c in proc.children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(c.cmdline()):
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return sorted(out, key=lambda c: (c.create_time(), c.pid))


def _wait_for_workers(proc: psutil.Process, n: int, started: bool, limit: float = 600) -> list:
    """Wait for `n` workers; with `started`, until each has begun its work (+1 s).

    A worker renames itself ``costtrain.w<rank>`` once its imports are done (see procs).
    """
    end = time.monotonic() + limit
    while time.monotonic() < end:
        ws = _workers(proc)
        try:
            if len(ws) >= n and (not started
                                 or all(w.name().startswith("costtrain.w") for w in ws[:n])):
                if started:
                    time.sleep(1.0)
                return sorted(ws[:n], key=lambda w: w.name()) if started else ws[:n]
        except psutil.NoSuchProcess:
            pass
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    return []


def _inject(case: Case, p: subprocess.Popen) -> tuple[float, list[int]]:
    """Apply the case's fault; return (time of the fault, pids of the workers seen)."""
    proc = psutil.Process(p.pid)
    if case.fault == "int-in-process":  # no workers: strike once it has surely begun training
        end = time.monotonic() + 600
        while time.monotonic() < end and p.poll() is None and sum(proc.cpu_times()[:2]) < 8:
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        return time.monotonic(), [p.pid]
    n = 3 if "ps" in case.args else 2
    distributed = "ps" in case.args or "local-sgd" in case.args
    if case.fault == "kill-parent":
        ws = _wait_for_workers(proc, 2, started=False)
        p.kill()
        return time.monotonic(), [w.pid for w in ws]
    ws = _wait_for_workers(proc, n, started=True)
    assert ws, f"{case.name}: the workers did not start"
    if distributed:  # strike once the victim has joined the group
        end = time.monotonic() + 300
        while time.monotonic() < end and not _connected(ws[1], 2):
            time.sleep(0.1)
        time.sleep(1.0)
    if case.fault in ("stop-worker", "kill-worker"):
        os.kill(ws[1].pid, signal.SIGSTOP if case.fault == "stop-worker" else signal.SIGKILL)
    else:
        p.send_signal(signal.SIGTERM if case.fault == "term" else signal.SIGINT)
    return time.monotonic(), [w.pid for w in ws]


def _connected(p: psutil.Process, n: int) -> bool:
    try:
        return len([c for c in p.net_connections("tcp") if c.status == "ESTABLISHED"]) >= n
    except psutil.NoSuchProcess:
        return False


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for q in pids:
        try:
            if psutil.Process(q).status() != psutil.STATUS_ZOMBIE:
                alive.append(q)
        except psutil.NoSuchProcess:
            pass
    return alive


def _prepare(case: Case, tmp: Path) -> None:
    if case.setup == "dir":
        (tmp / "outdir").mkdir()
    elif case.setup == "fifo":
        os.mkfifo(tmp / "out.fifo")
    elif case.setup == "under-file":
        (tmp / "afile").write_text("a file, not a folder\n")


def run_case(case: Case, tmp: Path, data: Path) -> dict:
    """Run one case; return what the assertions need (or the test's own error)."""
    try:
        return _run_case(case, tmp, data)
    except Exception:
        import traceback
        return dict(crash=traceback.format_exc())


def _run_case(case: Case, tmp: Path, data: Path) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    _prepare(case, tmp)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("COSTTRAIN_DATA", None)
    if case.script is not None:
        (tmp / "script.py").write_text(case.script)
        cmd = [sys.executable, str(tmp / "script.py")]
    else:
        cmd = [sys.executable, "-m", "costtrain",
               *[a.format(tmp=tmp, data=data) for a in case.args]]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    fault_at, pids = t0, []
    try:
        if case.fault:
            fault_at, pids = _inject(case, p)
        out, err = p.communicate(timeout=case.seconds + 600)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    survivors, end = _alive(pids), time.monotonic() + 3.0
    while survivors and time.monotonic() < end:  # children may take a moment to die
        time.sleep(0.05)
        survivors = _alive(pids)
    elapsed = time.monotonic() - fault_at
    for q in survivors:
        os.kill(q, signal.SIGKILL)
    return dict(code=p.returncode, out=out, err=err, elapsed=elapsed, survivors=survivors,
                seen=len(pids))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, data) -> dict[str, tuple[Case, Path, dict]]:
    base = tmp_path_factory.mktemp("matrix")
    t0 = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {c.name: (c, base / f"case{i}", pool.submit(run_case, c, base / f"case{i}", data))
                   for i, c in enumerate(CASES)}
        done = {name: (c, tmp, f.result()) for name, (c, tmp, f) in futures.items()}
    print(f"\nfailure matrix: {len(CASES)} cases in {time.monotonic() - t0:.0f} s "
          f"(load {os.getloadavg()[0]:.1f})")
    return done


def _out_state(path: Path) -> str:
    if not path.exists():
        return "absent"
    statuses = {r["status"] for r in json.loads(path.read_text())}
    return "partial" if "partial" in statuses else statuses.pop()


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_failure_matrix(outcomes, name):
    case, tmp, o = outcomes[name]
    assert "crash" not in o, o.get("crash")
    detail = f"{name}: exit {o['code']}\nstdout:\n{o['out'][-1500:]}\nstderr:\n{o['err'][-3000:]}"
    assert o["code"] == case.code, detail
    if case.fault != "kill-parent":
        assert "Traceback" not in o["err"] or case.script, detail
        assert case.says in o["err"] + o["out"], detail
    if case.code not in (0, -9) and not case.script:
        said = [ln for ln in o["err"].splitlines()
                if ln.startswith("costtrain") and "warning:" not in ln]
        assert len(said) == 1, detail  # one paragraph: one line that says it all
    if case.script:
        assert o["err"].count("Traceback") <= 1, detail  # not the nested spawn tracebacks
    if case.extra.get("also"):
        assert case.extra["also"] in o["err"] + o["out"], detail
    if case.out:
        assert _out_state(tmp / "out.json") == case.out, detail
    if case.fault != "kill-parent":  # after SIGKILL the tracker rightly cleans up and says so
        assert "leaked semaphore" not in o["err"], detail
    assert o["elapsed"] <= case.seconds, f"{name}: took {o['elapsed']:.1f} s\n{detail}"
    if case.fault:
        assert o["seen"], detail
    assert not o["survivors"], f"{name}: processes outlived the run: {o['survivors']}"


def test_the_table_names_what_the_readme_promises():
    text = (ROOT / "README.md").read_text()
    assert "## Failure behaviour" in text
    for words in ("SIGSTOP", "--out", "diverged", "--addr"):
        assert words in text.split("## Failure behaviour")[1], words


def test_argument_errors_come_before_torch_is_imported():
    code = ("import sys\nfrom costtrain import cli\n"
            "try:\n    cli.main(['run', '--lr', 'abc'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------- --out, in process

def _result():
    from costtrain.result import RunResult
    return RunResult(method="baseline", config={"epochs": 1})


def test_out_follows_a_symlink_and_keeps_its_target_a_file(tmp_path):
    from costtrain.result import save_results
    target = tmp_path / "real.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    save_results([_result()], link)
    assert link.is_symlink() and json.loads(target.read_text())[0]["method"] == "baseline"


def test_out_keeps_the_permissions_of_an_existing_file(tmp_path):
    from costtrain.result import save_results
    f = tmp_path / "r.json"
    f.write_text("{}")
    f.chmod(0o644)
    save_results([_result()], f)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    new = tmp_path / "new.json"
    save_results([_result()], new)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


def test_out_refuses_special_files(tmp_path):
    from costtrain.result import OutputPathError, save_results
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="FIFO"):
        save_results([_result()], fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    dev = tmp_path / "full"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 7))  # like /dev/full
    except PermissionError:
        pytest.skip("making a device node needs root")
    with pytest.raises(OutputPathError, match="character device"):
        save_results([_result()], dev)
    assert stat.S_ISCHR(dev.stat().st_mode)


def test_unwritable_out_after_training_falls_back_to_a_named_file(tmp_path, monkeypatch):
    from costtrain import cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    path, problem = cli.save([_result()], str(tmp_path / "afile" / "r.json"), failed=False)
    assert "could not be written" in problem and path.parent == tmp_path
    assert json.loads(path.read_text())[0]["method"] == "baseline"


def test_wrong_model_output_is_caught_in_the_parent(fmnist):
    import torch.nn as nn

    from costtrain import CosttrainError, _testing, train_hogwild
    with pytest.raises(CosttrainError, match="one score per class"):
        train_hogwild(nn.Sequential(nn.Flatten(), nn.Linear(784, 5)), fmnist, processes=2)
    assert not _testing.spawned_children()


def test_gz_with_a_flipped_bit_names_the_file(tmp_path):
    from costtrain.data import CorruptDataError, read_idx
    f = write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8) + 7)
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(CorruptDataError, match="x.gz.*delete it"):
        read_idx(f)
    assert gzip  # the stdlib module the data reader decompresses with
