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
# # 04 · The baseline, Hogwild! and the parameter server side by side: time, accuracy, cost
#
# The earlier notebooks looked at one method each. Here the baseline, Hogwild! and the
# parameter server each train the **same total work** (the same number of passes over the same
# data), `repeats` times in turn, and we compare what matters to a casual practitioner: wall
# time, accuracy, the loss against samples and against seconds, and what reaching a target
# accuracy costs. The cell after the parameters lists the configurations this machine runs,
# and says which method is not among them.
#
# **You will learn**
# - how the baseline (with the levers notebook 01b kept on this machine, if it ran here),
#   Hogwild! and the parameter server compare on your machine, measured in alternating
#   repeats, with set-up, training and evaluation kept apart (end to end = all three, as in 01);
# - the one-off time the course ranks by, **set-up + training** (evaluation not counted), the
#   definition `costtrain compare`, `costtrain advise` and notebook 06's decision card use, and
#   at what job size another configuration would take over;
# - what "loss against samples" and "loss against seconds" each show;
# - what each run cost (its energy at an electricity price, or a cloud instance's price per
#   hour), where the energy figure came from, and how long and how much each configuration
#   took to reach the target accuracy;
# - optionally, whether `costtrain advise`, from short probes, picks the configuration these
#   runs found soonest.
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
from costtrain.course import (attach_cost, busy_note, check_prediction, claim, comparison_plan,
                              counterpart, format_table, hardware_info, listing, longer_job, machine_note, md,
                              money, not_compared, oversubscribed, pct, plot_accuracy_vs_time,
                              plot_cost_to_target, plot_losses, price_basis, ranking_sentence,
                              repeats_table, results_table, run_comparison, run_header, run_panel,
                              scoreboard, secs, spread, takeovers, target_sentence, values,
                              worked_answer)

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
# The next cell holds the values this notebook runs with. Change them here, or let papermill
# inject others (`costtrain notebooks -p subset=60000`, `costtrain notebooks --ci`). Figures go
# to `out/figures/` next to the notebooks (not tracked by git); only the reference build
# (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 6000           # training images (None: all 60,000)
test_subset = 2000      # test images (None: all 10,000)
total_epochs = 2        # passes over the training set, the same for every method
repeats = 2             # runs of every configuration, in turn (1: one run each, and no verdicts)
only = None             # run only configurations whose label starts with one of these
batch_size = 64
lr = 0.01
seed = 42
eval_every = 2000       # held-out accuracy every this many samples (for accuracy vs time)
target_accuracy = None  # a fraction, e.g. 0.5; None: 90 % of the best final accuracy
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
levers, levers_why = scoreboard.kept_levers(scoreboard.findings(), hardware_info())
plan = [run for run in comparison_plan(total_epochs, single_process_levers=levers)
        if not only or any(run[0].startswith(o) for o in only)]
over = oversubscribed(plan)
with_levers = [label for label, _, kw in plan if levers and all(kw.get(k) == v for k, v in levers.items())]
lines = [f"Configurations on this machine ({cores} cores), each run {repeats} time(s) in turn: "
         + ", ".join(f"*{label}*" for label, _, _ in plan) + ".",
         (f"The in-process configurations ({', '.join(with_levers)}) run with "
          + ", ".join(f"`{k}={v!r}`" for k, v in levers.items()) + ", the lever(s) notebook 01b kept on "
          f"this machine" + (f": {levers_why}" if levers_why else "") + "."
          if with_levers else
          f"The baselines run without levers: {levers_why or 'notebook 01b kept none on this machine'}."),
         f"Not compared here: {', '.join(m.title for m in not_compared(total_epochs)) or 'none'} "
         "(notebook 05 covers the methods for several machines)."]
if over:
    kinds = {}  # (processes, threads, what besides the workers) -> labels
    for label, p, t, also in over:
        kinds.setdefault((p, t, also), []).append(f"**{label}**")
    lines.append(
        " and ".join(f"{' and '.join(labels)} ({p} processes{' each' if len(labels) > 1 else ''}"
                     f"{f', {also} included,' if also else ''} × {t} thread{'s' if t > 1 else ''})"
                     for (p, t, also), labels in kinds.items())
        + f" start more threads than this machine's {cores} cores: costtrain prints its oversubscription "
        "warning before they start, once for each message (notebook 01, section 3, explains it; notebook 03, "
        "section 4, measures what it costs). They run as planned, as `costtrain compare` runs them.")
display(Markdown(md("\n\n".join(lines))))

