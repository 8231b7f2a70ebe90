"""torchrun's entry point for local SGD: ``torchrun ... -m costtrain.local_sgd [options]``
runs one rank (``--help`` lists the options). The trainer itself is
:func:`costtrain.train.local_sgd.train_local_sgd`; this module only starts a rank.
"""
import sys

from .torchrun import main

if __name__ == "__main__":
    sys.exit(main("local-sgd"))
