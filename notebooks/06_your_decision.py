# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Your job, your machine, your decision
#
# Notebooks 01 to 05 measured each method on its own and side by side, on small jobs. This one
# answers for **your** job: the data and the number of passes you mean to run (by default 10
# epochs of the whole Fashion-MNIST training set, 600,000 samples), on this machine.
# `costtrain advise` probes every single-machine method that fits it (one process with 1 thread and
# with every core, Hogwild! with 2 up to one process per core, the parameter server in sync
# and async mode, the GPU if there is one; not local SGD, a method for several machines that
# notebook 05 predicts) with short, repeated probes inside a time budget,
# and predicts the one-off time of your job in each: set-up + samples / steady rate
# (evaluation is not counted). The notebook then writes a one-page **decision card**: the
# job, the recommendation and the command that runs exactly that job, and at what job size
# another configuration would take over.
#
# **You will learn**
# - how short probes become a prediction for a job of any size: one-off time = set-up +
#   samples / steady rate, with a range from repeated probes;
# - to read where two configurations' lines cross: the job size at which one takes over;
# - to call a difference *within noise* when the predicted ranges overlap, and a tie a tie;
# - to write your decision card, whose command runs exactly the job it predicts.
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.
# Most of it is the probes (`decision_budget` seconds at most) and section 3, which runs the
# whole job once.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import time
import warnings
from pathlib import Path

from IPython.display import Image, Markdown, display

import costtrain
from costtrain import methods
from costtrain.course import (check_landed, check_prediction, decision_card, fastest_once_started,
                              hardware_info, job_line, md, recommend, run_header, run_panel,
                              scoreboard, secs, summary, verdict, what_would_change, worked_answer)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening
from costtrain.course import NoWrap

opening("06_your_decision")

# %% [markdown]
# ## Parameters
#
# The job to decide for: the data (`subset` images of the training set, or all of them), the
# passes over it (`epochs`, or `samples` in all), and optionally a target accuracy. Set them
# to the job you mean to run: the probes stay short whatever the job's size, and the card
# predicts that job. `decision_budget` is the wall time the probes may take, data loading
# included; `repeats` probes of each configuration give every prediction a range.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = None           # differs: your job's training images (None: all 60,000), not a classroom slice
test_subset = 2000      # test images for the evaluations (None: all 10,000)
epochs = 10             # the job: this many passes over the training images ...
samples = None          # ... or this many samples in all (rounded up to whole epochs)
target_accuracy = None  # e.g. 0.75 (or 75): rank by time to this test accuracy; None: the whole job
decision_budget = 120.0  # seconds for all the probes
repeats = 3             # probes of each configuration (ranges, within-noise verdicts)
instance = None         # price as this cloud instance, e.g. "aws-c7i.large"; None: electricity
batch_size = 64
lr = 0.01
seed = 42
progress = True
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "06_your_decision")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
levers, levers_why = scoreboard.kept_levers(scoreboard.findings(), hardware_info())
job_epochs = None if samples else epochs
print(f"the data: {ds.name}, {len(ds.train_y):,} training images, {len(ds.test_y):,} test images")

# %% [markdown]
# ## 1. Probe every method
#
# Each probe trains a short slice of your data and measures its set-up, its steady throughput
# and its accuracy on a few evaluations; every configuration is probed `repeats` times, in
# turn. The table ranks the configurations by the predicted one-off time of your job, set-up +
# training (the median of the probes' predictions, with their range): a configuration that
# starts worker processes pays their start-up once, as a one-off run would. Accuracy enters
# only as a filter: a configuration whose probes *measured* more than 1 point less at equal
# samples, beyond their noise, is listed after the others and marked. The single-process rows
# carry the levers notebook 01b kept on this machine, if it ran here. Where the parameter
# server's workers and its server outnumber the cores, its probes print costtrain's
# oversubscription warning: the probe measures what such a run costs here.
#
# **Exercise 1, predict first: the recommendation.** Before the probes run: will `advise`
# recommend a configuration that trains in **one** process (the baseline, with 1 thread or
# every core) or one that starts **several** (Hogwild!, the parameter server)? Write `"one"` or
# `"several"` in the next cell, from what notebooks 03 and 04 measured; the Exercises at the end
# check it.
#
# <details><summary>Hint</summary>
#
# For a long job, set-up matters less and the steady rate more: which configuration trained
# fastest *once started* in 03 and 04? Then read the accuracy filter above: a faster
# configuration whose probes measured less accuracy beyond their noise is listed after the
# others, so the soonest is not always the one recommended.
# </details>

# %%
guess_recommendation = None  # your guess, a word: "one" (one process) or "several" (several processes)

# %%
# NBVAL_IGNORE_OUTPUT
advice = recommend("simple", ds, epochs=job_epochs, samples=samples,
                   target_accuracy=target_accuracy, budget_seconds=decision_budget,
                   repeats=repeats, instance=instance, batch_size=batch_size, lr=lr, seed=seed,
                   progress=progress, single_process_levers=levers, levers_why=levers_why)