# %% [markdown]
# ## 1. Run every method
#
# `run_comparison` is what `make run` / `costtrain compare` runs: the configurations listed
# above, each doing `total_epochs` passes over the data, each started cold as a one-off run,
# `repeats` times in turn (every configuration once, then all again), with the energy of each
# run measured (or estimated where the machine does not report it). The panel sets the batch
# size and learning rate **of every configuration** in this comparison; press **Run** to run
# them all again with your values (the live plot shows each run as it trains; the tables and
# figures below the panel are redrawn), or run the cell below it. Sections 2 to 4 use the
# latest results (`panel.last`): re-run them after a Run. Each configuration's row is its
# median run (end to end); with `repeats` above 1 a second table gives the median and range
# over its repeats, set-up + training first: the one-off time the verdicts rank by.
#
# **Exercise 1, predict first: is one process enough?** Before the runs: take the best
# configuration that trains in one process (the baselines, Hogwild! with one process) and the
# best one that trains in several (Hogwild! with several processes, the parameter server's
# workers and server), each by its median set-up + training time. Divide the first by the
# second: below 1 means one process finished sooner. Write your guess in the next cell; the
# Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# Notebooks 01 to 03 measured the ingredients on this machine: what threads give one process,
# how long starting worker processes takes, and how fast the workers train once started. A
# multi-process configuration's set-up + training is its start-up plus its training time.
# </details>

# %%
guess_one_process_ratio = None  # your guess, a plain number (no quotes): best one-process set-up + training ÷ best multi-process

# %%
every_run = []  # every repeat of every configuration (the results below are the median runs)


def compare_run(v, live):
    """Every configuration with the panel's batch size and learning rate."""
    every_run.clear()

    def finished(r):
        every_run.append(r)
        live.finish(r)
    results = run_comparison(ds, total_epochs=total_epochs, batch_size=v["batch_size"], lr=v["lr"], seed=seed,
                             eval_every=eval_every, only=only, price=basis, progress=progress,
                             repeats=repeats, single_process_levers=levers,
                             on_start=live.start, on_progress=live, on_result=finished)
    print(results_table(results))
    if repeats > 1:
        print()
        print(repeats_table(results))
    return results


def one_off(r):
    """Median set-up + training over a configuration's repeats: the one-off time the verdicts rank by."""
    return spread(values(r, "one_off_seconds")).median


panel = run_panel("04_compare", compare_run, batch_size=batch_size, lr=lr)
panel

# %%
# NBVAL_IGNORE_OUTPUT
results = panel.run()

# %% [markdown]
# ## 2. Loss against samples, loss against seconds
#
# Each curve is one configuration's training loss (its median run). Against **samples seen**,
# curves on top of each other mean the configurations learned as much from the same number
# of examples; against **seconds of training**, a curve further left reached that loss sooner.
# Exercise 2 asks which picture answers which question.

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
# training clock). The seconds to the target accuracy are set-up + training until the first
# evaluation at or above it (interpolated between evaluations; evaluation not counted, as in
# the one-off ranking). The cost of a run is its energy at the electricity price, or its wall
# time at a cloud instance's hourly price (`price_basis` takes your own prices), for the whole
# run as measured, its evaluations included. The table says for every run where its energy
# figure came from: *measured* (the machine's energy counters) or *estimated* (a fixed power
# draw × the wall time).

# %%
# NBVAL_IGNORE_OUTPUT
results = panel.last
target = target_accuracy or round(0.9 * max(r.test_accuracy for r in results), 3)
for r in every_run:  # price again now that the target is known (each run keeps its measured energy)
    attach_cost(r, target_accuracy=target, basis=basis)
to_target = {r.label: [x.cost["time_to_target_seconds"] for x in every_run if x.label == r.label] for r in results}
title = f"Cost to {100 * target:.0f} % test accuracy ({basis.describe()})"
plot_accuracy_vs_time(results, figures / "04_accuracy_vs_time.png", target=target)
plot_cost_to_target(results, figures / "04_cost_to_target.png", title=title)
display(plot_accuracy_vs_time(results, target=target), plot_cost_to_target(results, title=title))
print(f"target accuracy {pct(target)}, priced as {basis.describe()}; each configuration's median run")
print(format_table([(r.label, r.one_off_seconds, r.total_seconds, 100 * r.test_accuracy, money(r.cost["cost"]),
                     r.cost["energy_source"],
                     "not reached" if r.cost["time_to_target_seconds"] is None
                     else r.cost["time_to_target_seconds"], money(r.cost["cost_to_target"]))
                    for r in results],
                   ("run", "set-up + train s", "end to end s", "test acc %", "cost", "energy", "s to target",
                    "cost to target")))
