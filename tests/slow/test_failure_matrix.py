"""The failure matrix (issues 12 and 24): every fault or bad input a user can meet, through the real CLI.

Each case runs ``python -m costtrain ...`` (or a script) in a subprocess of its own session
(process group) on tiny data, injects its fault where it has one (SIGSTOP or SIGKILL of a
worker; SIGTERM / SIGINT / SIGHUP / SIGKILL of the parent, or SIGTERM / SIGHUP to the whole
group as ``timeout``, systemd, Slurm and a closed terminal send it; at a moment named by the
run's own output, e.g. its final evaluation), under resource limits where it has them (open
files, processes, address space), and asserts: the exit code, a one-paragraph message without
"Traceback", the state of the ``--out`` file (and the samples and curves it keeps), the time
bound, and that no process outlived the run. Cases marked ``shm`` run in a private mount
namespace with their own ``/dev/shm`` (a real 64 MB one like Docker's, or a roomy one), which
must be empty afterwards: no ``torch_*`` file, no ``sem.mp-*`` semaphore left by any ending
(needs root and ``unshare``; skipped elsewhere). Independent cases run in parallel (a thread
pool), so the whole table costs about as much as its slowest cases; each case's test waits for
its own case, so a case that hangs fails by its name (pytest-timeout) and its processes are
killed.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import psutil
import pytest
from conftest import make_idx_dataset, write_idx
from costtrain.run import _testing

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--subset", "300", "--model", "mlp", "--no-progress"]
LONG_HOGWILD = ["--method", "hogwild", "--processes", "2", "--subset", "600", "--model", "mlp",
                "--batch-size", "4", "--epochs-per-process", "2000", "--no-progress"]
LONG_PS = ["--method", "ps", "--workers", "2", "--subset", "600", "--model", "mlp",
           "--batch-size", "4", "--epochs", "2000", "--no-progress"]
LONG_LOCAL = ["--method", "local-sgd", "--workers", "2", "--average-every", "1", "--subset", "600",
              "--model", "mlp", "--batch-size", "4", "--epochs", "2000", "--no-progress"]
TRAINED = r"\| *[1-9][0-9.]*[kM]?/"  # a progress bar that counts trained samples
# the final evaluation of a tiny training run on a large test set (30,000 images): seconds
EVAL = ["--dataset", "mnist", "--data-dir", "{data}/bigtest", "--model", "simple",
        "--batch-size", "64", "--out", "{tmp}/out.json"]
PARALLEL = 3
# the process of each case while it runs (by case name): a test stopped while waiting kills its own
RUNNING: dict[str, subprocess.Popen] = {}
CORES = len(os.sched_getaffinity(0))
OVER = str(CORES + 1)  # threads: one more than the cores
ROOT_TOOLS = (os.geteuid() == 0 and shutil.which("unshare") is not None
              and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0)
# a network namespace of its own (only a loopback, and that one down): root, or user namespaces
NETNS = next((cmd for cmd in (["unshare", "-n"], ["unshare", "-rn"])
              if shutil.which("unshare") and subprocess.run(
                  [*cmd, "true"], capture_output=True).returncode == 0), None)
# Runs the CLI with a private /dev/shm of the given size; afterwards waits (the resource
# tracker unlinks a killed parent's semaphores) and lists what is left there.
SHM_WRAPPER = """
import os, signal, subprocess, sys, time
size, left, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", "/dev/shm"], check=True)
for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # the group's signals are the CLI's
    signal.signal(sig, lambda *a: None)
rc = subprocess.Popen(cmd).wait()
end = time.monotonic() + 20
while os.listdir("/dev/shm") and time.monotonic() < end:
    time.sleep(0.1)
open(left, "w").write("\\n".join(sorted(os.listdir("/dev/shm"))))
if rc < 0:  # end as the CLI ended: by its signal
    if -rc != signal.SIGKILL:
        signal.signal(-rc, signal.SIG_DFL)
    os.kill(os.getpid(), -rc)
