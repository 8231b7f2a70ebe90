"""Where each configuration takes over: crossings of predicted time against job size, on
planted lines whose answers arithmetic gives."""
from __future__ import annotations

import math

import pytest

from costtrain.advice.takeover import (NEVER, Line, crossing, epochs_text, longer_job,
                                       samples_text, segments, statements)

LO, HI = 64, 6_000_000


def test_a_crossover_that_exists_is_found_where_arithmetic_puts_it():
    a = Line.of("one process", [0.0, 0.0, 0.0], [6000, 6000, 6000])
    b = Line.of("hogwild", [3.0, 3.0, 3.0], [9000, 9000, 9000])
    c = crossing(a, b, LO, HI)
    expected = 3.0 / (1 / 6000 - 1 / 9000)  # 54,000 samples
    assert c.kind == "takes over" and c.at == pytest.approx(expected, rel=0.01)
    assert c.low == pytest.approx(expected) and c.high == pytest.approx(expected)  # no noise
    assert a.seconds(0.99 * c.at) < b.seconds(0.99 * c.at)
    assert b.seconds(1.01 * c.at) < a.seconds(1.01 * c.at)
    text = statements([a, b], "one process", 60_000, LO, HI)
    assert text == ["hogwild takes over after 54,000 samples (0.9 of an epoch; range 54,000 to "
                    "54,000): steady 9,000 [9,000-9,000] against 6,000 [6,000-6,000] samples/s, "
                    "set-up 3.0 s against 0.0 s."]
    # with noise the range widens around the same median crossing
    noisy = Line.of("hogwild", [2.8, 3.0, 3.2], [8800, 9000, 9200])
    c = crossing(Line.of("one process", [0.0, 0.0, 0.0], [5900, 6000, 6100]), noisy, LO, HI)
    assert c.at == pytest.approx(expected, rel=0.01) and c.low < c.at < c.high < HI


def test_parallel_lines_never_cross():
    a = Line.of("fast start", [0.0, 0.0, 0.0], [6000, 6000, 6000])
    b = Line.of("slow start", [4.0, 4.0, 4.0], [6000, 6000, 6000])
    c = crossing(a, b, LO, HI)
    assert c.kind == "never" and c.at is None
    text = statements([a, b], "fast start", 60_000, LO, HI)[0]
    assert text.startswith("slow start never takes over up to 6 million samples: its longer "
                           "set-up is not made up")


def test_a_slower_line_never_takes_over_and_says_why():
    a = Line.of("best", [0.0, 0.0, 0.0], [6000, 6100, 6200])
    b = Line.of("server", [4.0, 4.1, 4.2], [4000, 4100, 4200])
    assert crossing(a, b, LO, HI).kind == "never"
    assert "its steady rate is lower" in statements([a, b], "best", 60_000, LO, HI)[0]


def test_overlapping_bands_are_within_noise_over_the_whole_range():
    a = Line.of("a", [0.0, 0.5, 1.0], [5000, 6000, 7000])
    b = Line.of("b", [0.2, 0.6, 0.9], [5200, 6000, 6900])
    c = crossing(a, b, LO, HI)
    assert c.kind == "within noise"
    assert "within noise over the whole range" in statements([a, b], "a", 60_000, LO, HI)[0]


def test_a_faster_line_whose_rates_overlap_takes_over_with_no_clear_end():
    a = Line.of("a", [0.0, 0.0, 0.0], [5800, 6000, 6200])
    b = Line.of("b", [2.0, 2.0, 2.0], [6100, 6300, 6500])
    c = crossing(a, b, LO, HI)
    assert c.kind == "takes over" and c.high == NEVER
    assert "within noise up to there" in statements([a, b], "a", 60_000, LO, HI)[0]


