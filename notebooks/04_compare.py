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
# # 04 · Every method side by side: time, accuracy, cost
#
# The earlier notebooks looked at one method each. Here every method trains the **same
# total work** (the same number of passes over the same data) and we compare what matters
# to a casual practitioner: wall time, accuracy, the loss against samples and against
# seconds, and what reaching a target accuracy costs.
#
# **You will learn**
# - how the baseline, Hogwild! and the parameter server compare on your machine, measured,
#   with set-up, training and evaluation kept apart (end to end = all three, as in 01);
# - why "loss against samples" and "loss against seconds" tell different stories;
# - what each run cost (its energy at an electricity price, or a cloud instance's price per
#   hour), where the energy figure came from, and how long and how much each configuration
#   took to reach the target accuracy;
# - optionally, what `costtrain advise` recommends for a whole job after short probes.
#
# Background: Niu et al. 2011 ([Hogwild!](https://arxiv.org/abs/1106.5730)), Dean et al. 2012
# and Li et al. 2014 (parameter servers, see notebook 02), Goyal et al. 2017
# ([learning-rate scaling](https://arxiv.org/abs/1706.02677), used by `ps sync`).
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (attach_cost, busy_note, check_prediction, comparison_plan,
                              format_table, listing, machine_note, md, money, pct,
                              plot_accuracy_vs_time, plot_cost_to_target, plot_losses, price_basis,
                              ranking_sentence, results_table, run_comparison, run_header,
                              run_panel, secs, target_sentence, values, worked_answer)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening

from costtrain.course import NoWrap

opening("04_compare")

# %% [markdown]
# ## Parameters
#
# The next cell holds the values this notebook runs with (small, so that it finishes quickly).
# Change them here, or let papermill inject others (`costtrain notebooks -p subset=60000`,
# `costtrain notebooks --ci`). Figures go to `out/figures/` next to the notebooks (not tracked
# by git); only the reference build (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 6000           # training images (None: all 60,000)
test_subset = 2000      # test images (None: all 10,000)
total_epochs = 2        # passes over the training set, the same for every method
only = None             # run only configurations whose label starts with one of these
batch_size = 64
lr = 0.01
seed = 42
eval_every = 2000       # held-out accuracy every this many samples (for accuracy vs time)
target_accuracy = None  # e.g. 0.75; None: 90 % of the best final accuracy
instance = None         # price as this cloud instance, e.g. "aws-c7i.large"; None: electricity
advise_budget = 10.0    # seconds for costtrain's recommendation probes; 0 skips them
progress = True
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "04_compare")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
basis = price_basis(instance)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images; "
      f"{total_epochs} epochs of work = {total_epochs * len(ds.train_y):,} samples per configuration")
print(f"priced as {basis.describe()}" + (f", energy estimated at {basis.watts:g} W where the machine does not "
                                         "report it" if basis.usd_per_kwh else ""))

# %%
# NBVAL_IGNORE_OUTPUT
cores = costtrain.num_cores()
planned = [label for label, _, kw in comparison_plan(total_epochs)
           if not only or any(label.startswith(o) for o in only)]
over = [label for label in planned if label.startswith("hogwild") and int(label.split()[1].split("x")[0]) > cores]
display(Markdown(md(f"Configurations on this machine ({cores} cores): " + ", ".join(f"*{p}*" for p in planned) + ". "
                    + (f"**{', '.join(over)}** ha{'ve' if len(over) > 1 else 's'} more processes than cores: costtrain "
                       "prints its oversubscription warning (notebook 01, section 3) before it runs." if over else ""))))

# %% [markdown]
# ## 1. Run every method
#
# `run_comparison` is what `make run` / `costtrain compare` runs: the configurations listed
# above, each doing `total_epochs` passes over the data, with the energy of each run measured
# (or estimated where the machine does not report it). The panel sets the batch size and
# learning rate **of every configuration** in this comparison; press **Run** to run them all
# again with your values (the live plot shows each run as it trains; the tables and figures
# below the panel are redrawn), or run the cell below it. Sections 2 to 4 use the latest
# results (`panel.last`): re-run them after a Run.
#
# **Exercise 1, predict first: is one process enough?** Before the runs: take the configurations
# that run one process (the baselines, Hogwild! 1x...) and the lowest end-to-end time among
# them; divide it by the lowest end-to-end time of all the configurations. Write your guess in
# the next cell; the Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# Notebooks 01 to 03 measured each ingredient: threads in one process, process start-up, and
# the parameter server's communication share. A ratio of 1 means no parallel configuration
# finished sooner than the best single process.
# </details>

# %%
guess_end_to_end_ratio = None  # your guess: lowest end-to-end seconds of a one-process configuration ÷ lowest of all

