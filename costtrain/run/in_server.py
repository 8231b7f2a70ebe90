"""Imported first inside the package's fork server (:mod:`costtrain.run.forkserver`), nowhere else.

The server ignores SIGTERM and SIGHUP (multiprocessing already makes it ignore SIGINT), which
``timeout``, systemd, Slurm and a closed terminal send to a whole process group: a server
that died of one would take the workers it forked with it before they hand in their results.
It ends when the parent ends instead (its "alive" pipe closes).
"""
from __future__ import annotations

import signal

for _name in ("SIGTERM", "SIGHUP"):
    if hasattr(signal, _name):
        signal.signal(getattr(signal, _name), signal.SIG_IGN)