dipped = [r for r in results if r.cost["time_to_target_seconds"] is not None and r.test_accuracy < target]
if dipped:  # reached during training (on the evaluation slice), ended below (on the whole test set)
    print("note: " + "; ".join(
        f"{r.label} reached {pct(target)} on the evaluation slice during training, then ended at "
        f"{pct(r.test_accuracy)} on the whole test set, below the target" for r in dipped)
          + ": its s to target is the first crossing, not an accuracy it kept")

# %% [markdown]
# ## 4. What costtrain recommends (optional)
#
# `recommend` runs short probes of each method on this machine within a time budget, predicts
# the one-off time of this whole job in each configuration (set-up + samples ÷ steady rate,
# evaluation not counted: the definition section 1's verdicts rank by) and recommends the
# soonest; it is `costtrain advise` on the command line, and what notebook 06 builds its card
# from. It gets the same levers as section 1's in-process configurations and no target
# accuracy, so it ranks by time alone. Set `advise_budget` to 0 to skip it. The cell after it
# checks its pick against what section 1 measured.

# %%
# NBVAL_IGNORE_OUTPUT
if advise_budget > 0:
    from costtrain.course import recommend
    advice = recommend("simple", ds, epochs=total_epochs, budget_seconds=advise_budget, instance=instance,
                       batch_size=batch_size, lr=lr, seed=seed, progress=progress,
                       single_process_levers=levers, levers_why=levers_why)
    display(NoWrap(str(advice)))  # a wide table: keep its columns
else:
    advice = None
    print("skipped (advise_budget is 0)")

# %%
# NBVAL_IGNORE_OUTPUT
pick = advice and advice.recommended and next(p for p in advice.probes if p.label == advice.recommended.label)
mine = pick and counterpart(pick, results)
if not pick:
    print("No pick to check: advise was skipped or recommended nothing.")
elif mine is None or len(results) < 2:
    print(f"Section 1 did not run {pick.label} beside another configuration (see `only`): nothing to check it against.")
else:
    rival = min((r for r in results if r is not mine), key=one_off)
    display(Markdown(md(f"`costtrain advise` picked **{pick.label}**"
                        + (f" (section 1 ran it as *{mine.label}*)" if mine.label != pick.label else "")
                        + f"; the best other configuration in section 1 by set-up + training was *{rival.label}*.")))
    display(claim("04.advise-agrees", values(mine, "one_off_seconds"), values(rival, "one_off_seconds"),
                  busy=busy_note([*results, *advice.probes])))

# %% [markdown]
# ## Exercises
#
# **1. Is one process enough?** Your guess went into `guess_one_process_ratio` before section 1
# ran; the next cell checks it.

# %%
# NBVAL_IGNORE_OUTPUT
results = panel.last
single = [r for r in results if r.config.get("processes", 1) == 1]  # one training process
multi = [r for r in results if r.config.get("processes", 1) > 1]    # several (a server counts too)
one_process_ratio = min(map(one_off, single)) / min(map(one_off, multi)) if single and multi else None
# what the repeats can tell apart: how far the two configurations' own repeats moved (None: one run each)
moved = [max(v) / min(v) - 1 for v in (values(min(g, key=one_off), "one_off_seconds") for g in (single, multi) if g)
         if len(v) > 1 and min(v) > 0]
one_process_noise = max(moved) if len(moved) == 2 else None

# %%
# NBVAL_IGNORE_OUTPUT
if one_process_ratio is None:
    print("This run has no pair of one-process and multi-process configurations (see `only`): nothing to divide.")
else:
    # a tie is the tempting wrong answer only where this run can tell the ratio from 1
    tie_apart = abs(one_process_ratio - 1) > (one_process_noise if one_process_noise is not None else 0.25)
    check_prediction(guess_one_process_ratio, one_process_ratio, noise=one_process_noise,
                     wrong={**({"a tie": 1.0} if tie_apart else {}), f"the ideal speed-up on {cores} cores": cores})

# %%
# NBVAL_IGNORE_OUTPUT
def parts(r):
    """'3.1 s (2.2 s set-up + 0.9 s training)', medians over the repeats."""
    return (f"{secs(one_off(r))} ({secs(spread(values(r, 'setup_seconds')).median)} set-up + "
            f"{secs(spread(values(r, 'train_seconds')).median)} training)")


