"""Spawn when asked still trains; inside a notebook kernel the workers come from the fork
server and end with the kernel (the slow half of test_forkserver.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import psutil
from test_forkserver import forked_only

from costtrain.run import forkserver


def test_spawn_when_asked_still_trains(tmp_path):
    script = textwrap.dedent("""
        from costtrain.data.datasets import load_dataset
        from costtrain.hogwild import train_hogwild
        from costtrain.run import forkserver, pool
        r = train_hogwild("mlp", load_dataset(subset=200, test_subset=100), processes=2,
                          threads=1, eval_every=100)
        print(r.status, pool.current().ctx.get_start_method(), forkserver.pid())
    """)
    env = dict(os.environ, **{forkserver.ENV: "spawn"})
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "spawn", "None"]


@forked_only
def test_inside_a_notebook_kernel_workers_come_from_the_server_and_end_with_it():
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    code = textwrap.dedent("""
        import psutil
        from costtrain.data.datasets import load_dataset
        from costtrain.hogwild import train_hogwild
        from costtrain.run import forkserver, pool
        ds = load_dataset(subset=300, test_subset=100)
        runs = [train_hogwild("mlp", ds, processes=2, threads=1, eval_every=150) for _ in "ab"]
        server = forkserver.pid()
        print("RESULT", [r.status for r in runs], forkserver.threads_of(server),
              [psutil.Process(p).ppid() == server for p in pool.current().pids()],
              server, *pool.current().pids())
    """)
    try:
        out = []
        reply = kc.execute_interactive(code, timeout=600, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        line = next(x for x in "".join(out).splitlines() if x.startswith("RESULT"))
        assert "['ok', 'ok'] 1" in line and "[True, True]" in line, line
        pids = [int(p) for p in line.split()[-3:]]  # the server and the two workers
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    for pid in pids:
        try:
            psutil.Process(pid).wait(30)  # the kernel is gone: so are its server and workers
        except psutil.NoSuchProcess:
            pass
