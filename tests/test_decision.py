"""The ending: a decision card for the reader's job (notebook 06 runs in test_notebooks).

Planted probes test that every conclusion on the card is chosen by its numbers; real probes
test that the card's command runs the job it predicted, in the time it predicted."""
from __future__ import annotations

import re


from costtrain.advice.advise import Advice
from costtrain.advice.cost import price_basis
from costtrain.advice.decision import (card_markdown, check_landed, decision_card,
                                       fastest_once_started, job_line, verdict, what_would_change)
from costtrain.advice.predict import rank_probes
from costtrain.result import RunResult
from costtrain.utils import hardware_info

JOB = {"dataset": "fashion-mnist", "model": "simple", "train_samples": 60_000, "subset": None,
       "epochs": 10, "samples": 600_000, "asked_samples": None, "target_accuracy": None,
       "batch_size": 64, "lr": 0.01, "seed": 42, "levers": {}, "levers_why": None}


def _probe(label: str, method: str, rate: float, setup: float, acc: float = 0.6,
           **config) -> RunResult:
    threads = config.pop("threads", 1)
    n = 4000
    return RunResult(method=method, label=label, config=config, threads=threads,
                     setup_seconds=setup, train_seconds=n / rate, samples=n,
                     samples_per_second=rate, steady_samples_per_second=rate,
                     eval_curve={"samples": [1000, 2000, 4000], "seconds": [1, 2, 3],
                                 "accuracy": [acc - 0.1, acc - 0.05, acc], "loss": [1, 1, 1]},
                     hardware=hardware_info())


def _planted(rates: dict[str, tuple[float, float, float]], setups: dict[str, float],
             job: dict | None = None) -> Advice:
    """Three probes of each configuration at the rates given (setups as given)."""
    kinds = {"baseline 1 thread": ("baseline", {"threads": 1}),
             "baseline 2 threads": ("baseline", {"threads": 2}),
             "hogwild 2 processes": ("hogwild", {"processes": 2, "sharding": "shard"}),
             "ps-sync 2 workers": ("ps-sync", {"mode": "sync", "workers": 2})}
    probes = [_probe(label, kinds[label][0], r, setups[label], **kinds[label][1])
              for i in range(3) for label, rs in rates.items() for r in (rs[i],)]
    job = dict(job or JOB)
    rows = rank_probes(probes, job_samples=job["samples"], epochs=job["epochs"],
                       basis=price_basis(), data={k: job[k] for k in (
                           "dataset", "model", "subset", "batch_size", "lr", "seed")})
    ok = [r for r in rows if r.status == "ok"]
    return Advice(rows=rows, recommended=ok[0], justification="(planted)", notes=[],
                  probes=probes, job=job, basis=price_basis(), budget_seconds=60.0,
                  elapsed_seconds=30.0)


# one machine where threads and processes pay, one where they do not: every word must flip
SCALES = dict(rates={"baseline 1 thread": (5000, 5100, 5200),
                     "baseline 2 threads": (9600, 9800, 10_000),
                     "hogwild 2 processes": (14_000, 14_500, 15_000),
                     "ps-sync 2 workers": (3000, 3100, 3200)},
              setups={"baseline 1 thread": 0.01, "baseline 2 threads": 0.01,
                      "hogwild 2 processes": 3.0, "ps-sync 2 workers": 4.0})
STALLS = dict(rates={"baseline 1 thread": (5000, 5100, 5200),
                     "baseline 2 threads": (3000, 3100, 3200),
                     "hogwild 2 processes": (2000, 2100, 2200),
                     "ps-sync 2 workers": (9000, 9200, 9400)},
              setups=SCALES["setups"])


def test_every_conclusion_word_changes_with_opposite_numbers():
    good, bad = (" ".join(what_would_change(_planted(**x))) for x in (SCALES, STALLS))
    assert "close to the ideal" in good and "slower than one thread, beyond noise" in bad
    assert "Hogwild!** hogwild 2 processes trained faster than" in good
    assert "Hogwild!** hogwild 2 processes trained slower than" in bad
    assert "The parameter server.** ps-sync 2 workers trained slower than" in good
    assert "The parameter server.** ps-sync 2 workers trained faster than" in bad
    assert "a longer job does not make it pay" in good  # the server, slower once started
    assert "it takes over after" in bad  # the server, faster once started: a crossover
    # the numbers behind each word are on the card
    assert "1.92x [1.85-2.00]" in good and "0.61x [0.58-0.64]" in bad


def test_a_crossing_of_medians_within_noise_is_not_called_a_take_over():
    tied = _planted(rates={"baseline 2 threads": (9000, 10_000, 11_000),
                           "hogwild 2 processes": (9200, 10_300, 11_500)},
                    setups={"baseline 2 threads": 0.01, "hogwild 2 processes": 0.1})
    line = next(x for x in what_would_change(tied) if x.startswith("**Hogwild!**"))
    assert "trained within noise of baseline 2 threads" in line
    assert "by the medians it takes over after" in line and "cannot tell" in line
    assert ": it takes over after" not in line