if single and multi:
    s1, m1 = min(single, key=one_off), min(multi, key=one_off)
    saved = spread(values(s1, "train_seconds")).median - spread(values(m1, "train_seconds")).median
    added = spread(values(m1, "setup_seconds")).median - spread(values(s1, "setup_seconds")).median
    answer = (
        "A multi-process configuration's set-up + training is its start-up plus its training time, so it "
        "finishes sooner than one process only when the training time it saves is more than the start-up it "
        f"adds. This run (medians of {repeats} run(s) each): the best one-process configuration, {s1.label}, "
        f"took {parts(s1)}; the best multi-process one, {m1.label}, {parts(m1)}: a ratio of "
        f"{one_off(s1) / one_off(m1):.2f}. {m1.label} added {secs(added)} of set-up and "
        + (f"saved {secs(saved)} of training." if saved > 0 else f"trained {secs(-saved)} longer.")
        + " The summary checks the first half of this as a claim, and says where a longer job would "
        "change the answer.")
else:
    answer = "This run has no pair of one-process and multi-process configurations to compare (see `only`)."
worked_answer(answer)

# %% [markdown]
# **2. Samples or seconds?** In section 2, which picture should you use to decide whether a
# method *learns* worse, and which to decide whether it is *worth it*?
#
# <details><summary>Hint</summary>
#
# Which axis holds the amount of data fixed, and which the time you wait?
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
accs = {r.label: values(r, "test_accuracy") for r in results}
same = [k for k, v in accs.items() if len(v) > 1 and max(v) == min(v)]
worked_answer(
    "Loss against samples shows how much each configuration learned from the same examples: use it to "
    "decide whether a method learns worse. Loss against seconds shows what you wait for: use it to decide "
    "whether it is worth it. A configuration worth using comes first on seconds without learning less on "
    "samples. This run, after the same samples: test accuracy "
    + listing({k: spread(v).median for k, v in accs.items()}, pct)
    + f" (medians of {repeats} run(s) each, all with seed {seed})."
    + (f" {', '.join(same)} gave the same accuracy in every run (the same seed and data order), so "
       "these repeats do not say how much another seed would move them." if same else ""))

# %% [markdown]
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
by_time = [r.label for r in sorted(results, key=lambda r: r.cost["seconds"])]
by_energy = [r.label for r in sorted(results, key=lambda r: r.cost["energy_joules"])]
estimated = all(r.cost["energy_source"].startswith("estimated") for r in results)
worked_answer(
    "Billed by the hour, a run costs its wall time × the hourly price, so the ranking by cost is the ranking "
    "by the wall time of the whole call (the seconds in section 3's energy column, evaluations included: the "
    "machine is billed while it evaluates). Priced by electricity, a run costs its energy × the price per "
    "kWh, so the ranking follows the joules. "
    + ("This run's energy was estimated as a fixed power × the wall time for every run, so its two rankings "
       "are the same by construction; only measured energy can tell them apart."
       if estimated else
       "This run measured its energy, and the two rankings "
       + ("agree: " + ", ".join(by_time) if by_time == by_energy else
          f"differ: by wall time {', '.join(by_time)}; by energy {', '.join(by_energy)}") + ".")
    + f" Priced as {cloud.describe()}, its runs would cost "
    + ", ".join(f"{r.label} {money(cloud.cost(r.cost['seconds'], r.cost['energy_joules']))}" for r in results)
    + " (each configuration's median run).")

# %% [markdown]
# ## Summary
#
# The verdicts rank first by the one-off time, set-up + training (each configuration pays its
# own start-up; evaluation not counted), as `costtrain compare`, `costtrain advise` and notebook
# 06 do; then end to end with the evaluations; then a re-run in this kernel, whose warm workers
# skip most of the start-up. With one run each they name no winner.

# %%
# NBVAL_IGNORE_OUTPUT
busy = busy_note(results)
reached = [r for r in results if r.cost["cost_to_target"] is not None]
lines = [
    machine_note(results),
    f"- Same work ({total_epochs} epochs of {len(ds.train_y):,} images) for {len(results)} configurations "
    f"({', '.join(sorted({r.method for r in results}))}), {repeats} run(s) each in turn.",
    "- " + ranking_sentence("One-off runs, set-up + training (evaluation not counted)",
                            {r.label: values(r, "one_off_seconds") for r in results}, busy=busy) + ".",
    "- " + ranking_sentence("End to end, the evaluations included",
                            {r.label: values(r, "total_seconds") for r in results}, busy=busy) + ".",
    "- " + ranking_sentence("Re-run in this kernel (warm workers), end to end",
                            {r.label: values(r, "warm_total_seconds") for r in results}, busy=busy) + ".",
    "- " + ranking_sentence("Test accuracy", {r.label: values(r, "test_accuracy") for r in results}, pct,
                            higher_is_better=True, busy=busy, one_seed=True) + "."]  # compare repeats one seed
