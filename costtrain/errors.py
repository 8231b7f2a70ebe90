"""The package's error for bad input or environment (no torch: the CLI raises it before import)."""
from __future__ import annotations


class CosttrainError(ValueError):
    """Bad input or environment, with a message that says what to do."""