def test_the_card_states_the_job_first_and_its_commands_run_exactly_that_job(tmp_path):
    advice = _planted(**SCALES)
    text = card_markdown(advice)
    assert text.splitlines()[2] == f"**Job:** {job_line(JOB)}."
    assert "simple on fashion-mnist, 10 epoch(s) of 60,000 training images = 600,000 samples" \
        in text
    rec = advice.recommended
    assert rec.label == "hogwild 2 processes"  # the long job pays its start-up
    for row in [r for r in advice.rows if r.status == "ok"][:2]:  # winner and runner-up
        cmd = row.command()
        assert f"    {cmd}" in text
        for flag in ("--dataset fashion-mnist", "--batch-size 64", "--lr 0.01", "--seed 42"):
            assert flag in cmd
    assert "--processes 2 --epochs-per-process 10 --sharding shard" in rec.command()
    md, png = decision_card(advice, tmp_path, name="card")
    assert md.read_text() == text and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_card_names_where_each_configuration_takes_over():
    text = card_markdown(_planted(**SCALES))
    section = text.split("## Where each configuration takes over")[1].split("## ")[0]
    one = 0.01 + 600_000 / 5100
    assert "baseline 2 threads is sooner only for jobs under" in section
    assert "ps-sync 2 workers never takes over up to 60 million samples" in section
    assert one > 3.0 + 600_000 / 14_500  # the planted job is past Hogwild!'s crossover


def test_no_dollar_pair_reaches_a_math_renderer():
    text = card_markdown(_planted(**SCALES))
    assert not re.search(r"(?<!\\)\$", text), "an unescaped $ would render as LaTeX in Jupyter"
    assert "\\$" in text


def test_a_tie_is_called_a_tie_and_says_what_would_separate_the_two():
    tied = _planted(rates={"baseline 1 thread": (5000, 5500, 6000),
                           "baseline 2 threads": (5200, 5600, 6100)},
                    setups={"baseline 1 thread": 0.01, "baseline 2 threads": 0.01})
    word, sure = verdict(tied)
    assert word == "Tie (within noise)" and "What would separate them: more probes" in sure
    assert "**Tie (within noise):**" in card_markdown(tied)
    apart = _planted(**SCALES)
    assert verdict(apart) == ("Recommended", "")


def test_the_fastest_once_started_is_named_only_above_everyone_elses_range():
    apart = fastest_once_started(_planted(**SCALES).rows)
    assert apart.startswith("Fastest once started: hogwild 2 processes (14,500 samples/s, "
                            "14,000-15,000)") and "above every other's" in apart
    close = fastest_once_started(_planted(rates={"baseline 1 thread": (5000, 5500, 6000),
                                                 "baseline 2 threads": (5200, 5600, 6100)},
                                          setups={"baseline 1 thread": 0.01,
                                                  "baseline 2 threads": 0.01}).rows)
    assert close.startswith("Highest steady rate: baseline 2 threads (5,600")
    assert "within noise of baseline 1 thread (5,500" in close and "cannot tell" in close
    one = rank_probes([_probe("a", "baseline", 9000, 0.0), _probe("b", "baseline", 5000, 0.0)],
                      job_samples=60_000)
    assert "within noise of b (5,000 samples/s, one probe)" in fastest_once_started(one)


def test_a_check_run_outside_the_range_says_what_differed_from_the_probes():
    advice = _planted(**SCALES)
    row = advice.recommended  # hogwild: 14,000-15,000 samples/s, set-up 3 s
    inside = _probe(row.label, row.method, 14_500, 3.0)
    inside.train_seconds = row.predicted_seconds - 3.0
    assert "inside the predicted range" in check_landed(row, inside)
    assert "Against the probes" not in check_landed(row, inside)
    slow = _probe(row.label, row.method, 9_000, 3.0)
    slow.train_seconds = 600_000 / 9_000
    slow.extra = {"load": {"other_cores": 0.8, "cores": 2, "busy": True}}
    said = check_landed(row, slow)
    assert "above the predicted range" in said
    assert "it trained at 9,000 samples/s against the probes' 14,000-15,000 samples/s (0.62x" \
        in said
    assert "set-up took 3.00 s against the probes' 3.00-3.00 s" in said
    assert "busy during the run (other work used 0.8 of 2 cores): run it again when it is idle" \
        in said
    slow.extra = {"load": {"other_cores": 0.0, "cores": 2, "busy": False}}
    quiet = check_landed(row, slow)
    assert "so the machine's load does not explain the gap" in quiet and "idle" not in quiet
    assert f"predictions for this job as {slow.one_off_seconds / row.predicted_seconds:.2f}x" \
        in quiet


