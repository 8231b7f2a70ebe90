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
# # 06 · Your machine, your decision
#
# Notebooks 01 to 05 measured each method on its own and side by side. This one gives *your*
# answer: `costtrain advise` probes every method that fits this machine (one process with 1
# thread and with every core, Hogwild! with 2 up to one process per core, the parameter server
# in sync and async mode, the GPU if there is one) within a time budget, predicts the whole job
# from what each probe measured, and ranks the configurations by the time a one-off run pays:
# set-up + training (evaluation is not counted). The notebook then writes a one-page
# **decision card** for your machine.
#
# **You will learn**
# - how `costtrain advise` turns short probes into a prediction for the whole job (set-up +
#   samples / measured steady throughput; accuracy from a fit of the probe's evaluations);
# - to rank by what a one-off run pays (set-up included) and to call a difference *within
#   noise* when the predicted ranges overlap;
# - to write your decision card: the machine, the recommended configuration and its command
#   line, the predicted time and cost, and what would change the answer, computed from your
#   own probes.
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.
# Most of it is the probes: `decision_budget` seconds at most.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import time
import warnings
from pathlib import Path

from IPython.display import Image, Markdown, display

import costtrain
from costtrain import methods
from costtrain.course import (check_prediction, decision_card, machine_note, md, recommend,
                              run_header, run_panel, secs, summary, what_would_change)

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
# The job to decide for: the data, the passes over it, and (optionally) a target accuracy to
# rank by time to that accuracy instead of time for the whole job. `decision_budget` is the wall
# time the probes may take, data loading included: large enough that every method gets probed
# on a few-core machine; on many cores `advise` lists the configurations it had to skip.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 6000           # training images of the job (None: all 60,000)
test_subset = 2000      # test images (None: all 10,000)
epochs = 2              # the job: this many passes over the training images
target_accuracy = None  # e.g. 0.75: rank by time to this test accuracy; None: the whole job
decision_budget = 120.0  # seconds for all the probes
repeats = 2             # probe each configuration this many times (ranges, within-noise verdicts)
instance = None         # price as this cloud instance, e.g. "aws-c7i.large"; None: electricity
batch_size = 64
lr = 0.01
seed = 42
progress = True
figures_dir = "out/figures"

# %%
# NBVAL_CHECK_OUTPUT
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
print(f"the job: {ds.name}, {epochs} epoch(s) of {len(ds.train_y):,} training images = "
      f"{epochs * len(ds.train_y):,} samples, batch size {batch_size}, SGD lr {lr}")

# %% [markdown]
# ## 1. Probe every method
#
# Each probe trains a slice of the data for a few seconds and measures its set-up, its steady
# throughput and its accuracy on a few evaluations. The table ranks the configurations by the
# predicted one-off time of the whole job, set-up + training (or the time to the target;
# evaluation is not counted): a configuration that starts worker processes pays their start-up,
# as a one-off run would.

# %%
# NBVAL_IGNORE_OUTPUT
advice = recommend("simple", ds, target_accuracy=target_accuracy, budget_seconds=decision_budget,
                   epochs=epochs, repeats=repeats, instance=instance, batch_size=batch_size,
                   lr=lr, seed=seed, progress=progress)
display(NoWrap(str(advice)))  # a wide table: keep its columns

# %% [markdown]
# ## 2. Your decision card
#
# One page for your machine: what to run, with which command, how long and how much it is
# predicted to take, and what would change the answer. It is saved as Markdown and PNG next to
# the other figures; print it, or hand it in with your results.

# %%
# NBVAL_IGNORE_OUTPUT
card_md, card_png = decision_card(advice, figures, name="06_decision_card")
display(Markdown(md(card_md.read_text())), Image(str(card_png)))
print(f"saved: {card_md}, {card_png}")