sys.exit(rc)
"""


@dataclass
class Case:
    name: str
    args: list[str]  # after `python -m costtrain`, with {tmp} and {data} filled in
    code: int
    says: str  # a piece of the stderr message (or stdout for warnings)
    out: str | None = None  # state of {tmp}/out.json afterwards: absent | ok | partial | diverged
    # stop-worker | kill-worker | term | int | hup | int-in-process | kill-parent (during
    # start-up) | kill-parent-training
    fault: str | None = None
    # bound on the wall time (fault to exit where there is a fault): loose enough for a 2-core
    # box at load 30 (start-up alone took 90 s there); a hang is unbounded
    seconds: float = 120.0
    script: str | None = None  # run this Python script instead of the CLI
    # something to make first: dir | fifo | under-file (a special --out target), evil-cifar
    # (./data holds a CIFAR-10 batch that runs code when unpickled), ro-notebooks
    setup: str | None = None
    group: bool = False  # the fault's signal goes to the whole process group
    strike: str | None = None  # strike when the run prints this (a regex; then wait `after` s)
    after: float = 0.0
    shm: str | None = None  # run in a private /dev/shm of this size; it must end empty
    limits: dict = field(default_factory=dict)  # NOFILE / AS: setrlimit; NPROC: prlimit
    trained: int | None = None  # --out keeps samples and curves: exactly this many; -1: some
    extra: dict = field(default_factory=dict)
    module: str = "costtrain"  # python -m MODULE ARGS (e.g. costtrain.course.handout)
    stdout: str | None = None  # head (`| head -1`: read one line, close) | full (/dev/full)
    netns: bool = False  # in a network namespace of its own: no usable loopback


# Faults planted inside the real CLI (and its worker processes): `setup="plant:NAME"` writes
# PLANT_HEADER + PLANTS[NAME] as {tmp}/plant/sitecustomize.py, first on PYTHONPATH, so every
# process of the run imports it at start. after_import(module, fn) runs fn(module) right after
# that module's own code, before anything imported from it.
PLANT_HEADER = """
import importlib.abc, multiprocessing, os, sys
_hooks = {}
def after_import(name, fn):
    _hooks[name] = fn
class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in _hooks:
            return None
        fn = _hooks.pop(name)
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            fn(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Finder())
MAIN = multiprocessing.current_process().name == "MainProcess"
# torch's own words when an allocation fails (an address-space or container limit)
OOM = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
       "memory: you tried to allocate 36864000 bytes. Error code 12 (Cannot allocate memory)")
"""
PLANTS = {
    # the final evaluation (10,000 test images) cannot get its memory, in any batch size
    "oom-final-eval": """
def plant(engine):
    real = engine._evaluate
    def evaluate(net, x, y, batch_size, device):
        if MAIN and len(y) >= 10_000:
            raise RuntimeError(OOM)
        return real(net, x, y, batch_size, device)
    engine._evaluate = evaluate
after_import("costtrain.train.engine", plant)
""",
    # ... only in batches of 1,000: the retry with smaller batches succeeds
    "oom-final-eval-big-batch": """
def plant(engine):
    real = engine._evaluate
    def evaluate(net, x, y, batch_size, device):
        if MAIN and len(y) >= 10_000 and batch_size > 250:
            raise RuntimeError(OOM)
        return real(net, x, y, batch_size, device)
    engine._evaluate = evaluate
after_import("costtrain.train.engine", plant)
""",
    # the baseline's 4th training step cannot get its memory
    "oom-train": """
def plant(engine):
    real, calls = engine.loss_fn, [0]
    def loss_fn(out, target):
        calls[0] += 1
        if MAIN and calls[0] > 3:
            raise RuntimeError(OOM)
        return real(out, target)
    engine.loss_fn = loss_fn
after_import("costtrain.train.engine", plant)
""",
    # oneDNN's words when it cannot get memory for a kernel, in the one-batch dry run
    "onednn-dry-run": """
def plant(models):
    def forward(self, x):
        raise RuntimeError("could not create a primitive")
    models.MLP.forward = forward
after_import("costtrain.data.models", plant)
""",
    # worker 1 of the parameter server (or local SGD) runs out of memory at its 2nd step (of 3)
    "oom-rank-1": """
def plant(module):
    real_work = getattr(module, "work", None) or module.train_rank
    def rank_1(rank, cfg, ds, net, *rest):
        if rank == 1:
            real, calls = module.loss_fn, [0]
            def loss_fn(out, target):
                calls[0] += 1
                if calls[0] > 1:
                    raise RuntimeError(OOM)
                return real(out, target)
            module.loss_fn = loss_fn
        return real_work(rank, cfg, ds, net, *rest)
    setattr(module, "work" if hasattr(module, "work") else "train_rank", rank_1)