def test_a_card_read_on_another_machine_says_so(tmp_path):
    advice = _planted(**SCALES)
    advice.hardware = dict(advice.hardware, cpu="Some Other CPU", cores=64)
    text = card_markdown(advice)
    assert "**Read on another machine:**" in text and "Some Other CPU, 64 cores" in text
    assert "**Read on another machine:**" not in card_markdown(_planted(**SCALES))
    saved = advice.save(tmp_path / "advice.json")
    again = Advice.load(saved)
    assert card_markdown(again) == text


def test_a_card_without_any_probe_says_what_to_do(tmp_path):
    empty = Advice(rows=[], recommended=None, justification="", notes=[], probes=[], job=JOB,
                   basis=price_basis(), budget_seconds=1.0, elapsed_seconds=1.0)
    md, png = decision_card(empty, tmp_path)
    assert "No recommendation" in md.read_text() and "Raise the budget" in md.read_text()
    assert png.exists()


def test_the_sparse_line_quotes_notebook_03b_on_this_machine_only():
    advice = _planted(**SCALES)
    assert "Not measured on this machine" in " ".join(what_would_change(advice))
    finding = {"03b_sparse_hogwild": {"sparse_speedup": {
        "processes": 2, "ratio": 1.57, "verdict": "beyond noise", "hardware": hardware_info()}}}
    assert "at 1.57x (one run) the steady samples/s" in " ".join(what_would_change(advice, finding))
    finding["03b_sparse_hogwild"]["sparse_speedup"].update(low=1.4, high=2.7, runs=3)
    assert "at 1.57x [1.40-2.70, 3 runs] the steady" in " ".join(what_would_change(advice, finding))
    elsewhere = {"03b_sparse_hogwild": {"sparse_speedup": dict(
        finding["03b_sparse_hogwild"]["sparse_speedup"], hardware={"cpu": "other"})}}
    assert "Not measured on this machine" in " ".join(what_would_change(advice, elsewhere))


def test_notebook_03b_records_the_sparse_finding_the_card_reads():
    """03b remembers its sparse speed-up under the name and keys sparse_line() reads."""
    import ast
    from pathlib import Path
    source = (Path(__file__).resolve().parents[1] / "notebooks" / "03b_sparse_hogwild.py").read_text()
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "remember"]
    assert len(calls) == 1
    notebook, name, value = calls[0].args
    assert (notebook.value, name.value) == ("03b_sparse_hogwild", "sparse_speedup")
    assert {k.value for k in value.keys} == {"processes", "ratio", "low", "high", "runs", "verdict"}
    for word in ("within noise", "beyond noise"):
        assert repr(word) in ast.unparse(value)



def test_a_row_probed_with_levers_carries_them_into_its_command_and_call():
    """A baseline probed with channels_last (and bf16) is predicted with them, so its command
    and Python call must pass them: parsed back, the command trains what was probed."""
    import argparse

    from costtrain.args import add_lever_args
    probes = [_probe("baseline 2 threads + channels_last", "baseline", 9000 + 100 * i, 0.01,
                     threads=2, channels_last=True, amp="bf16") for i in range(3)]
    row = rank_probes(probes, job_samples=600_000, epochs=10, basis=price_basis(),
                      data={"dataset": "fashion-mnist", "batch_size": 64})[0]
    assert "channels_last=True" in row.call() and "amp='bf16'" in row.call()
    cmd = row.command().split()
    parser = argparse.ArgumentParser()
    add_lever_args(parser)
    levers, _ = parser.parse_known_args(cmd)
    assert levers.channels_last is True and levers.amp == "bf16"
    plain = rank_probes([_probe("baseline 2 threads", "baseline", 9000, 0.01, threads=2)
                         for _ in range(3)], job_samples=600_000, epochs=10,
                        basis=price_basis(), data={})[0]
    assert "--channels-last" not in plain.command() and "channels_last" not in plain.call()


def test_the_png_cards_command_lines_fit_and_paste_back_whole():
    """The printed card once cut its command at the figure's edge (dropping --channels-last):
    every line fits the card's width, no option is split from its value, and the lines joined
    are the command."""
    import shlex

    from costtrain.advice.decision import WIDTH, command_lines
    cmd = ("costtrain run --method baseline --dataset fashion-mnist --model simple --batch-size 64 "
           "--lr 0.01 --seed 42 --epochs 10 --threads 2 --amp bf16 --channels-last")
    lines = command_lines(cmd)
    assert len(lines) > 1 and all(len(x) <= WIDTH for x in lines)
    assert all(x.endswith(" \\") for x in lines[:-1])
    assert shlex.split(" ".join(x.rstrip("\\") for x in lines)) == shlex.split(cmd)
    assert not any(x.rstrip(" \\").endswith(("--seed", "--amp", "--lr")) for x in lines)