# %% [markdown]
# ## 3. Check the prediction: run the job
#
# A prediction is worth what it gets right. The panel runs **the whole job** in the
# configuration you pick (the top of the ranking is preselected) with the batch size and
# learning rate you pick, then sets the measured set-up + training beside the prediction (the
# live plot shows the loss as it falls). A different batch size or learning rate than the
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
    measured = r.setup_seconds + r.train_seconds
    same = v["batch_size"] == batch_size and v["lr"] == lr
    print(f"predicted {secs(row.predicted_seconds)}, measured {secs(measured)} of set-up + training "
          f"({measured / row.predicted_seconds:.2f}x the prediction)"
          + ("" if same else f"; the probes ran batch {batch_size}, lr {lr}: the prediction was for those"))
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
from costtrain.course import scoreboard

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
# **1. Predict the recommendation.** Before running section 1, write down which configuration
# you expect `advise` to recommend on this machine, from what notebook 04 measured.
#
# <details><summary>Hint</summary>
#
# Notebook 04 ran every method on the same work. What decided its ranking: training speed, or
# start-up?
# </details>
#
# <details><summary>Worked answer</summary>
#
# The probes measure the same ingredients as 04 (set-up, steady throughput), so the two usually
# agree; where they differ, the job differs (04's work against this notebook's `epochs` x
# `subset`), or two configurations are close enough that a short probe cannot tell them apart
# (their predicted ranges overlap with `repeats > 1`: within noise).
# </details>
#
# **2. A longer job.** Predict the recommended configuration's time (set-up + training) for twice
# the epochs, from its predicted time now and its set-up, then check it below.
#
# <details><summary>Hint</summary>
#
# Predicted time = set-up + samples / steady throughput. Doubling the job doubles only the second
# term.
# </details>
#
# <details><summary>Worked answer</summary>
#
# `setup + 2 * (predicted - setup)`: the set-up is paid once, so a longer job favours the
# configurations that pay more start-up for a higher throughput (Hogwild!, the parameter
# server). Run the notebook with `-p epochs=4` to see whether the ranking changes.
# </details>

# %%
my_prediction = None  # your guess: the recommended configuration's seconds for twice the epochs

# %%
# NBVAL_IGNORE_OUTPUT
rec = advice.recommended
if rec is None or rec.predicted_seconds is None or target_accuracy is not None:
    raise ValueError("exercise 2 needs a recommendation predicted for the whole job: run with "
                     "target_accuracy = None and a decision_budget that probes at least one configuration")
longer_job_seconds = rec.setup_seconds + 2 * (rec.predicted_seconds - rec.setup_seconds)  # set-up once
print(f"computed: {rec.label}, set-up {secs(rec.setup_seconds)} + 2 x training "
      f"{secs(rec.predicted_seconds - rec.setup_seconds)}")

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(my_prediction, longer_job_seconds)

# %% [markdown]
# **3. What would change the answer on your machine?** Read the card's last section. Which
# single change (more cores, a GPU, a sparse model, a network) would most likely change the
# recommendation, and why?
#
# <details><summary>Hint</summary>
#
# Each line of the card is computed from a probe: compare the ratios it prints.
# </details>
#
# <details><summary>Worked answer</summary>
#
# The one with the largest measured lever. If one process with all threads barely beats one
# thread, more cores help only through more processes (Hogwild!); if Hogwild!'s throughput
# gain is eaten by its set-up, a longer job changes the answer; if the parameter server spends
# most of its time communicating on loopback, a real network makes it worse, and local SGD
# (notebook 05) is the way across machines.
# </details>

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
ok = [r for r in advice.rows if r.status == "ok"]
takeaways = [f"{len(advice.probes)} probe(s) of {len(ok)} configuration(s) took "
             f"{secs(advice.elapsed_seconds)} of the {secs(decision_budget)} budget."]
probed = "one probe each, a guide rather than a verdict: repeats = 3 gives ranges" if repeats == 1 else \
    f"{repeats} probes each"
if rec is not None:
    takeaways.append(f"Lowest predicted set-up + training ({probed}): **{rec.label}**, "
                     f"{secs(rec.predicted_seconds)}: `{rec.command()}`.")
    if len(ok) > 1 and ok[1].predicted_seconds and rec.predicted_seconds:
        takeaways.append(f"Next, {ok[1].label}, is predicted at {ok[1].predicted_seconds / rec.predicted_seconds:.2f}x "
                         "that time" + (" (a one-probe ratio)." if repeats == 1 else "."))
else:
    takeaways.append("No configuration could be probed within the budget: raise `decision_budget`.")
if checked is not None:
    row = next(r for r in ranked if r.label == panel.values()["method"])
    took = checked.setup_seconds + checked.train_seconds
    takeaways.append(f"The job you ran ({row.label}) took {secs(took)} of set-up + training against the "
                     f"predicted {secs(row.predicted_seconds)} ({took / row.predicted_seconds:.2f}x; one run).")
takeaways += what_would_change(advice)[:2]
closing("06_your_decision", takeaways, advice.probes)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
