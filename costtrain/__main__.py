"""``python -m costtrain``: the command line (:mod:`costtrain.cli`).

A stop signal (SIGTERM, SIGHUP, Ctrl-C) that arrives while the command line is still being
imported is held, not lost and not a traceback: :func:`costtrain.cli.main` answers it first,
with its exit code (143, 129, 130).
"""
import signal
import sys

held: list[int] = []
for _name in ("SIGTERM", "SIGHUP", "SIGINT"):
    _sig = getattr(signal, _name, None)
    if _sig is not None and signal.getsignal(_sig) is not signal.SIG_IGN:
        signal.signal(_sig, lambda signum, frame: held.append(signum))

from .cli import main  # noqa: E402  (after the handlers: its imports take a moment)

sys.exit(main(held=held))
