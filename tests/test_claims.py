"""Claims that check themselves: the three verdicts, the noise rules, and the course's claims
as data (every one used by a notebook, every notebook call naming one)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from costtrain.course.claims import (CANNOT_TELL, CLAIMS, HELD, NOT_HELD, RELATIONS, RULES, Claim,
                                     check)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.py"))
CALL = re.compile(r"""\bclaim\(\s*["']([\w.-]+)["']""")

FASTER = Claim("test.faster", "Two threads train faster than one.", "2 threads", ">",
               "1 thread", "the threads share a busy core", unit="samples/s")


def test_a_claim_that_holds_says_so_with_its_numbers():
    v = check(FASTER, [1900, 2000, 2100], [1000, 1050, 1100])
    assert v.word == HELD
    assert v.markdown().startswith("**Claim:** Two threads train faster than one. *held on this "
                                   "machine*: 2 threads 2,000 samples/s [1,900-2,100, 3 runs]")
    assert "1.90x" in v.markdown() and "Why that can happen" not in v.markdown()


def test_a_planted_false_claim_prints_did_not_hold_and_why():
    v = check(FASTER, [900, 950, 990], [1000, 1050, 1100])
    assert v.word == NOT_HELD
    assert "*did not hold on this machine*" in v.markdown()
    assert "Why that can happen: the threads share a busy core" in v.markdown()


def test_overlapping_ranges_and_single_runs_cannot_tell():
    assert check(FASTER, [900, 1000, 1200], [1000, 1050, 1100]).word == CANNOT_TELL
    one = check(FASTER, 2000, 1000)
    assert one.word == CANNOT_TELL and "no range" in one.markdown()
    lone = Claim("test.lone", "x", "a", ">", "b", "why", rule="one run")
    assert check(lone, 9.0, 1.0).word == CANNOT_TELL


def test_a_yardstick_decides_one_run_each():
    stick = Claim("test.stick", "Classic is slower.", "classic s", ">", "memory s", "cache",
                  rule="yardstick", unit="s")
    assert check(stick, 3.0, 1.0, yardstick=1.29).word == HELD
    assert check(stick, 1.2, 1.0, yardstick=1.29).word == CANNOT_TELL
    assert check(stick, 0.5, 1.0, yardstick=1.29).word == NOT_HELD
    acc = Claim("test.acc", "It learns as much.", "a %", ">", "b %", "noise", rule="yardstick",
                scale="difference", unit="%")
    assert check(acc, 58.9, 57.9, yardstick=1.7).word == CANNOT_TELL  # a trend from noise
    assert check(acc, 62.0, 57.9, yardstick=1.7).word == HELD
    with pytest.raises(ValueError, match="yardstick"):
        check(stick, 3.0, 1.0)


def test_a_busy_machine_cannot_tell_a_timing_claim():
    v = check(FASTER, [1900, 2000, 2100], [1000, 1050, 1100],
              busy="the machine was busy during 2 threads (other work used 1.2 of 2 cores): ...")
    assert v.word == CANNOT_TELL and "(the machine was busy during 2 threads" in v.markdown()
    counted = Claim("test.n", "More.", "a", ">", "b", "-", rule="counted")
    assert check(counted, 2, 1, busy="the machine was busy: x").word == HELD  # counts do not care


def test_a_busy_machine_cannot_tell_a_measured_claim_but_still_counts():
    busy = "the machine was busy during a (other work used 1.8 of 2 cores)"
    v = check(FASTER, [1900, 2000, 2100], [1000, 1050, 1100], busy=busy)
    assert v.word == CANNOT_TELL and v.markdown().endswith(f"({busy}).")
    counted = Claim("test.count", "Fewer bytes.", "a", "<", "b", "-", rule="counted")
    assert check(counted, 1, 2, busy=busy).word == HELD


def test_counted_quantities_have_no_noise_and_a_nan_is_refused():
    counted = Claim("test.bytes", "H=8 sends fewer bytes.", "H=8 bytes", "<", "H=1 bytes", "-",
                    rule="counted", unit="bytes")
    assert check(counted, 100, 800).word == HELD and check(counted, 900, 800).word == NOT_HELD
    with pytest.raises(ValueError, match="did the run finish"):
        check(FASTER, float("nan"), 1.0)


def test_no_dollar_pair_in_a_verdict():
    v = check(Claim("test.cost", "It costs $1 less, $2 in all.", "a", ">", "b", "x"), [2, 3], [1, 1.5])
    assert "\\$1" in v.markdown()


def test_the_course_claims_are_well_formed_data():
    for cid, c in CLAIMS.items():
        assert cid == c.id and re.fullmatch(r"\d\db?\.[a-z0-9-]+", cid), cid
        assert c.relation in RELATIONS and c.rule in RULES and c.scale in ("ratio", "difference")
        assert c.says.endswith((".", "?", "!")) and c.why_not.strip(), cid


def test_every_claim_is_checked_by_its_notebook_and_every_call_names_a_claim():
    used = {}
    for src in SOURCES:
        for cid in CALL.findall(src.read_text()):
            used.setdefault(cid, set()).add(src.stem[:3].rstrip("_"))
    assert set(used) <= set(CLAIMS), f"unknown claims: {set(used) - set(CLAIMS)}"
    assert set(CLAIMS) <= set(used), f"claims no notebook checks: {set(CLAIMS) - set(used)}"
    for cid, nbs in used.items():
        assert nbs == {cid.split(".")[0]}, f"{cid} is checked by {nbs}"


def _verdict_lines(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    out = []
    for c in nb["cells"]:
        if c["cell_type"] != "code" or not CALL.search("".join(c["source"])):
            continue
        text = " ".join("".join(o.get("data", {}).get("text/markdown", "")) + "".join(o.get("text", ""))
                        for o in c.get("outputs", []))
        out.append(text)
    return out


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb")),
                         ids=lambda p: p.stem)
def test_every_claim_in_the_reference_copy_printed_one_of_the_three_verdicts(path):
    for text in _verdict_lines(path):
        assert any(w in text for w in (HELD, NOT_HELD, CANNOT_TELL)), text[:300]
