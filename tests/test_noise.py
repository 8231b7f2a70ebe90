"""Repeated timings: medians, ranges, ABAB order and noise-aware verdicts, on hand-made samples."""
import pytest

from costtrain.advice.noise import (Spread, alternate, first_verdict, median_index, speedup_verdict,
                                    spread)
from costtrain.advice.report import median_range


def test_spread_median_and_range():
    s = spread([12.0, 10.0, 11.0])
    assert s == Spread(11.0, 10.0, 12.0, 3)
    assert s.text() == "11 (10-12, 3 runs)" and spread([4.0]).text() == "4"
    assert median_range([3.0, 1.0, 2.0]) == "2 (1-3)" and median_range([5.0]) == "5"
    with pytest.raises(ValueError):
        spread([])


def test_overlap_is_symmetric_and_touching_counts():
    a, b, c = spread([1, 2]), spread([2, 3]), spread([2.5, 4])
    assert a.overlaps(b) and b.overlaps(a) and b.overlaps(c) and not a.overlaps(c)


def test_alternate_runs_every_configuration_before_repeating_any():
    assert alternate(["A", "B"], 2) == [(0, "A"), (0, "B"), (1, "A"), (1, "B")]
    assert alternate(["A"], 1) == [(0, "A")]
    with pytest.raises(ValueError):
        alternate(["A"], 0)


def test_median_index_picks_the_middle_run():
    assert median_index([30.0, 10.0, 20.0]) == 2
    assert median_index([4.0, 1.0, 3.0, 2.0]) == 3  # lower middle of an even count


def test_speedup_verdict_says_within_noise_only_when_ranges_overlap():
    clear = speedup_verdict("hogwild", [10, 11, 12], "baseline", [14, 15, 16])
    assert clear.startswith("hogwild is 1.36x faster than baseline end to end")
    assert "within noise" not in clear
    noisy = speedup_verdict("hogwild", [10, 11, 15], "baseline", [14, 15, 16])
    assert "within noise" in noisy
    assert "2.00x slower than" in speedup_verdict("a", [20], "b", [10])


def test_first_verdict_names_the_first_and_the_noise():
    text = first_verdict({"a": [5.0, 6.0, 7.0], "b": [6.5, 8.0, 9.0], "c": [None, None, None]})
    assert text == ("a reaches the target first, in 6 s (median; 5-7 s over 3 runs), within "
                    "noise of b, in 8 s (median; 6.5-9 s over 3 runs): the ranges overlap")
    three = first_verdict({"a": [5.0, 6.0, 7.0], "b": [6.5, 8.0, 9.0], "d": [6.9, 9.0, 9.5]})
    assert "within noise of b, in 8 s" in three and " and d, in 9 s (median; 6.9-9.5 s" in three
    assert "within noise" in text
    text = first_verdict({"a": [5.0, 6.0], "b": [9.0, 10.0]})
    assert "within noise" not in text and ", then b, in 9.5 s" in text
    assert "a reaches the target first, in 5 s (one run; it missed the goal in 1 run(s))" \
        in first_verdict({"a": [5.0, None], "b": [9.0, 10.0]})
    assert first_verdict({"a": [None]}) == "no configuration reached the target"