# %%
def compare_run(v, live):
    """Every configuration with the panel's batch size and learning rate."""
    results = run_comparison(ds, total_epochs=total_epochs, batch_size=v["batch_size"], lr=v["lr"], seed=seed,
                             eval_every=eval_every, only=only, price=basis, progress=progress,
                             on_start=live.start, on_progress=live,
                             on_result=live.finish)
    print(results_table(results))
    return results


panel = run_panel("04_compare", compare_run, batch_size=batch_size, lr=lr)
panel

# %%
# NBVAL_IGNORE_OUTPUT
results = panel.run()

# %% [markdown]
# ## 2. Loss against samples, loss against seconds
#
# Against **samples seen**, curves on top of each other mean the methods learn equally
# well per example. Against **seconds of training**, the faster method pulls ahead. A method
# can win one picture and lose the other.

# %%
# NBVAL_IGNORE_OUTPUT
results = panel.last
for x in ("samples", "seconds"):
    plot_losses(results, figures / f"04_losses_{x}.png", x=x, title=f"Training loss against {x}, same total work")
display(plot_losses(results, x="samples", title="Training loss against samples seen"),
        plot_losses(results, x="seconds", title="Training loss against training seconds"))

# %% [markdown]
# ## 3. Accuracy against wall time, and cost
#
# Held-out accuracy was measured every `eval_every` samples (that time is kept out of the
# clock). The cost of a run is its energy at the electricity price, or its wall time at a
# cloud instance's hourly price (`price_basis` takes your own prices). The table
# says for every run where its energy figure came from: *measured* (the machine's energy
# counters) or *estimated* (a fixed power draw × the wall time).

# %%
# NBVAL_IGNORE_OUTPUT
results = panel.last
target = target_accuracy or round(0.9 * max(r.test_accuracy for r in results), 3)
for r in results:  # price again now that the target is known (each run keeps its measured energy)
    attach_cost(r, target_accuracy=target, basis=basis)
title = f"Cost to {100 * target:.0f} % test accuracy ({basis.describe()})"
plot_accuracy_vs_time(results, figures / "04_accuracy_vs_time.png", target=target)
plot_cost_to_target(results, figures / "04_cost_to_target.png", title=title)
display(plot_accuracy_vs_time(results, target=target), plot_cost_to_target(results, title=title))
print(f"target accuracy {pct(target)}, priced as {basis.describe()}")
print(format_table([(r.label, r.total_seconds, 100 * r.test_accuracy, money(r.cost["cost"]),
                     r.cost["energy_source"],
                     "not reached" if r.cost["time_to_target_seconds"] is None
                     else r.cost["time_to_target_seconds"], money(r.cost["cost_to_target"]))
                    for r in results],
                   ("run", "end to end s", "test acc %", "cost", "energy", "s to target", "cost to target")))

# %% [markdown]
# ## 4. What costtrain recommends (optional)
#
# `recommend` runs short probes of each method on this machine within a
# time budget, predicts the time and cost of the whole job and recommends one (the same as
# `costtrain advise` on the command line). Set `advise_budget` to 0 to skip it.

# %%
# NBVAL_IGNORE_OUTPUT
if advise_budget > 0:
    from costtrain.course import recommend
    advice = recommend("simple", ds, target_accuracy=target, budget_seconds=advise_budget,
                       epochs=total_epochs, instance=instance, batch_size=batch_size, lr=lr,
                       seed=seed, progress=progress)
    display(NoWrap(str(advice)))  # a wide table: keep its columns
else:
    print("skipped (advise_budget is 0)")

# %% [markdown]
# ## Exercises
#
# **1. Is one process enough?** Your guess went into `guess_end_to_end_ratio` before section 1
# ran; the next cell checks it.

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_end_to_end_ratio, min(r.total_seconds for r in results if r.config.get("processes") == 1)
                 / min(r.total_seconds for r in results))

# %%
# NBVAL_IGNORE_OUTPUT
single = [r for r in results if r.config.get("processes") == 1]
base = min(single or results, key=lambda r: r.total_seconds)
quickest = min(results, key=lambda r: r.total_seconds)
worked_answer(
    "A parallel configuration finishes sooner end to end only when what it gains in training is more than "
    "what it adds in start-up (spawning processes, connecting them) and evaluation; on few cores and a "
    "short job the gain can be smaller than the start-up. "
    + (f"This run, one run each (so not a verdict): no parallel configuration finished sooner than "
       f"{base.label} ({secs(base.total_seconds)}), a ratio of 1."
       if quickest is base else
       f"This run, one run each (so not a verdict): the lowest one-process time was {base.label}'s "
       f"({secs(base.total_seconds)}), the lowest of all {quickest.label}'s ({secs(quickest.total_seconds)}), "
       f"a ratio of {base.total_seconds / quickest.total_seconds:.2f}.")
    + " With more cores and a longer job the start-up weighs less.")