if reached:
    lines.append(f"- {len(reached)} of {len(results)} reached {pct(target)}. "
                 + target_sentence(to_target, pct(target), note=False, busy=busy)
                 + ". Cost to the target: " + ", ".join(f"{r.label} {money(r.cost['cost_to_target'])}" for r in reached)
                 + f" ({basis.describe()}; each run's energy source is in the table of section 3).")
else:
    lines.append(f"- No configuration reached {pct(target)} test accuracy.")
lines.append("- Figures: " + ", ".join(f"`{figures / n}`" for n in (
    "04_losses_samples.png", "04_losses_seconds.png", "04_accuracy_vs_time.png", "04_cost_to_target.png")))
display(Markdown(md("\n".join(lines))))

# %% [markdown]
# Is one process enough on this machine, for this job? The claim below compares the best
# configuration of each kind by set-up + training, over the repeats.

# %%
# NBVAL_IGNORE_OUTPUT
if single and multi:
    s1, m1 = min(single, key=one_off), min(multi, key=one_off)
    display(Markdown(md(f"Best one-process configuration: *{s1.label}*; best multi-process: *{m1.label}*.")))
    display(claim("04.one-process-first", values(m1, "one_off_seconds"), values(s1, "one_off_seconds"), busy=busy))
else:
    print("This run has no pair of one-process and multi-process configurations to compare (see `only`).")

# %% [markdown]
# And for a longer job? A configuration's one-off time for a job of *n* samples is predicted
# as set-up + *n* ÷ its steady rate; where two such lines cross, the configuration that
# starts later but trains faster takes over. The sentences below are computed from each
# configuration's repeats (a band from its fastest and slowest run), for jobs from one batch
# to 100 times this one, and the claim checks the steady rates behind them.

# %%
# NBVAL_IGNORE_OUTPUT
said = [] if busy else takeovers(results, len(ds.train_y))
display(Markdown(md("\n".join(f"- {x}" for x in said) if said else
                    f"No take-over predicted: {busy}." if busy else
                    "One run each: no band to predict a take-over from (set `repeats` to 2 or more)." if repeats < 2
                    else "Only one configuration ran (see `only`): nothing to take over from.")))
if single and multi:
    fastest = max(multi, key=lambda r: spread(values(r, "steady_samples_per_second")).median)
    display(Markdown(md(f"Steady rates: *{s1.label}* against the fastest multi-process configuration once "
                        f"started, *{fastest.label}*.")))
    display(claim("04.steady-rate", values(s1, "steady_samples_per_second"),
                  values(fastest, "steady_samples_per_second"), busy=busy))

# %% [markdown]
# ## The course's scoreboard
#
# Every notebook adds the runs it measured to one table (`out/scoreboard.json`, next to the
# notebooks): below, this notebook's runs (each configuration's median run) end to end, the
# evaluations included, against the fastest single process of the same job; notebook 06 shows
# the whole scoreboard. Runs are compared only within one job (the same data, model and work):
# notebooks that train other sizes get their own table.

# %%
# NBVAL_IGNORE_OUTPUT
scoreboard.record("04_compare", results)
NoWrap(scoreboard.show(notebook="04_compare"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
takeaways = [
    f"Compare on the same work and count the start-up, {total_epochs} epochs of {len(ds.train_y):,} images: "
    + ranking_sentence("one-off runs, set-up + training (evaluation not counted)",
                       {r.label: values(r, "one_off_seconds") for r in results}, busy=busy) + ".",
    f"Read learning on samples and cost on seconds: after the same samples the test accuracies spanned "
    f"{pct(min(spread(v).median for v in accs.values()))} to {pct(max(spread(v).median for v in accs.values()))}, "
    f"while set-up + training spanned {secs(min(one_off(r) for r in results))} to "
    f"{secs(max(one_off(r) for r in results))} (medians).",
    "Time to accuracy is the question a budget asks: " + target_sentence(
        to_target, pct(target), note=False, busy=busy) + ".",
    ("For a longer job (up to 100 times this one): " + longer_job(results) if said else
     "For a longer job: no take-over was predicted here (the summary says why)."),
    "One run decides nothing on a busy machine: `repeats` here, or `costtrain compare --repeats 3`, alternates "
    "the configurations and reports medians with ranges."]
closing("04_compare", takeaways, results)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
