"""Process supervision with real processes: a worker that raises, is killed, stops, or Ctrl-C
(the slow half of test_procs.py)."""
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from test_procs import _children

from costtrain.run import _testing, procs


def test_worker_exception_names_worker_and_stops_others():
    with pytest.raises(procs.WorkerError) as e:
        procs.run_workers(_testing.fail_on, [(1,), (1,), (1,)])
    assert e.value.rank == 1 and "worker 1 raised" in str(e.value)
    assert "ValueError: boom from 1" in str(e.value)
    assert e.value.results == {0: 0, 2: 2}  # the others were asked to stop (else None) and
    #                                         handed in results
    assert not _children()


def test_worker_killed_by_signal_does_not_hang():
    with pytest.raises(procs.WorkerError, match="worker 1 was killed by signal SIGKILL") as e:
        procs.run_workers(_testing.kill_self, [(1, 60), (1, 60)], grace=0.5)
    assert e.value.results == {}  # worker 0, deaf to the stop request, was ended, not awaited
    assert not _children()


def test_a_stopped_worker_is_a_failure_within_the_stall_timeout():
    with pytest.raises(procs.WorkerError, match=r"worker 1 sent nothing .* timeout of 2 s") as e:
        procs.run_workers(_testing.stop_self, [(1,), (1,)], stall_timeout=2, grace=2)
    assert e.value.rank == 1 and e.value.results == {0: 0}  # the other one, asked to stop,
    #                                                        handed in its result
    assert not _children()  # the stopped one was woken up to die


def test_keyboard_interrupt_terminates_every_child(tmp_path):
    script = textwrap.dedent(f"""
        from costtrain.run import procs, _testing
        procs.run_workers(_testing.sleep_forever, [({str(tmp_path / 'pid')!r},)] * 2)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    pids = []
    for _ in range(200):
        pids = [tmp_path / f"pid.{r}" for r in range(2)]
        if all(p.exists() and p.read_text() for p in pids):
            break
        time.sleep(0.1)
    pids = [int(p.read_text()) for p in pids]
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=30)
    # still a KeyboardInterrupt (no `except Exception` swallows it), saying what happened
    assert b"costtrain.run.procs.Interrupted: interrupted (Ctrl-C) while the workers were running" in err
    assert issubclass(procs.Interrupted, KeyboardInterrupt) and not issubclass(procs.Interrupted, Exception)
    time.sleep(0.5)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