after_import("costtrain.train.ps_ranks", plant)
after_import("costtrain.train.local_sgd", plant)
""",
}


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
             from costtrain.data.datasets import load_dataset
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
    # issue 24: containers. Docker's 64 MB /dev/shm holds the model, not the full dataset
    Case("hogwild, full dataset, 64 MB /dev/shm", ["run", "--method", "hogwild", "--processes",
                                                   "2", "--sharding", "shard", "--model", "mlp",
                                                   "--batch-size", "256", "--no-progress",
                                                   "--out", "{tmp}/out.json"],
         0, "hogwild 2x1", "ok", shm="64m", seconds=300),
    Case("parent killed while training, 64 MB /dev/shm", ["run", *LONG_HOGWILD], -9, "",
         fault="kill-parent-training", shm="64m", seconds=30),
    # issue 24: what `timeout`, systemd, Slurm (SIGTERM) and a closed terminal (SIGHUP) send:
    # the whole process group. The workers hand in; the partial run keeps what they trained.
    *[Case(f"{sig} to the group ({method})",
           ["run", *[a for a in long if a != "--no-progress"], "--out", "{tmp}/out.json"],
           code, what, "partial", fault=sig.lower(), group=True, shm="1g", trained=-1,
           strike=TRAINED, seconds=60)
      for sig, code, what in (("TERM", 143, "terminated (SIGTERM)"),
                              ("HUP", 129, "hung up (SIGHUP)"))
      for method, long in (("baseline", ["--subset", "600", "--model", "mlp", "--batch-size", "4",
                                         "--epochs", "2000"]),
                           ("hogwild", LONG_HOGWILD), ("ps", LONG_PS),
                           ("local-sgd", LONG_LOCAL))],
    # ... and during the final evaluation: the finished training is kept (not evaluated, for the
    # methods whose parent evaluates; the ranks of the others finish it within their grace)
    *[Case(f"TERM to the group in the final evaluation ({method})", ["run", *how, *EVAL],
           143, "terminated (SIGTERM)", "partial", fault="term", group=True, trained=n,
           strike="evaluating on", seconds=60,
           extra=dict(also="final evaluation") if method in ("baseline", "hogwild") else {})
      for method, how, n in (("baseline", ["--subset", "128"], 128),
                             ("hogwild", ["--method", "hogwild", "--processes", "2",
                                          "--subset", "128"], 256),
                             ("ps", ["--method", "ps", "--workers", "2", "--subset", "128"], 128),
                             ("local-sgd", ["--method", "local-sgd", "--workers", "2",
                                            "--subset", "128"], 128))],
    # issue 24: guards for every method
    Case("lr 1e30 diverges (local-sgd)", ["run", "--method", "local-sgd", *TINY, "--lr", "1e30",
                                          "--out", "{tmp}/out.json"], 4, "diverged", "diverged",
         seconds=120),
    Case("local-sgd workers beyond cores", ["run", "--method", "local-sgd", "--workers",
                                            str(4 * CORES + 1), *TINY], 2,
         "more than is sensible", seconds=60),
    # issue 24: the system runs out of something: one paragraph, exit 2
    Case("ulimit -n 40, ps 4 workers", ["run", "--method", "ps", "--workers", "4", *TINY], 2,
         "ran out of open files", limits=dict(NOFILE=40), seconds=60),
    Case("process limit, ps 4 workers", ["run", "--method", "ps", "--workers", "4", *TINY], 2,
         "ran out of processes", limits=dict(NPROC=4), seconds=60),
    Case("address space (ulimit -v 2 GB)", ["run", "--method", "hogwild", *TINY], 2,
         "ran out of memory", limits=dict(AS=2 * 10**9), seconds=60),
    Case("notebooks in a read-only checkout", ["notebooks", "--notebooks-dir", "{tmp}/ro/notebooks",
                                               "--only", "01", "--ci"], 2,
         "cannot be written", setup="ro-notebooks", seconds=60, extra=dict(also="--out-dir")),
    # issue 24: no code from data files
    Case("CIFAR-10 batch that runs code", ["run", "--dataset", "cifar10", "--model", "cnn",
                                           "--no-progress"], 2, "not a readable CIFAR-10 batch",
         setup="evil-cifar", seconds=60, extra=dict(also="refused", never="pwned")),
    # issue 32: nothing computed is lost to the terminal: saved first, then printed
    Case("stdout closed (| head -1), hogwild", ["run", *TINY, "--method", "hogwild", "--out",
                                               "{tmp}/out.json"], 0,
         "costtrain: warning: stdout could not be written (Broken pipe)", "ok", stdout="head",
         seconds=120),
    Case("stdout closed (| head -1), compare", ["compare", *TINY, "--only", "baseline 1",
                                               "baseline 2", "--figures", "", "--out",
                                               "{tmp}/out.json"], 0,
         "stdout could not be written (Broken pipe)", "ok", stdout="head", seconds=180,
         extra=dict(results=2)),
    Case("stdout closed, no --out", ["run", *TINY], 5, "the results were saved to",
         stdout="head", seconds=120),
    Case("stdout is /dev/full", ["run", *TINY, "--out", "{tmp}/out.json"], 0,
         "stdout could not be written (No space left on device)", "ok", stdout="full",
         seconds=120, extra=dict(not_said="/dev/shm")),
    # issue 32: out of memory is named as such; what was trained is kept (exit 3)
    Case("out of memory in the final evaluation (baseline)", ["run", *TINY, "--out",
                                                              "{tmp}/out.json"], 3,
         "ran out of memory while evaluating the trained model", "partial", trained=300,
         setup="plant:oom-final-eval", seconds=120, extra=dict(also="`ulimit -v`")),
    Case("out of memory in the final evaluation (hogwild)", ["run", "--method", "hogwild",
                                                             *TINY, "--out", "{tmp}/out.json"],
         3, "ran out of memory while evaluating the trained model", "partial", trained=600,
         setup="plant:oom-final-eval", seconds=120),
    Case("final evaluation retries smaller batches", ["run", *TINY, "--out", "{tmp}/out.json"],
         0, "test accuracy", "ok", setup="plant:oom-final-eval-big-batch", seconds=120),
    Case("out of memory while training (baseline)", ["run", *TINY, "--out", "{tmp}/out.json"], 3,
         "ran out of memory while training (after 192 of 300 samples)", "partial", trained=192,
         setup="plant:oom-train", seconds=120),
    Case("out of memory in the dry run is not a model mismatch", ["run", *TINY], 2,
         "ran out of memory while the one-batch dry run", setup="plant:onednn-dry-run",
         seconds=120, extra=dict(not_said="cannot take a batch")),
    Case("a ps worker runs out of memory", ["run", "--method", "ps", *TINY, "--out",
                                            "{tmp}/out.json"], 3,
         "worker 1 (rank 1): the system ran out of memory while worker 1 was computing",
         "partial", setup="plant:oom-rank-1", seconds=120, extra=dict(not_said="Connection")),
    Case("a local-sgd worker runs out of memory", ["run", "--method", "local-sgd", *TINY,
                                                   "--out", "{tmp}/out.json"], 3,
         "the system ran out of memory while worker 1 was computing a gradient", "partial",
         setup="plant:oom-rank-1", seconds=120),
    Case("address space (ulimit -v 2 GB), baseline", ["run", *TINY], 2, "ran out of memory",
         limits=dict(AS=2 * 10**9), seconds=60, extra=dict(also="`ulimit -v`")),
    # issue 32: training that failed never ends ok
    *[Case(f"momentum 1.5 refused ({method})", ["run", "--method", method, *TINY,
                                                 "--momentum", "1.5"], 2,
           "momentum 1.5 is >= 1", seconds=10) for method in ("baseline", "hogwild", "ps",
                                                             "local-sgd")],
    *[Case(f"lr 3 ends diverged ({method})", ["run", "--method", method, "--subset", "2000",
                                               "--lr", "3", "--no-progress", "--out",
                                               "{tmp}/out.json"], 4,
           "try a smaller learning rate", "diverged", seconds=300)
      for method in ("baseline", "hogwild", "ps", "local-sgd")],
    Case("a loss 10x its start diverges (mlp, momentum 0.99)",
         ["run", "--model", "mlp", "--subset", "2000", "--lr", "0.5", "--momentum", "0.99",
          "--no-progress", "--out", "{tmp}/out.json"], 4, "more than 10x its start",
         "diverged", seconds=300),
    Case("threads far beyond the cores refused", ["run", *TINY, "--threads",
                                                  str(4 * CORES + 1)], 2,
         "more than 4 threads per core", seconds=10, extra=dict(not_said="data:")),
    Case("stale gradients dropped are not trained", ["run", "--method", "ps", "--mode", "async",
                                                     "--max-staleness", "0", "--model", "mlp",
                                                     "--subset", "2000", "--no-progress",
                                                     "--out", "{tmp}/out.json"], 0,
         "not counted as trained", "ok", seconds=180, extra=dict(dropped=True)),
    # issue 32: a machine without a usable loopback (a container with --network none)
    *[Case(f"no loopback ({method})", ["run", "--method", method, *TINY], 2,
           "127.0.0.1 is not reachable on this machine", netns=True, seconds=15)
      for method in ("ps", "local-sgd")],
    Case("no loopback, hogwild needs none", ["run", "--method", "hogwild", *TINY], 0,
         "test accuracy", netns=True, seconds=120),
    # issue 32: the handout's target, refused in one sentence before any page
    Case("handout into a file", ["{tmp}/afile", "--root", str(ROOT)], 2, "is not a folder",
         module="costtrain.course.handout", setup="under-file", seconds=30),
    Case("handout under a file", ["{tmp}/afile/sub", "--root", str(ROOT)], 2,
         "Not a directory", module="costtrain.course.handout", setup="under-file", seconds=30),
    Case("handout into a dangling symlink", ["{tmp}/dangling", "--root", str(ROOT)], 2,
         "which does not exist", module="costtrain.course.handout", setup="dangling",
         seconds=30),
    Case("handout into a read-only folder", ["{tmp}/ro/out", "--root", str(ROOT)], 2,
         "Read-only file system", module="costtrain.course.handout", setup="ro-dir",
         seconds=30),
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
    make_idx_dataset(root / "bigtest", n_train=128, n_test=30_000, gz=False)
    return root


def _workers(proc: psutil.Process) -> list[psutil.Process]:
    """Live workers of `proc` (spawned, or forked by its fork server), in start (= rank) order."""
    out = []
    for c in proc.children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE and _testing.is_worker(c):
                out.append(c)
        except (psutil.NoSuchProcess, AttributeError):
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


def _cli_process(p: subprocess.Popen, limit: float = 120,
                 case_module: str = "costtrain") -> psutil.Process:
    """The process that runs ``python -m costtrain``: `p`, or the child of a wrapper."""
    proc, end = psutil.Process(p.pid), time.monotonic() + limit
    while time.monotonic() < end and p.poll() is None:
        for q in [proc, *proc.children(recursive=True)]:
            try:
                if q.cmdline()[1:3] == ["-m", case_module]:
                    return q
            except (psutil.NoSuchProcess, IndexError):
                pass
        time.sleep(0.05)
    return proc


def _inject(case: Case, p: subprocess.Popen, output: "_Output") -> tuple[float, list[int]]:
    """Apply the case's fault; return (time of the fault, pids of the workers seen)."""
    proc, cli = psutil.Process(p.pid), _cli_process(p)
    sig = {"term": signal.SIGTERM, "int": signal.SIGINT, "hup": signal.SIGHUP}.get(case.fault)

    def hit() -> float:
        if case.group:  # what timeout, systemd, Slurm and a closed terminal do
            os.killpg(p.pid, sig)
        else:
            cli.send_signal(sig)
        return time.monotonic()
    if case.strike:  # a moment the run names itself (it shows its progress for this)
        assert output.wait_for(case.strike, 600), f"{case.name}: never printed {case.strike!r}"
        time.sleep(case.after)
        return hit(), [cli.pid, *(w.pid for w in _workers(proc))]
    if case.fault == "int-in-process":  # no workers: strike once it has surely begun training
        end = time.monotonic() + 600
        while time.monotonic() < end and p.poll() is None and sum(cli.cpu_times()[:2]) < 8:
            time.sleep(0.1)
        cli.send_signal(signal.SIGINT)
        return time.monotonic(), [cli.pid]
    n = 3 if "ps" in case.args else 2
    distributed = "ps" in case.args or "local-sgd" in case.args
    if case.fault == "kill-parent":
        ws = _wait_for_workers(proc, 2, started=False)
        cli.kill()
        return time.monotonic(), [w.pid for w in ws]
    ws = _wait_for_workers(proc, n, started=True)
    assert ws, f"{case.name}: the workers did not start"
    if distributed:  # strike once the victim has joined the group
        end = time.monotonic() + 300
        while time.monotonic() < end and not _connected(ws[1], 2):
            time.sleep(0.1)
        time.sleep(1.0)
    if case.fault == "kill-parent-training":
        cli.kill()
    elif case.fault in ("stop-worker", "kill-worker"):
        os.kill(ws[1].pid, signal.SIGSTOP if case.fault == "stop-worker" else signal.SIGKILL)
    else:
        hit()
    return time.monotonic(), [w.pid for w in ws]