display(NoWrap(str(advice)))  # a wide table: keep its columns

# %% [markdown]
# ## 2. Your decision card
#
# One page for your job on your machine: the job, what to run with which command (it runs
# exactly the job predicted), how long and how much it is predicted to take, where each other
# configuration would take over as the job grows, and what would change the answer. It is
# saved as Markdown and PNG next to the other figures; print it, or hand it in.

# %%
# NBVAL_IGNORE_OUTPUT
card_md, card_png = decision_card(advice, figures, name="06_decision_card",
                                  findings=scoreboard.findings())
display(Markdown(md(card_md.read_text())), Image(str(card_png)))
print(f"saved: {card_md}, {card_png}")

# %% [markdown]
# ## 3. Check the prediction: run the job
#
# A prediction is worth what it gets right. The panel runs **the whole job** in the
# configuration you pick (the top of the ranking is preselected) with the batch size and
# learning rate you pick, then sets the measured set-up + training beside the predicted range
# (the live plot shows the loss as it falls). A different batch size or learning rate than the
# probes' changes the speed, so the comparison says when it no longer holds. Press **Run**,
# or run the cell below the panel.

# %%
ranked = [r for r in advice.rows if r.status == "ok"]


def job_run(v, live):
    """The whole job in the configuration `v['method']` names, against its prediction."""
    row = next((r for r in ranked if r.label == v["method"]), None)
    if row is None:
        raise ValueError("no configuration was probed: raise decision_budget and run section 1 again")
    live.start(row.label)
    train = methods.get(row.method).load()  # the registry's trainer for this configuration
    r = train("simple", ds, **row.job, batch_size=v["batch_size"], lr=v["lr"], seed=seed,
              progress=progress, on_progress=live)
    live.finish(r)
    print(summary(r))
    same = v["batch_size"] == batch_size and v["lr"] == lr
    print(check_landed(row, r)
          + ("" if same else f" The probes ran batch {batch_size}, lr {lr}: the prediction was for those."))
    return r


panel = run_panel("06_your_decision", job_run, method=(ranked[0].label if ranked else "none"),
                  methods=[r.label for r in ranked] or ["none"], batch_size=batch_size, lr=lr)
panel

# %%
# NBVAL_IGNORE_OUTPUT
checked = panel.run() if ranked else None

# %% [markdown]
# ## 4. The course's scoreboard
#
# Every run the notebooks 01 to 05 measured on this machine (if you ran them here) and the job
# you ran in section 3, from
# `out/scoreboard.json`: one table per job, sorted by end-to-end time, each against the
# fastest single process of the same job. Compare them with the prediction above.

# %%
# NBVAL_IGNORE_OUTPUT
if checked is not None:
    scoreboard.record("06_your_decision", [checked])
NoWrap(scoreboard.show())

# %% [markdown]
# ## 5. Hand it in: the class's table
#
# Save the advice as JSON and hand it in with your `costtrain compare --out` results: the
# teacher merges everyone's files with `costtrain class collect` into one table of what each
# kind of machine measured and recommended.

# %%
# NBVAL_IGNORE_OUTPUT
advice_file = advice.save(Path("out") / "06_advice.json")
print(f"saved: {advice_file} (stamped with this machine: {advice.hardware.get('cpu')}, "
      f"{advice.hardware.get('cores')} cores)")

# %% [markdown]
# ## Exercises
#
# **1. The recommendation.** Your guess went into `guess_recommendation` before section 1
# ran; the next cell checks it.

# %%
rec = advice.recommended
recommended_processes = ("none probed" if rec is None else  # the answer: the baseline trains in this process
                         "one" if rec.method == "baseline" else "several")
card_word, card_tie = verdict(advice)  # "Tie (within noise)" where the runner-up's range overlaps
runner_up = [r for r in advice.rows if r.status == "ok"][1:2]
tied_kind = ({"one" if runner_up[0].method == "baseline" else "several"} - {recommended_processes}
             if card_word.startswith("Tie") and runner_up else set())  # a tie accepts either kind

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_recommendation, recommended_processes, also=sorted(tied_kind))

# %%
# NBVAL_IGNORE_OUTPUT
soonest = min((r for r in ranked if r.predicted_seconds is not None), key=lambda r: r.predicted_seconds,
              default=None)
if rec is None or soonest is None:
    answer = "No configuration was probed within the budget: raise `decision_budget` and run section 1 again."
