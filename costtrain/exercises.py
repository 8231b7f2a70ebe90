"""Helpers for the notebooks' exercises."""
from __future__ import annotations


def check_prediction(prediction: float | str | None, measured: float | str,
                     tolerance: float = 0.25) -> bool:
    """Compare the reader's guess with what the run measured, print how it went.

    A number is right within `tolerance` (relative); a word (``"more"``/``"less"``) must be the
    measured word; ``None`` (the exercise's starting value) asks for a guess first. Returns
    True when the guess is right.
    """
    if prediction is None:
        print("write your guess first: set the variable at the top of this cell, then run it")
        return False
    if isinstance(prediction, str) or isinstance(measured, str):
        ok = str(prediction).strip().lower() == str(measured).strip().lower()
        print(f"your prediction {prediction!r} vs measured {measured!r}: "
              f"{'right' if ok else 'not this time'}")
        return ok
    off = abs(prediction - measured) / max(abs(measured), 1e-12)
    ok = off <= tolerance
    print(f"your prediction {prediction:g} vs measured {measured:.3g}: off by {100 * off:.0f} % "
          f"({'within' if ok else 'outside'} {100 * tolerance:.0f} %)")
    return ok