class _Output:
    """The run's stdout and stderr, read as they come (a case may strike at a line)."""

    def __init__(self, p: subprocess.Popen) -> None:
        self.chunks: dict[str, list[bytes]] = {"out": [], "err": []}
        self.news = threading.Condition()
        self.threads = [threading.Thread(target=self._read, args=(f, key), daemon=True)
                        for f, key in ((p.stdout, "out"), (p.stderr, "err"))]
        for t in self.threads:
            t.start()

    def _read(self, f, key: str) -> None:
        while chunk := os.read(f.fileno(), 65536):
            with self.news:
                self.chunks[key].append(chunk)
                self.news.notify_all()

    def text(self, key: str) -> str:
        with self.news:
            return b"".join(self.chunks[key]).decode(errors="replace")

    def wait_for(self, marker: str, limit: float) -> bool:
        """Until `marker` was printed (True), or `limit` s passed or the output ended (False)."""
        end = time.monotonic() + limit
        with self.news:
            while not re.search(marker, b"".join(self.chunks["err"] + self.chunks["out"])
                                .decode(errors="replace")):
                if time.monotonic() >= end or not any(t.is_alive() for t in self.threads):
                    return False
                self.news.wait(0.5)
        return True

    def join(self, limit: float) -> None:
        for t in self.threads:
            t.join(limit)


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


