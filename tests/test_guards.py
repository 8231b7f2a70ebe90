"""The shared guards (costtrain.run.guards) and the refusals that need no training run: memory
cgroup limits read from (fake) cgroup files, /dev/shm for the model, resource exhaustion in
one paragraph, fallback result files that never collide, code-free CIFAR-10 batches."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch.nn as nn

from costtrain.errors import CosttrainError, ResourceError
from costtrain.run import guards as checks

GIB = 2**30


def _files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_cgroup_v2_limit_and_what_is_free_under_it(tmp_path):
    root = _files(tmp_path / "cg", {"memory.max": f"{GIB}\n", "memory.current": f"{GIB // 4}\n",
                                    "memory.stat": f"anon 1\ninactive_file {GIB // 8}\n"})
    proc = _files(tmp_path, {"cgroup": "0::/\n"}) / "cgroup"
    m = checks.cgroup_memory(root, proc)
    assert m.limit == GIB and m.free == GIB - GIB // 4 + GIB // 8
    assert m.source == str(root / "memory.max")


def test_cgroup_v2_takes_the_tightest_ancestor_and_ignores_max(tmp_path):
    root = _files(tmp_path / "cg", {
        "memory.max": "max\n",  # the root: no limit
        "user.slice/memory.max": f"{2 * GIB}\n", "user.slice/memory.current": "0\n",
        "user.slice/job/memory.max": "max\n", "user.slice/job/memory.current": "5\n"})
    proc = _files(tmp_path, {"cgroup": "0::/user.slice/job\n"}) / "cgroup"
    m = checks.cgroup_memory(root, proc)
    assert m.limit == 2 * GIB and m.source.endswith("user.slice/memory.max")


def test_cgroup_v1_limit_below_the_host_path_and_unlimited_root(tmp_path):
    root = _files(tmp_path / "cg", {
        "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
        "memory/docker/abc/memory.limit_in_bytes": f"{GIB}\n",
        "memory/docker/abc/memory.usage_in_bytes": f"{GIB // 2}\n",
        "memory/docker/abc/memory.stat": f"cache 7\ntotal_inactive_file {GIB // 4}\n"})
    proc = _files(tmp_path, {"cgroup": "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n"
                                       "0::/\n"}) / "cgroup"
    m = checks.cgroup_memory(root, proc)
    assert m.limit == GIB and m.free == GIB // 2 + GIB // 4
    assert m.source == str(root / "memory/docker/abc/memory.limit_in_bytes")


def test_no_cgroup_limit_is_none(tmp_path):
    root = _files(tmp_path / "cg", {"memory.max": "max\n",
                                    "memory/memory.limit_in_bytes": "9223372036854771712\n"})
    assert checks.cgroup_memory(root, tmp_path / "no-such-file") is None
    assert checks.cgroup_memory(tmp_path / "nothing-here", tmp_path / "no-such-file") is None


def test_refusal_names_the_cgroup_limit(tmp_path, monkeypatch):
    root = _files(tmp_path / "cg", {"memory.max": f"{GIB}\n", "memory.current": f"{GIB // 2}\n"})
    proc = _files(tmp_path, {"cgroup": "0::/\n"}) / "cgroup"
    read = checks.cgroup_memory
    monkeypatch.setattr(checks, "cgroup_memory", lambda: read(root, proc))
    with pytest.raises(CosttrainError) as e:
        checks.check_processes(2, "hogwild processes", footprint=GIB // 2)
    text = str(e.value)
    assert "memory cgroup" in text and str(root / "memory.max") in text
    assert "1.0 GiB" in text and "at most 0 fit" in text and "--memory" in text
    checks.check_processes(1, footprint=GIB // 4)  # 0.5 GiB free x 0.8 holds one


def test_model_that_does_not_fit_in_dev_shm_is_refused_with_the_fix():
    net = nn.Linear(1000, 1000)  # 4 MB of parameters
    with pytest.raises(CosttrainError, match="--shm-size") as e:
        checks.check_shared_memory(net, free=3 * 2**20)
    assert "needs 5 MB but only 3 MB is free" in str(e.value) and "--subset" not in str(e.value)
    with pytest.raises(CosttrainError, match="--subset"):  # data shared through /dev/shm too
        checks.check_shared_memory(net, data_bytes=100 * 2**20, free=64 * 2**20)
    checks.check_shared_memory(net, free=64 * 2**20)


def test_divergence_is_one_rule_for_losses_and_tensors():
    import torch
    assert checks.diverged(float("nan")) and checks.diverged(float("inf"))
    assert not checks.diverged(1e30) and not checks.diverged(torch.ones(3))
    assert checks.diverged(torch.tensor([1.0, float("inf")]))


@pytest.mark.parametrize("exc, ran_out", [
    (OSError(24, "Too many open files"), "open files"),
    (BlockingIOError(11, "Resource temporarily unavailable"), "processes"),
    (RuntimeError("can't start new thread"), "processes"),
    (RuntimeError("unable to allocate shared memory(shm) for file </torch_1_2_3>: No space "
                  "left on device (28)"), "space"),
    (ImportError("libtorch_cpu.so: failed to map segment from shared object"), "memory"),
    (MemoryError(), "memory")])
def test_resource_exhaustion_is_one_paragraph_that_names_the_limit(exc, ran_out):
    err = ResourceError.describe(exc, "starting 4 worker processes")
    assert isinstance(err, CosttrainError) and f"ran out of {ran_out}" in str(err)
    assert "\n" not in str(err) and "starting 4 worker processes" in str(err)


def test_other_errors_are_not_resource_exhaustion():
    assert ResourceError.describe(OSError(2, "No such file or directory"), "x") is None
    assert ResourceError.describe(RuntimeError("shape mismatch"), "x") is None


def test_fallback_files_never_collide_within_a_second(tmp_path, monkeypatch):
    """Two failures in the same second in one folder: two files, both intact."""
    from costtrain import cli
    from costtrain.result import RunResult, load_results
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_stamp", lambda: "20261201-120000")
    paths = [cli.save([RunResult(method="baseline", config={"epochs": e})], None, failed=True)[0]
             for e in (1, 2)]
    assert paths[0] != paths[1] and all(p.parent == tmp_path for p in paths)
    assert [load_results(p)[0].config["epochs"] for p in paths] == [1, 2]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_cifar_batch_that_runs_code_is_refused_before_it_runs(tmp_path):
    from costtrain.data.datasets import CorruptDataError, load_dataset
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(  # as Python 2 wrote them: protocol 2
            {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3],
             b"batch_label": b"batch", b"filenames": [b"a.png"] * 4}, protocol=2))
    assert load_dataset("cifar10", tmp_path).train_x.shape == (20, 3, 32, 32)
    (folder / "data_batch_3").write_bytes(pickle.dumps(_Evil(tmp_path / "pwned")))
    with pytest.raises(CorruptDataError, match="data_batch_3.*builtins.exec.*refused"):
        load_dataset("cifar10", tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_nothing_unpickles_what_comes_from_files_or_the_network():
    """The package reads pickles only as CIFAR-10 batches, through the restricted unpickler;
    the distributed methods exchange tensors and JSON (no *_object collectives, which pickle)."""
    root = Path(__file__).resolve().parents[1] / "costtrain"
    for path in root.glob("*.py"):
        text = path.read_text()
        for unsafe in ("pickle.load", "torch.load(", "_object(", "Unpickler(f"):
            allowed = path.name == "data.py" and unsafe == "Unpickler(f"
            assert text.count(unsafe) == (text.count("CifarUnpickler(f") if allowed else 0), \
                f"{path.name} uses {unsafe}"


def test_the_thread_warning_names_the_fix_that_applies(monkeypatch):
    import warnings

    from costtrain.run import guards
    monkeypatch.setattr(guards, "num_cores", lambda: 2)

    def said(*args, **kwargs) -> str:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            guards.check_threads(*args, **kwargs)
        return " ".join(str(x.message) for x in w)
    # 4 processes with 1 thread each: fewer threads cannot help, fewer processes can
    text = said(4, 1)
    assert "4 processes x 1 thread(s) = 4 threads on 2 core(s)" in text
    assert "it is the processes that outnumber the cores: use at most 2 processes" in text
    assert "threads <=" not in text
    # 2 processes with 2 threads each: the thread budget is the fix
    assert "use threads <= 1 (the default for 2 processes)" in said(2, 2)
    # every process counts: 2 workers and the server
    assert "3 processes (the server included) x 1 thread(s)" in said(3, 1, also="the server")
    # ...but where only the server is one too many, the advice is a measurement, not a rule
    # (notebook 02, 2026-12-07: 2 workers and the server trained 1.57x faster than 1 worker)
    assert "the workers alone fit the cores" in said(3, 1, also="the server")
    assert "use at most 2 processes" not in said(3, 1, also="the server")
    assert "use at most 2 processes in all (the server included)" in said(4, 1, also="the server")
    assert said(2, 1) == "" and said(1, 2) == ""


def test_threads_far_beyond_the_cores_are_refused(monkeypatch):
    from costtrain.run import guards
    monkeypatch.setattr(guards, "num_cores", lambda: 2)
    with pytest.raises(CosttrainError, match="threads=64 on 2 core.*use threads <= 2"):
        guards.check_threads(1, 64)
    guards.check_threads(1, 8)  # 4 per core: warned, not refused


# --- divergence beyond nan: three rules, one for every method (issue 32) ------------------------

def test_a_loss_far_above_its_start_diverges_a_noisy_one_does_not():
    from costtrain.train.engine import LossLog
    for losses, expected in (([2.2, 2.1, 30.0], True), ([2.2, 2.6, 2.1, 4.0], False),
                             ([2.16, 900.0, 244_972.0], True), ([0.05, 0.4, 1.0], False)):
        log = LossLog(every=1, classes=10)  # every logged mean is one step here
        for x in losses:
            log.add(x, 64, 0.0)
        assert log.diverged is expected, losses
    log = LossLog(every=1, classes=10)
    for x in (2.2, 2.1, 30.0):
        log.add(x, 64, 0.0)
    assert "rose to 30, more than 10x its start (2.3), after 192 samples" in log.reason
    assert checks.loss_exploded(float("nan"), None) and not checks.loss_exploded(9.0, 0.1)


def test_accuracy_at_chance_after_enough_samples_is_diverged():
    from costtrain.result import RunResult

    def run(samples, acc, last_loss):
        return RunResult(method="local-sgd", config={}, samples=samples, test_accuracy=acc,
                         loss_curve={"samples": [samples], "seconds": [1.0], "loss": [last_loss]})
    stuck = checks.judge(run(2000, 0.10, 2.37), classes=10, lr=3.0)
    assert stuck.status == "diverged" and "10.00 %, chance for 10 classes" in stuck.error
    assert "try a smaller learning rate (e.g. --lr 0.3)" in stuck.error
    for ok in (run(2000, 0.17, 2.0), run(400, 0.10, 2.37), run(2000, 0.11, 1.2)):
        assert checks.judge(ok, classes=10).status == "ok"  # learning, too short, or not stuck


@pytest.mark.parametrize("momentum", [1.0, 1.5, float("inf"), -0.1, True])
def test_momentum_of_one_or_more_is_refused_for_every_method_before_training(momentum):
    from costtrain import (train_baseline, train_hogwild, train_local_sgd,
                           train_parameter_server)
    from costtrain.run import _testing
    for train in (train_baseline, train_hogwild, train_parameter_server, train_local_sgd):
        with pytest.raises(CosttrainError, match="momentum"):
            train("mlp", "no-such-dataset", momentum=momentum)  # refused before the data
    assert not _testing.spawned_children()


def test_momentum_on_the_command_line_is_refused_with_the_reason(capsys):
    from costtrain.cli import main
    with pytest.raises(SystemExit) as e:
        main(["run", "--method", "local-sgd", "--momentum", "1.5"])
    assert e.value.code == 2
    assert "momentum 1.5 is >= 1" in capsys.readouterr().err