def test_a_line_that_starts_sooner_wins_only_the_short_jobs():
    big = Line.of("hogwild", [3.0, 3.0, 3.0], [9000, 9000, 9000])
    small = Line.of("one process", [0.0, 0.0, 0.0], [6000, 6000, 6000])
    c = crossing(big, small, LO, HI)
    assert c.kind == "sooner below" and c.at == pytest.approx(54_000, rel=0.01)
    assert statements([big, small], "hogwild", 600_000, LO, HI)[0].startswith(
        "one process is sooner only for jobs under 54,000 samples")


def test_segments_name_the_soonest_configuration_along_the_job_size():
    a = Line.of("one process", [0.0] * 3, [6000] * 3)
    b = Line.of("hogwild", [3.0] * 3, [9000] * 3)
    segs = segments([a, b], LO, HI)
    assert [s.label for s in segs] == ["one process", "hogwild"]
    assert segs[0].end < 54_000 < segs[1].start


def test_job_sizes_read_as_people_say_them():
    assert samples_text(310_250) == "310,000" and samples_text(1_534_000) == "1.53 million"
    assert samples_text(math.inf) == "never"
    assert epochs_text(300_000, 60_000) == "about 5 epochs"
    assert epochs_text(30_000, 60_000) == "0.5 of an epoch"
    assert epochs_text(217_000, 1_200) == "about 180 epochs"  # not "1.8e+02"


def test_bands_apart_only_for_short_jobs_are_not_never():
    """The reader's case: a 0.08 s longer set-up sets the bands apart for small jobs, but the
    steady-rate ranges overlap, so at the longest jobs the probes cannot tell: not "never"."""
    a = Line.of("one process", [0.003, 0.004, 0.004], [16_057, 17_017, 17_978])
    b = Line.of("hogwild 2x1", [0.083, 0.084, 0.084], [15_951, 16_125, 16_299])
    c = crossing(a, b, 1_000, 1_200_000)
    assert c.kind == "within noise" and 1_000 < c.low < 1_200_000
    text = statements([a, b], "one process", 60_000, 1_000, 1_200_000)[0]
    assert "never" not in text and "cannot tell whether it ever takes over" in text


def test_slower_rates_apart_at_the_longest_jobs_are_never():
    a = Line.of("one process", [0.0, 0.0, 0.0], [16_900, 17_000, 17_100])
    b = Line.of("hogwild 2x1", [0.08, 0.08, 0.08], [15_000, 15_100, 15_200])
    assert crossing(a, b, 1_000, 1_200_000).kind == "never"


def test_the_longer_job_sentence_follows_the_crossings():
    one = Line.of("one process", [0.0, 0.0, 0.0], [6000, 6000, 6000])
    hog = Line.of("hogwild", [3.0, 3.0, 3.0], [9000, 9000, 9000])
    assert longer_job([one, hog], "one process", LO, HI) == (
        "hogwild takes over from one process after 54,000 samples (range 54,000 to 54,000).")
    # the 04 reference case: the winner starts later and trains faster, the others are sooner
    # only for small jobs, and beyond the widest band crossing every band is apart
    fast = Line.of("hogwild 2x1", [0.1, 0.1], [14_706, 15_186])
    small = Line.of("baseline 2 threads", [0.0, 0.0], [11_821, 13_229])
    said = longer_job([fast, small], "hogwild 2x1", LO, HI)
    edge = crossing(fast, small, LO, HI).high
    assert said == (f"hogwild 2x1 stays the soonest: baseline 2 threads is sooner only for smaller "
                    f"jobs, and from {samples_text(edge)} samples to 6 million hogwild 2x1's band "
                    "is below every other's.")
    tied = Line.of("twin", [0.1, 0.1], [14_000, 15_500])
    assert "the runs cannot tell" in longer_job([fast, tied], "hogwild 2x1", LO, HI)
    slow = Line.of("slow", [0.0, 0.0], [3000, 3100])
    assert longer_job([one, slow], "one process", LO, HI).startswith(
        "no other configuration takes over from one process up to 6 million samples")