class _Evil:
    """Unpickling this runs code: it writes the file `marker` (a planted CIFAR-10 batch)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def _prepare(case: Case, tmp: Path) -> list[str]:
    """Make what the case needs; return a command prefix (a wrapper) if it needs one."""
    if case.setup == "dir":
        (tmp / "outdir").mkdir()
    elif case.setup == "fifo":
        os.mkfifo(tmp / "out.fifo")
    elif case.setup == "under-file":
        (tmp / "afile").write_text("a file, not a folder\n")
    elif case.setup == "evil-cifar":  # found in ./data, the default place to look
        folder = tmp / "data" / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (folder / name).write_bytes(pickle.dumps(_Evil(tmp / case.extra["never"])))
    elif case.setup == "dangling":
        (tmp / "dangling").symlink_to(tmp / "nowhere" / "x")
    elif case.setup and case.setup.startswith("plant:"):
        (tmp / "plant").mkdir()
        (tmp / "plant" / "sitecustomize.py").write_text(
            PLANT_HEADER + PLANTS[case.setup.removeprefix("plant:")])
    elif case.setup == "ro-dir":  # a read-only bind mount (root writes through mode bits)
        (tmp / "ro").mkdir()
        if os.geteuid() != 0:
            (tmp / "ro").chmod(0o555)
        elif ROOT_TOOLS:
            return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && '
                    'mount -o remount,ro,bind "$0" "$0" && exec "$@"', str(tmp / "ro")]
    elif case.setup == "ro-notebooks":
        ro = tmp / "ro" / "notebooks"
        ro.mkdir(parents=True)
        for nb in (ROOT / "notebooks").glob("01_*.ipynb"):
            shutil.copy(nb, ro / nb.name)
        if os.geteuid() != 0:  # root writes anyway: a read-only bind mount instead
            for q in (ro, ro.parent):
                q.chmod(0o555)
        elif ROOT_TOOLS:
            return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && '
                    'mount -o remount,ro,bind "$0" "$0" && exec "$@"', str(ro.parent)]
    return []


def _needs(case: Case) -> str | None:
    """Why the case cannot run on this machine, or None."""
    if case.netns and not NETNS:
        return "needs a network namespace of its own (unshare -n, or -rn without root)"
    if (case.shm or case.setup in ("ro-notebooks", "ro-dir")) and os.geteuid() == 0 \
            and not ROOT_TOOLS:
        return "needs a private mount namespace (unshare -m)"
    if case.shm and os.geteuid() != 0:
        return "needs root for a private /dev/shm"
    if "NPROC" in case.limits and not (os.geteuid() == 0 and shutil.which("setpriv")
                                       and shutil.which("prlimit")):
        return "a process limit is tested as root (setpriv, prlimit): the user's own count"
    return None


def _set_limits(limits: dict):
    """preexec_fn: the CLI process as a user's shell starts it, plus the case's resource limits
    (NOFILE, AS). A suite started in the background (``make test &``, nohup) inherits SIGINT
    ignored, and so would the CLI: Ctrl-C gets its default action back, as in a terminal."""
    def apply() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for name, value in limits.items():
            if name != "NPROC":
                resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))
    return apply


def run_case(case: Case, tmp: Path, data: Path) -> dict:
    """Run one case; return what the assertions need (or the test's own error)."""
    try:
        return _run_case(case, tmp, data)
    except Exception:
        import traceback
        return dict(crash=traceback.format_exc())


def _run_case(case: Case, tmp: Path, data: Path) -> dict:
    if _needs(case):
        return dict(skip=_needs(case))
    tmp.mkdir(parents=True, exist_ok=True)
    prefix = _prepare(case, tmp)
    plant = [str(tmp / "plant")] if (tmp / "plant").is_dir() else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [*plant, str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("COSTTRAIN_DATA", None)
    if case.script is not None:
        (tmp / "script.py").write_text(case.script)
        cmd = [sys.executable, str(tmp / "script.py")]
    else:
        cmd = [sys.executable, "-m", case.module,
               *[a.format(tmp=tmp, data=data) for a in case.args]]
    if case.stdout == "head":  # a common shell habit: the first line, then the pipe closes
        cmd = ["bash", "-c", '"$@" | head -1; exit "${PIPESTATUS[0]}"', "matrix", *cmd]
    elif case.stdout == "full":
        cmd = ["bash", "-c", 'exec "$@" > /dev/full', "matrix", *cmd]
    if case.netns:
        prefix = [*NETNS, *prefix]
    if case.shm:
        (tmp / "shm.py").write_text(SHM_WRAPPER)
        prefix = ["unshare", "-m", sys.executable, str(tmp / "shm.py"), case.shm,
                  str(tmp / "shm-left.txt")]
    if "NPROC" in case.limits:  # root is exempt: count as another user, without the capability
        prefix = ["setpriv", "--ruid=65534", "--bounding-set=-sys_resource,-sys_admin",
                  "prlimit", f"--nproc={case.limits['NPROC']}"]
    t0 = time.monotonic()
    p = subprocess.Popen(prefix + cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         preexec_fn=_set_limits(case.limits))
    RUNNING[case.name] = p
    output = _Output(p)
    fault_at, pids = t0, []
    try:
        if case.fault:
            fault_at, pids = _inject(case, p, output)
        p.wait(timeout=case.seconds + 600)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        output.join(60)
    survivors, end = _alive(pids), time.monotonic() + 3.0
    while survivors and time.monotonic() < end:  # children may take a moment to die
        time.sleep(0.05)
        survivors = _alive(pids)
    elapsed = time.monotonic() - fault_at
    for q in survivors:
        os.kill(q, signal.SIGKILL)
    left = (tmp / "shm-left.txt").read_text() if case.shm else None
    return dict(code=p.returncode, out=output.text("out"), err=output.text("err"),
                elapsed=elapsed, survivors=survivors, seen=len(pids), left=left)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, data) -> Iterator[dict[str, tuple[Case, Path, Future]]]:
    """Every case started on PARALLEL lanes, in the table's order; each test waits for its own."""
    base = tmp_path_factory.mktemp("matrix")
    t0 = time.monotonic()
    pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="matrix")
    try:
        yield {c.name: (c, base / f"case{i}", pool.submit(run_case, c, base / f"case{i}", data))
               for i, c in enumerate(CASES)}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    print(f"\nfailure matrix: {len(CASES)} cases in {time.monotonic() - t0:.0f} s "
          f"(load {os.getloadavg()[0]:.1f})")


