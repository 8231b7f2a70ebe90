"""torchrun's entry point for the parameter server: ``torchrun ... -m costtrain.parameter_server [options]``
runs one rank (``--help`` lists the options). The trainer itself is
:func:`costtrain.train.parameter_server.train_parameter_server`; this module only starts a rank.
"""
import sys

from .torchrun import main

if __name__ == "__main__":
    sys.exit(main("ps"))
