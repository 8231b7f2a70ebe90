"""Helpers for the notebooks' exercises: check a guess, show a worked answer.

An exercise that asks for a number has a guess cell *before* the run it predicts
(``guess_x = None``) and, after the run, a check cell that is one call,
``check_prediction(guess_x, <what the prompt asks for, computed from the runs>)``; the cell
prints one sentence. ``tests/test_exercises.py`` runs every check cell with a planted right
answer, a planted wrong one and ``None``.
"""
from __future__ import annotations

from numbers import Real
from typing import Sequence

from ..advice.prose import md

WRITE_FIRST = "Write your guess first"


def prediction_sentence(guess: float | str | None, measured: float | str,
                        tolerance: float = 0.25, name: str = "the guess cell",
                        wrong: dict[str, float] | None = None,
                        noise: float | None = None, also: Sequence[str] = ()) -> str:
    """One sentence: how far `guess` is from `measured` (relative), or that there is no guess
    yet (`guess` None). Within `tolerance` counts as right; a word (``"more"``/``"less"``) is
    right when it is the measured word.

    `wrong` names the wrong answers the exercise is about (``{"scaling the set-up too": 1.2}``):
    a guess nearer one of them than the measured value is never right, whatever the
    tolerance, and when a wrong answer lies within the run's `noise` of the measured value
    (relative, e.g. 0.06 where one run moves 1.06x; the tolerance where the run measured no
    noise) the sentence says that this run cannot tell the two apart. The tolerance is how
    near counts as right; the noise is what the run can tell apart. `also`: other words the
    run cannot tell from the measured one (a tie), accepted too. A guess that is not a number
    gets one sentence saying what to type, not a traceback."""
    if guess is None and isinstance(measured, str) and measured:
        return (f"{WRITE_FIRST}: put your word in {name} above (before the run it predicts), run "
                "that cell, then run this one again.")
    if guess is not None and isinstance(measured, str):
        said = guess.strip().lower() if isinstance(guess, str) else None
        ok = said == measured.strip().lower()
        tie = not ok and said in {a.strip().lower() for a in also}
        tied = f", which this run cannot tell from {', '.join(repr(a) for a in also)} (a tie)"
        return (f"{'Right' if ok or tie else 'Not this time'}: your guess {guess!r}, measured "
                f"{measured!r}" + (tied if also else "")
                + ("." if ok or tie else "; read the hint and the worked answer."))
    if not isinstance(measured, Real) or measured != measured:
        raise ValueError(f"the measured value must be a number, got {measured!r}: did the run finish?")
    if guess is None:
        return (f"{WRITE_FIRST}: put a number in {name} above (before the run it predicts), run "
                "that cell, then run this one again.")
    if isinstance(guess, bool) or not isinstance(guess, Real) or guess != guess:
        return (f"Your guess must be a number such as 1.5, got {guess!r}: put a plain number "
                f"(no quotes) in {name}, run it, then run this cell again.")
    off = abs(guess - measured) / max(abs(measured), 1e-12)
    apart = tolerance if noise is None else noise
    for what, value in (wrong or {}).items():
        gap = abs(value - measured) / max(abs(measured), 1e-12)
        if gap <= apart:
            return (f"This run cannot tell the answer ({measured:.3g}) from {what} ({value:.3g}): "
                    f"they are within {100 * apart:.0f} % of each other here"
                    + (f", inside this run's noise" if noise is not None else "")
                    + f"; your guess {guess:g} is off by {100 * off:.0f} % from the answer.")
        if abs(guess - value) < abs(guess - measured):
            return (f"Not this time: your guess {guess:g} is nearer {what} ({value:.3g}) than the "
                    f"answer ({measured:.3g}); read the hint and the worked answer.")
    if off <= tolerance:
        return (f"Right: your guess {guess:g} is within {100 * tolerance:.0f} % of the measured "
                f"{measured:.3g} (off by {100 * off:.0f} %).")
    return (f"Not this time: your guess {guess:g} is off by {100 * off:.0f} % from the measured "
            f"{measured:.3g} (more than {100 * tolerance:.0f} %); read the hint and the worked answer.")


def check_prediction(guess: float | str | None, measured: float | str, tolerance: float = 0.25,
                     name: str = "the guess cell", wrong: dict[str, float] | None = None,
                     noise: float | None = None, also: Sequence[str] = ()) -> None:
    """Show :func:`prediction_sentence` as plain text (returns None, so a cell shows the
    sentence only). In a notebook the output also carries the measured value in its metadata
    (:data:`MEASURED`, not shown): the teacher's solutions quote it from the executed reference
    copies, even where the reference run made no guess."""
    sentence = prediction_sentence(guess, measured, tolerance, name, wrong, noise, also)
    shell = _shell()
    if shell is None:
        print(sentence)
        return
    from IPython.display import display
    value = measured if isinstance(measured, str) else float(measured)
    record = {"measured": value, **({"also": list(also)} if also else {})}
    display({"text/plain": sentence}, raw=True, metadata={MEASURED: record})


MEASURED = "costtrain/measured"  # the output metadata key check_prediction writes


def _shell():
    """The running IPython kernel, or None (a script, a test)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def worked_answer(text: str):
    """A folded "Worked answer" with this run's numbers, as a Markdown output (`text` is
    Markdown; ``$`` is escaped)."""
    from IPython.display import Markdown
    return Markdown(f"<details><summary>Worked answer</summary>\n\n{md(text)}\n\n</details>")