def _outcome(case: Case, future: Future) -> dict:
    """The case's outcome. If its test is stopped while it waits (pytest-timeout: the case hangs;
    Ctrl-C), the case's processes are killed so that they do not outlive it, and a timeout fails
    with what the case printed."""
    try:
        return future.result()
    except BaseException as stop:
        p = RUNNING.get(case.name)
        if not future.done() and p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        if not isinstance(stop, pytest.fail.Exception):  # Ctrl-C, or the test's own error
            raise
        try:
            o = future.result(timeout=30)
        except Exception:
            raise stop from None
        pytest.fail(f"{case.name}: still running when its test timed out ({stop}); killed "
                    f"(exit {o.get('code')}).\nstdout:\n{o.get('out', '')[-1500:]}\n"
                    f"stderr:\n{o.get('err', '')[-3000:]}")


def _out_state(path: Path) -> str:
    if not path.exists():
        return "absent"
    statuses = {r["status"] for r in json.loads(path.read_text())}
    return "partial" if "partial" in statuses else statuses.pop()


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_failure_matrix(outcomes, name):
    case, tmp, future = outcomes[name]
    o = _outcome(case, future)
    assert "crash" not in o, o.get("crash")
    if "skip" in o:
        pytest.skip(o["skip"])
    detail = f"{name}: exit {o['code']}\nstdout:\n{o['out'][-1500:]}\nstderr:\n{o['err'][-3000:]}"
    assert o["code"] == case.code, detail
    killed = case.fault in ("kill-parent", "kill-parent-training")
    if not killed:
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
    if case.trained is not None:  # the samples and curves actually trained were kept
        r = json.loads((tmp / "out.json").read_text())[0]
        assert r["samples"] == case.trained if case.trained > 0 else r["samples"] > 0, detail
        assert r["loss_curve"]["samples"] and r["loss_curve"]["samples"][-1] <= r["samples"]
        assert r["worker_curves"] or r["method"] == "baseline", detail
    if case.extra.get("never"):
        assert not (tmp / case.extra["never"]).exists(), f"{name}: the planted code ran"
    if case.extra.get("not_said"):
        assert case.extra["not_said"] not in o["err"] + o["out"], detail
    if case.extra.get("results"):  # every configuration was kept, not only the first
        assert len(json.loads((tmp / "out.json").read_text())) == case.extra["results"], detail
    if case.extra.get("dropped"):  # the drops are reported, and not counted as trained
        r = json.loads((tmp / "out.json").read_text())[0]
        st = r["extra"]["staleness"]
        assert st["dropped"] > 0 and r["samples"] == 2000 - st["dropped_samples"], detail
    if case.shm:  # no torch_* file, no sem.mp-* semaphore left in the private /dev/shm
        assert o["left"] == "", f"{name}: left in /dev/shm: {o['left']}\n{detail}"
    if not killed:  # after SIGKILL the tracker rightly cleans up and says so
        assert "leaked semaphore" not in o["err"], detail
    assert o["elapsed"] <= case.seconds, f"{name}: took {o['elapsed']:.1f} s\n{detail}"
    if case.fault:
        assert o["seen"], detail
    assert not o["survivors"], f"{name}: processes outlived the run: {o['survivors']}"


def test_the_table_names_what_the_docs_promise():
    text = (ROOT / "docs" / "command-line.md").read_text()
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

    from costtrain import CosttrainError, train_hogwild
    from costtrain.run import _testing
    with pytest.raises(CosttrainError, match="one score per class"):
        train_hogwild(nn.Sequential(nn.Flatten(), nn.Linear(784, 5)), fmnist, processes=2)
    assert not _testing.spawned_children()


def test_gz_with_a_flipped_bit_names_the_file(tmp_path):
    from costtrain.data.datasets import CorruptDataError, read_idx
    f = write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8) + 7)
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(CorruptDataError, match="x.gz.*delete it"):
        read_idx(f)
    assert gzip  # the stdlib module the data reader decompresses with