# %% [markdown]
# **2. Samples or seconds?** In section 2, which picture should you use to decide whether a
# method *learns* worse, and which to decide whether it is *worth it*?
#
# <details><summary>Hint</summary>
#
# A method that sees the same samples but updates from stale parameters learns less per sample.
# </details>
#
# <details><summary>Worked answer</summary>
#
# Loss against samples shows learning per example (staleness and races show up as curves
# above the baseline's); loss against seconds shows what you wait for. A method worth using
# wins on seconds without losing much on samples.
# </details>
#
# **3. Price it as a cloud machine.** Set `instance = "aws-c7i.large"` in the parameters and
# re-run sections 1 and 3. Does the ranking by cost change, and why?
#
# <details><summary>Hint</summary>
#
# A cloud instance is billed by the hour whatever it computes; electricity by the energy used.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
cloud = price_basis("aws-c7i.large")
worked_answer(
    "Billed by time, cost is proportional to wall time, so the ranking by cost is the ranking by wall time. "
    "Priced by energy, a run that keeps more cores busy can cost more per second; with estimated energy "
    "(a fixed power × time) the two rankings agree, with measured energy they can differ. This run's "
    f"energy was {', '.join(sorted({r.cost['energy_source'].split(':')[0] for r in results}))}; priced as "
    f"{cloud.describe()} its runs would cost "
    + ", ".join(f"{r.label} {money(cloud.cost(r.cost['seconds'], r.cost['energy_joules']))}" for r in results)
    + " (one run each).")

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT
reached = [r for r in results if r.cost["cost_to_target"] is not None]
lines = [
    machine_note(results),
    f"- Same work ({total_epochs} epochs of {len(ds.train_y):,} images) for {len(results)} configurations "
    f"({', '.join(sorted({r.method for r in results}))}).",
    "- " + ranking_sentence("End to end", {r.label: values(r, "total_seconds") for r in results},
                            busy=busy_note(results)) + ".",
    "- " + (ranking_sentence("Test accuracy", {r.label: values(r, "test_accuracy") for r in results}, pct,
                             higher_is_better=True, busy=busy_note(results)) if len(values(results[0], "test_accuracy")) > 1 else
            "Test accuracy, one run each: " + listing({r.label: r.test_accuracy for r in results}, pct)) + "."]
if reached:
    to_target = {r.label: values(r, "time_to_target_seconds") for r in results}
    lines.append(f"- {len(reached)} of {len(results)} reached {pct(target)}. " + target_sentence(to_target, pct(target), note=False, busy=busy_note(results))
                 + ". Cost to the target: " + ", ".join(f"{r.label} {money(r.cost['cost_to_target'])}" for r in reached)
                 + f" ({basis.describe()}; each run's energy source is in the table of section 3).")
else:
    lines.append(f"- No configuration reached {pct(target)} test accuracy.")
lines.append("- Figures: " + ", ".join(f"`{figures / n}`" for n in (
    "04_losses_samples.png", "04_losses_seconds.png", "04_accuracy_vs_time.png", "04_cost_to_target.png")))
display(Markdown(md("\n".join(lines))))

# %% [markdown]
# ## The course's scoreboard
#
# Every notebook adds the runs it measured to one table (`out/scoreboard.json`, next to the
# notebooks): below, this notebook's runs against the fastest single process of the same job;
# notebook 06 shows the whole scoreboard. Runs are compared only within one job (the same data,
# model and work): notebooks that train other sizes get their own table.

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import scoreboard
from costtrain.course import NoWrap

scoreboard.record("04_compare", results)
NoWrap(scoreboard.show(notebook="04_compare"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
busy = busy_note(results)
takeaways = [
    f"Compare on the same work and count everything (set-up included), {total_epochs} epochs of "
    f"{len(ds.train_y):,} images: " + ranking_sentence("end to end", {r.label: values(r, "total_seconds")
                                                                      for r in results}, busy=busy) + ".",
    f"Samples and seconds tell different stories: at equal samples the test accuracies spanned "
    f"{pct(min(r.test_accuracy for r in results))} to {pct(max(r.test_accuracy for r in results))}, "
    f"while end-to-end times spanned {secs(min(r.total_seconds for r in results))} to "
    f"{secs(max(r.total_seconds for r in results))}.",
    "Time to accuracy is the question a budget asks: " + target_sentence(
        {r.label: values(r, "time_to_target_seconds") for r in results}, pct(target), note=False, busy=busy) + ".",
    "One run decides nothing on a busy machine: `costtrain compare --repeats 3` alternates the "
    "configurations and reports medians with ranges."]
closing("04_compare", takeaways, results)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
