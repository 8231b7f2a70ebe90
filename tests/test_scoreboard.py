"""One scoreboard through the course: real runs recorded per notebook, shown per job."""
from __future__ import annotations

import dataclasses

import pytest

from costtrain import load_dataset, train_baseline
from costtrain.course.scoreboard import load, record, show


@pytest.fixture(scope="module")
def runs():
    ds = load_dataset("fashion-mnist", subset=300, test_subset=200, seed=3)
    one = train_baseline("mlp", ds, threads=1, progress=False)
    two = train_baseline("mlp", ds, threads=2, progress=False)
    one.label, two.label = "baseline 1 thread", "baseline 2 threads"
    other = train_baseline("mlp", load_dataset("fashion-mnist", subset=200, test_subset=200,
                                               seed=3), threads=1, progress=False)
    other.label = "baseline on less data"
    return one, two, other


def test_a_notebook_replaces_its_rows_and_others_add_theirs(runs, tmp_path):
    one, two, other = runs
    path = tmp_path / "scoreboard.json"
    record("01_baseline", [one], path)
    record("01_baseline", [one, two], path)  # re-running a notebook does not count it twice
    rows = record("04_compare", [other], path)
    assert [(r["notebook"], r["label"]) for r in rows] == [
        ("01_baseline", "baseline 1 thread"), ("01_baseline", "baseline 2 threads"),
        ("04_compare", "baseline on less data")]
    assert load(path) == rows


def test_runs_are_compared_only_within_one_job(runs, tmp_path):
    one, two, other = runs
    path = tmp_path / "scoreboard.json"
    record("01_baseline", [one, two], path)
    record("04_compare", [other], path)
    text = show(path)
    jobs = [line for line in text.splitlines() if line.endswith("samples trained:")]
    assert len(jobs) == 2 and "300 images" in jobs[0] + jobs[1] and "200 images" in jobs[0] + jobs[1]
    fastest = min((one, two), key=lambda r: r.total_seconds)
    slower = max((one, two), key=lambda r: r.total_seconds)
    assert f"{fastest.label} (to beat)" in text
    assert f"{fastest.total_seconds / slower.total_seconds:.2f}x" in text


def test_a_notebook_shows_its_own_runs_and_says_what_else_there_is(runs, tmp_path):
    one, two, other = runs
    path = tmp_path / "scoreboard.json"
    record("01_baseline", [one, two], path)
    record("04_compare", [other], path)
    text = show(path, notebook="01_baseline")
    assert "baseline 1 thread" in text and "baseline on less data" not in text
    assert "also holds 1 run(s) of 04_compare" in text


def test_unfinished_runs_are_not_scored_and_an_empty_board_says_so(runs, tmp_path):
    path = tmp_path / "scoreboard.json"
    assert "empty" in show(path)
    partial = dataclasses.replace(runs[0], status="partial", label="stopped early")
    rows = record("03_hogwild", [partial, runs[1]], path)
    assert [r["label"] for r in rows] == ["baseline 2 threads"]
    (tmp_path / "broken.json").write_text("{not json")
    assert load(tmp_path / "broken.json") == []


def test_runs_of_one_configuration_are_one_row_with_their_range(runs, tmp_path):
    """A configuration that ran twice under two labels (01's second thread count and its
    in-memory pipeline run) is one row, never ranked against itself."""
    one, two, _ = runs
    again = dataclasses.replace(two, label="memory pipeline",
                                total_seconds=two.total_seconds * 1.5)
    path = tmp_path / "scoreboard.json"
    record("01_baseline", [one, two, again], path)
    text = show(path, notebook="01_baseline")
    rows = [line for line in text.splitlines() if line.startswith(("baseline", "memory"))]
    assert len(rows) == 2, text
    merged = next(line for line in rows if "memory pipeline" in line)
    assert merged.startswith("baseline 2 threads / memory pipeline")
    low, high = sorted([two.total_seconds, again.total_seconds])
    assert f"({low:.1f}-{high:.1f})" in merged
    assert "(to beat)" in text and text.count("(to beat)") == 1


def test_a_run_evaluated_during_training_is_another_job_and_feature_data_counts_samples(runs, tmp_path):
    """Evaluations during training pause it and count in the end-to-end time: a run with them
    is not ranked against one without. Data that holds feature ids counts samples, not images."""
    import json

    from costtrain.course.scoreboard import IMAGE_DATASETS
    from costtrain.data.datasets import SPECS
    assert set(IMAGE_DATASETS) == set(SPECS)
    one, two, _ = runs
    evaluated = dataclasses.replace(two, label="batch 64, evaluated",
                                    eval_curve={"samples": [100, 200, 250, 300], "accuracy": [0.1, 0.2, 0.3, 0.3]})
    path = tmp_path / "scoreboard.json"
    rows = record("01b_free_speedups", [one, evaluated], path)
    assert [r["evaluations"] for r in rows] == [0, 3]
    jobs = [line for line in show(path).splitlines() if line.endswith("samples trained:")]
    assert len(jobs) == 2 and any("evaluated 3 times during training" in j for j in jobs)
    sparse = dict(rows[0], dataset="sparse-synthetic", model="sparse-linear", images=30000,
                  notebook="03b_sparse_hogwild")
    path.write_text(json.dumps([sparse]))
    assert "30,000 training samples" in show(path) and "images" not in show(path).splitlines()[0]


def test_kept_levers_carry_what_01b_kept_on_this_machine_except_compile():
    """compile's cost is a one-off compile that a run in a warm kernel does not pay (the graph
    is cached), so the later notebooks' timed runs do not carry it, and say why."""
    from costtrain.course.scoreboard import kept_levers
    hw = {"cpu": "AMD EPYC", "cores": 2, "torch": "2.14.1"}
    found = {"01b_free_speedups": {"levers": {
        "kept": {"channels_last": True, "amp": False, "compile": True},
        "why": "notebook 01b measured channels_last 1.38x", "hardware": hw}}}
    levers, why = kept_levers(found, hw)
    assert levers == {"channels_last": True}
    assert why.startswith("notebook 01b measured channels_last") and "compile is not carried" in why
    assert kept_levers(found, {**hw, "cores": 16})[0] == {}  # measured on another machine
    found["01b_free_speedups"]["levers"]["kept"].pop("compile")
    assert "compile" not in kept_levers(found, hw)[1]


def test_a_headless_course_run_keeps_its_state_beside_its_copies(tmp_path, monkeypatch):
    """`costtrain notebooks` points the kernels at its executed copies' folder, so a CI-sized
    or test run of 01b cannot overwrite the levers the classroom run of 01b kept (it did: the
    reference 04-06 once read a CI run's findings). Explicit paths are left alone."""
    from costtrain.course import scoreboard
    from costtrain.course.notebooks import _course_state
    monkeypatch.chdir(tmp_path)
    with _course_state(tmp_path / "ci"):
        scoreboard.remember("01b_free_speedups", "levers", {"kept": {"channels_last": True}})
        assert "01b_free_speedups" in scoreboard.findings()
    assert (tmp_path / "ci" / "findings.json").is_file()
    assert not (tmp_path / "out").exists() and scoreboard.findings() == {}
    assert scoreboard.STATE_ENV not in __import__("os").environ
    with _course_state(tmp_path / "ci"):
        mine = tmp_path / "mine.json"
        scoreboard.remember("x", "y", {}, path=mine)
        assert mine.is_file()