else:
    kind = "one process" if recommended_processes == "one" else "several processes"
    answer = (
        f"This run: `advise` recommended **{rec.label}** ({kind}), predicted {secs(rec.predicted_seconds)}. "
        + (f"The card calls it a tie with {runner_up[0].label}: {card_tie} " if card_tie else "")
        + f"{fastest_once_started(ranked)} "
        + (f"The recommendation is also the soonest predicted, by set-up + samples / steady rate: its set-up is "
           f"{100 * rec.setup_seconds / rec.predicted_seconds:.1f} % of its predicted time, so for this job "
           + ("the steady rate decides." if rec.setup_seconds < 0.05 * rec.predicted_seconds else
              "the set-up and the steady rate decide together.")
           if soonest.label == rec.label else
           f"The soonest predicted was {soonest.label} ({secs(soonest.predicted_seconds)}), but it was listed "
           f"after {rec.label}" + (f": {soonest.listed_after}" if soonest.listed_after else
                                   " (see section 1's ranking)") + "."))
worked_answer(answer)

# %% [markdown]
# **2. A job a thousand times smaller.** Pick the configuration with the *longest* set-up in
# the table. Predict its one-off time for a job of one thousandth of the samples, from its
# predicted time and its set-up, then check it below.
#
# <details><summary>Hint</summary>
#
# Predicted time = set-up + samples / steady throughput. A smaller job shrinks only the second
# term: the set-up is paid once, whatever the job's size.
# </details>

# %%
my_prediction = None  # your guess: seconds for 1/1000 of the job, the configuration with the longest set-up

# %%
# NBVAL_IGNORE_OUTPUT
slowest_start = max(ranked, key=lambda r: r.setup_seconds) if ranked else None
if slowest_start is None or slowest_start.predicted_seconds is None or target_accuracy is not None:
    print("Exercise 2 needs a configuration predicted for the whole job: run with target_accuracy = None "
          "and a decision_budget that probes at least one configuration.")
    small_job_seconds = None
else:
    training = slowest_start.predicted_seconds - slowest_start.setup_seconds
    small_job_seconds = slowest_start.setup_seconds + training / 1000  # set-up once
    everything = slowest_start.predicted_seconds / 1000  # the mistake: scaling the set-up too
    print(f"{slowest_start.label}: set-up {secs(slowest_start.setup_seconds)} + training "
          f"{secs(training)} / 1000 = {secs(small_job_seconds)}; scaling everything would give "
          f"{secs(everything)}")

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(my_prediction, small_job_seconds, wrong={"scaling the set-up too": everything}
                 if small_job_seconds else None)

# %%
# NBVAL_IGNORE_OUTPUT
if small_job_seconds is not None:
    display(worked_answer(
        f"{slowest_start.label} pays {secs(slowest_start.setup_seconds)} of set-up once; its "
        f"training, {secs(training)} for the job, shrinks to {secs(training / 1000)}. So "
        f"{secs(small_job_seconds)}, not {secs(everything)} (which scales the set-up too): the "
        "smaller the job, the larger the set-up's share of it."))

# %% [markdown]
# **3. What would change the answer on your machine?** Read the card's last two sections.
# Which single change (a longer or shorter job, more cores, a GPU, a sparse model) would most
# likely change the recommendation, and why?
#
# <details><summary>Hint</summary>
#
# The "Where each configuration takes over" lines give job sizes; the "What would change"
# lines give measured ratios with their ranges.
# </details>
#
# <details><summary>Worked answer</summary>
#
# The one the numbers point to: a configuration that takes over within a few times your job
# (check its crossover and its range), a thread speed-up far from the ideal (more cores help
# only through more processes), or a method slower once started on this machine (a longer
# job does not help it). The card's lines quote this machine's numbers.
# </details>

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
ok = [r for r in advice.rows if r.status == "ok"]
rec = advice.recommended
takeaways = [f"The job: {job_line(advice.job)}.",
             f"{len(advice.probes)} probe(s) of {len(ok)} configuration(s) took "
             f"{secs(advice.elapsed_seconds)} of the {secs(decision_budget)} budget."]
if rec is not None:
    soonest_first = soonest is not None and soonest.label == rec.label
    takeaways.append(f"{card_word if card_word.startswith('Tie') else 'Recommended, and the soonest predicted' if soonest_first else 'Recommended'}: "
                     f"**{rec.label}**, {secs(rec.predicted_seconds)}"
                     + (f" [{secs(rec.predicted_range[0])} to {secs(rec.predicted_range[1])}]"
                        if rec.predicted_range else " (one probe: no range)")
                     + f": `{rec.command()}`"
                     + ("." if soonest_first or soonest is None else
                        f"; the soonest predicted, {soonest.label} ({secs(soonest.predicted_seconds)}), was listed "
                        "after it" + (f": {soonest.listed_after}" if soonest.listed_after else
                                      " (see section 1's ranking)") + ".")
                     + (f" {card_tie}" if card_tie else ""))
else:
    takeaways.append("No configuration could be probed within the budget: raise `decision_budget`.")
if checked is not None:
    row = next(r for r in ranked if r.label == panel.values()["method"])
    takeaways.append(f"The job you ran ({row.label}): {check_landed(row, checked)}")
takeaways += what_would_change(advice, scoreboard.findings())[:2]
closing("06_your_decision", takeaways, advice.probes)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
