"""Process supervision with real processes: errors, signals, interrupts, no orphans."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from costtrain.run import _testing, procs

_children = _testing.spawned_children


def test_results_by_rank_and_messages():
    seen = []
    out = procs.run_workers(_testing.square, [(2,), (3,), (4,)],
                            on_message=lambda r, k, p: seen.append((r, k, p)))
    assert out == [4, 9, 16]
    assert sorted(seen) == [(0, "progress", 2), (1, "progress", 3), (2, "progress", 4)]
    assert not _children()


def test_timeout_stops_everyone():
    with pytest.raises(procs.WorkerError, match="did not finish within"):
        procs.run_workers(_testing.kill_self, [(-1, 60)], deadline=1, grace=0.2)
    assert not _children()


def test_stall_rule():
    assert procs.stalled(0.0, 2.0, 2.5) and not procs.stalled(0.0, 2.0, 1.5)
    assert not procs.stalled(0.0, None, 1e9)
    assert 0 < procs.heartbeat_interval(0.5) <= 0.125 and procs.heartbeat_interval(None) == 1.0


def test_overall_timeout_reports_fractions_of_a_second():
    with pytest.raises(procs.WorkerError, match="within 0.5 s"):
        procs.run_workers(_testing.kill_self, [(-1, 60)], deadline=0.5, grace=0.2)


def test_children_die_with_a_killed_parent(tmp_path):
    script = textwrap.dedent(f"""
        from costtrain.run import procs, _testing
        procs.run_workers(_testing.sleep_forever, [({str(tmp_path / 'pid')!r},)])
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    pid_file = tmp_path / "pid.0"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait(10)
    for _ in range(50):
        if not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "a worker outlived its killed parent"


def test_script_from_standard_input_can_start_workers():
    script = "from costtrain.run import _testing, procs\nprint(procs.run_workers(_testing.square, [(3,)]))\n"
    p = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[9]"
