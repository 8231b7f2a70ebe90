"""Helpers for the notebooks' exercises."""
from __future__ import annotations


def check_prediction(prediction: float | None, measured: float, tolerance: float = 0.25) -> bool:
    """Print how far `prediction` is from `measured` (relative); True when within `tolerance`.

    ``None`` (no guess written yet) prints how to make one and returns False."""
    if prediction is None:
        print("write your guess in place of None, then run this cell again (the measured value "
              "stays hidden until you do)")
        return False
    off = abs(prediction - measured) / max(abs(measured), 1e-12)
    ok = off <= tolerance
    print(f"your prediction {prediction:g} vs measured {measured:.3g}: off by {100 * off:.0f} % "
          f"({'within' if ok else 'outside'} {100 * tolerance:.0f} %)")
    return ok
