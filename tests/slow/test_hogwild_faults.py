"""Hogwild! faults with real processes: a worker raises, dies, times out, or Ctrl-C in the parent."""
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from costtrain.hogwild import train_hogwild
from costtrain.run import _testing
from costtrain.run.procs import WorkerError

_children = _testing.spawned_children


def test_worker_that_raises_is_named_with_its_traceback_and_others_stop(fmnist):
    with pytest.raises(WorkerError) as e:
        train_hogwild(_testing.FaultyNet("raise", rank=1, after=3), fmnist, processes=2,
                      threads=1, batch_size=8, epochs_per_process=5)
    assert e.value.rank == 1 and "hogwild worker 1 raised" in str(e.value)
    assert "RuntimeError: injected failure in worker 1" in str(e.value)
    partial = e.value.result  # worker 0 stopped early and handed in what it had
    assert partial.status == "partial" and "worker 1" in partial.error
    assert set(partial.worker_curves) == {"0"} and 0 < partial.samples < 5 * 3000
    assert not _children()


def test_worker_killed_by_a_signal_does_not_hang(fmnist):
    with pytest.raises(WorkerError, match="hogwild worker 0 was killed by signal SIGKILL") as e:
        train_hogwild(_testing.FaultyNet("kill", rank=0, after=2), fmnist, processes=2, threads=1,
                      batch_size=8, epochs_per_process=5)
    partial = e.value.result  # worker 1 was stopped long before its 5 epochs of batch 8
    assert partial.status == "partial" and 0 < partial.samples < 5 * 3000
    assert not _children()


def test_stopped_worker_fails_within_the_timeout_and_keeps_partial_results(fmnist):
    with pytest.raises(WorkerError, match="hogwild worker 1 sent nothing") as e:
        # worker 1 freezes itself (SIGSTOP) after 3 batches; worker 0 has 5 epochs of batch 8
        train_hogwild(_testing.FaultyNet("stop", rank=1, after=3), fmnist, processes=2,
                      threads=1, batch_size=8, epochs_per_process=5, timeout=3)
    partial = e.value.result
    assert e.value.rank == 1 and partial.status == "partial" and set(partial.worker_curves) == {"0"}
    assert 0 < partial.samples <= 5 * 3000 and partial.test_accuracy == partial.test_accuracy
    assert not _children()


def test_keyboard_interrupt_in_the_parent_terminates_every_worker(tmp_path):
    script = textwrap.dedent(f"""
        from costtrain.run import _testing
        from costtrain.data.datasets import load_dataset
        from costtrain.hogwild import train_hogwild
        ds = load_dataset(subset=500, test_subset=100)
        net = _testing.FaultyNet("slow", rank=-1, sleep=0.5, pid_dir={str(tmp_path)!r})
        try:
            train_hogwild(net, ds, processes=2, threads=1, batch_size=4, epochs_per_process=100)
        except KeyboardInterrupt as exc:  # the partial run comes with it
            print("partial:", exc.result.status, flush=True)
            raise
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    pid_files = [tmp_path / f"pid.{r}" for r in range(2)]
    for _ in range(600):
        if all(p.exists() and p.read_text() for p in pid_files) or parent.poll() is not None:
            break
        time.sleep(0.1)
    assert parent.poll() is None, parent.stderr.read().decode()
    pids = [int(p.read_text()) for p in pid_files]
    parent.send_signal(signal.SIGINT)
    out, err = parent.communicate(timeout=30)
    assert b"Interrupted: interrupted (Ctrl-C) while the hogwild workers were running" in err
    assert b"partial: partial" in out
    time.sleep(0.5)
    alive = [p for p in pids if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"workers outlived the interrupted parent: {alive}"
