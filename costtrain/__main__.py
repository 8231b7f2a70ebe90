"""``python -m costtrain``: the command line (:mod:`costtrain.cli`).

A stop signal (SIGTERM, SIGHUP, Ctrl-C) that arrives while the command line is still being
imported is held (from the package's first line: ``costtrain.HELD_SIGNALS``), not lost and not
a traceback: :func:`costtrain.cli.main` answers it first, with its exit code (143, 129, 130).
"""
import sys

from .cli import main

sys.exit(main())
