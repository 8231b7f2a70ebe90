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
# # 03 · Hogwild!: several processes, one shared model, no locks
#
# **Hogwild!** (Niu, Recht, Ré and Wright,
# [*HOGWILD!: A Lock-Free Approach to Parallelizing Stochastic Gradient Descent*](https://arxiv.org/abs/1106.5730),
# NIPS 2011) puts the model's parameters in shared memory and lets several processes run SGD
# on them at the same time, without locks. Updates sometimes overwrite each other; the paper
# proves that for *sparse* problems this costs almost nothing, and it needs almost no code
# change. PyTorch's [multiprocessing best practices](https://pytorch.org/docs/stable/notes/multiprocessing.html)
# describe the same recipe (`share_memory()` plus worker processes).
#
# **You will learn**
# - what one Hogwild! worker does each step, read from the package's own loop;
# - what the paper assumed to prove that unsynchronised writes converge, and where the races
#   happen on a dense net like ours;
# - the original project's API (`train_model`, `log_elapsed_time`, `chart_losses`) and
#   costtrain's native `train_hogwild` on configurations with the same total work, each run
#   started as a one-off run is (its workers' start-up included), and what this run says about
#   processes against threads, start-up and accuracy;
# - the **thread-oversubscription** trap: what happens to processes that each use every core
#   for their own threads, measured (notebook 01, section 3 explains the mechanism).
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import inspect
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (busy_note, chart_losses, check_prediction, claim, close_all, epoch_splits,
                              log_elapsed_time, machine_note, md, multiply_adds, one_run_sentence, pct,
                              plot_losses, plot_worker_losses, rate, ratio_sentence, ready_workers,
                              results_table, run_header, run_panel, secs, span, step_footprint, summary,
                              tensor_dataset,
                              threads_per_process, train_hogwild, train_model, worked_answer, worker,
                              WorkerError)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening

from costtrain.course import NoWrap

opening("03_hogwild")

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
total_epochs = 4        # total work: processes x epochs per process
configs = None          # (processes, epochs per process); None: 1 x all, all x 1, and one split between
batch_size = 64
lr = 0.01
momentum = 0.5
seed = 42
oversub_processes = 2   # the oversubscription demo: processes ...
oversub_subset = 2000   # ... on this many images ...
oversub_timeout = 20.0  # ... and the slow run stopped this many seconds after start-up; 0 skips the demo
progress = True
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "03_hogwild")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
cores = costtrain.num_cores()
splits = epoch_splits(total_epochs)
configs = [tuple(c) for c in configs] if configs else list(dict.fromkeys([splits[0], splits[-1]] + splits[1:-1][:1]))
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
names = [f"{p} process{'es' if p > 1 else ''} x {e} epoch{'s' if e > 1 else ''}" for p, e in configs]
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images")
print(f"configurations, each {total_epochs} epochs of work = {total_epochs * len(ds.train_y):,} samples: "
      + ", ".join(names))

# %%
# NBVAL_IGNORE_OUTPUT
print(ready_workers())  # the fork server, once, before the first multi-process run this notebook measures

# %% [markdown]
# ## 1. What one Hogwild! worker does
#
# `train_hogwild` moves the model's parameters into shared memory (`model.share_memory()`),
# starts `processes` worker processes (on Linux forked from the package's *fork server*, a
# process that imported torch and the package's loops once; on macOS and Windows spawned, each
# a fresh Python interpreter that imports `costtrain`), hands each the model (the parameters
# arrive as handles to the *same* memory, not as copies) and runs this loop in each of them. It is the package's code, read
# from the package's `worker`:

# %%
# NBVAL_CHECK_OUTPUT
display(Markdown(md(f"```python\n{inspect.getsource(worker)}```")))

# %% [markdown]
# Step by step:
#
# 1. **Threads.** `torch.set_num_threads(job.threads)`: `cores // processes` threads (at
#    least 1), so that as long as there are no more processes than cores, the workers together
#    run no more threads than there are cores (notebook 01, section 3). With more processes
#    than cores each still gets one thread, the threads outnumber the cores, and costtrain
#    warns (section 2).
# 2. **Its own data order.** `seed_everything(job.seed + rank)`: every worker shuffles the
#    data differently, so they do not all compute the same gradients at the same time.
# 3. **Its own optimizer.** `job.optimizer(list(model.parameters()))` builds an SGD optimizer
#    *inside the worker*, over the shared parameters. The parameters are shared; the momentum
#    buffers are private to each worker.
# 4. **Wait for the start signal**, so that the clock measures training, not process start-up.
# 5. **The SGD loop** is the ordinary one: `zero_grad`, forward, loss, `backward`,
#    `opt.step()`. The gradients live in the worker's own memory. Only `opt.step()` touches
#    the shared parameters: it writes `p -= lr * update` into the memory all workers read.
#    **No lock** is taken, here or anywhere.
# 6. Every `log_every` batches it reports its progress to the parent (the progress bar and
#    the live plot below). Every `eval_every` samples (all workers together) every worker
#    parks at its next step while the parent evaluates the shared model, a pause kept off
#    the training clock as in the baseline.
#
# **Where the races are.** While worker A runs its forward pass, worker B may be in the
# middle of `opt.step()`: A reads some layers before B's update and some after. And when A
# and B update the same weight at once, each reads it, adds its own step and writes it back:
# one of the two steps can be lost. How many weights does one step of our dense conv net
# write? The next cell counts them, without training:

# %%
# NBVAL_CHECK_OUTPUT
footprint = step_footprint(costtrain.SimpleNN(), ds.train_x[:batch_size], ds.train_y[:batch_size])
display(Markdown(md(
    f"One SGD step of `SimpleNN` on a batch of {batch_size} images writes **{footprint['written']:,} of its "
    f"{footprint['total']:,} parameters** ({100 * footprint['fraction']:.0f} %): any two steps that overlap in "
    "time write the same weights.")))

# %% [markdown]
# **Why it still converges.** Niu et al. assumed a *sparse* problem: each update touches only
# a few coordinates of a huge parameter vector (a sparse SVM, matrix completion, graph cuts),
# so two workers rarely write the same coordinate, and they proved a nearly linear speed-up
# with a small enough step size. A dense net breaks that assumption. Later analyses of
# asynchronous SGD drop it: a lost or half-read update acts like a *stale* gradient (computed
# on parameters a step or two old, the same thing the asynchronous parameter server of
# notebook 02 does on purpose), and SGD still converges when the staleness, which grows with
# the number of workers, and the step size are small enough: Lian et al.,
# [*Asynchronous Parallel Stochastic Gradient for Nonconvex Optimization*](https://arxiv.org/abs/1506.08272)
# (NIPS 2015), for non-convex problems such as nets, and De Sa et al.,
# [*Taming the Wild*](https://arxiv.org/abs/1506.06438) (NIPS 2015), for Hogwild!-style
# updates without the sparsity assumption. Whether the races cost accuracy on this net, at
# this learning rate and with these few workers, is what section 3.2 checks on your run.

# %% [markdown]
# ![Two Hogwild! workers on a timeline: each reads the shared weights, computes a gradient and writes its step without a lock; where their writes overlap one step can be lost, and a worker's gradient can be computed on weights another worker has since changed](diagrams/hogwild_races.svg)

# %% [markdown]
# ## 2. The original API: `train_model`
#
# The original project trains a model you build, through a `DataLoader` you build, with an
# optimizer you build: `train_model(model, train_dataloader, num_processes,
# epochs_per_process, optimizer)`. It prints the test accuracy and returns the training
# losses; `log_elapsed_time` prints the wall time, end to end, and `chart_losses` draws the
# curves. The progress bar counts the samples all processes have trained; it first says
# *starting N process(es)* while the workers start.
#
# **Exercise 1, predict first: more processes, fewer threads each?** The next cell names two
# configurations that this section and section 3.2 both run, and asks for the ratio of their
# training seconds. Both print those seconds: write your guess in the cell after it before
# you run them; the Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# Each process gets `max(1, cores // processes)` threads. How many threads can the cores run at
# once? The total work is the same. What do extra processes add besides work?
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
many = max(configs)  # the most processes
fit = max((c for c in configs if c != many and c[0] <= cores), default=min(configs))  # the most that fit the cores
linear = fit[0] / many[0]  # the tempting answer: the time falls as the processes grow
display(Markdown(md(
    f"Predict the training seconds of **{many[0]}x{many[1]}** ({many[0]} process(es) × "
    f"{threads_per_process(many[0])} thread(s) on {cores} cores) ÷ those of **{fit[0]}x{fit[1]}** "
    f"({fit[0]} × {threads_per_process(fit[0])})."
    + ("" if many != fit else " (This run has one configuration: set `total_epochs = 4` for two to compare.)"))))

# %%
guess_train_ratio = None  # your guess, a number such as 1.5 (no quotes): training seconds of the first ÷ the second

# %% [markdown]
# A configuration with more processes than cores breaks the rule of step 1: costtrain then
# prints a one-line `CosttrainWarning: ... threads on ... core(s)` before it starts, with the
# fix that applies (the next cell says which configurations will do that on this machine, and
# what the warning will advise). The run goes on; Exercise 1 checks what the extra processes
# cost.

# %%
# NBVAL_IGNORE_OUTPUT
over = [n for (p, e), n in zip(configs, names) if p > cores]
display(Markdown(md(f"On this machine ({cores} cores): " + (
    f"**{', '.join(over)}** will print the oversubscription warning: its processes already have one "
    f"thread each, so the fix it names is fewer processes (at most {cores})." if over
    else "no configuration has more processes than cores, so no oversubscription warning is expected."))))

# %% [markdown]
# **Set-up, one definition.** Every table and log line of the course reports the *set-up* of a
# run as a one-off run pays it: from the call to the first training step, the worker
# processes' start-up included. On Linux each worker is forked from the package's fork server
# ([how workers start](../docs/hogwild.md#safety-and-the-warm-pool)),
# which imported torch once: the cell that loaded the data started it, as `costtrain run` does
# while it imports torch, so no run below pays that import. On macOS and Windows each worker
# is spawned instead, a fresh Python interpreter that imports PyTorch. costtrain keeps a kernel's workers for the next run (its *warm pool*), and a re-run in the
# same kernel that reuses them pays much less: the tables show that too, as the *warm set-up*.
# So that each configuration pays the start-up of its own workers, not of whichever ran
# before it, every run of this section and of section 3.2 starts fresh ones, as a one-off
# script does: `close_all()` empties the warm pool before it (the fork server stays, started
# before the first of them).

# %%
# NBVAL_IGNORE_OUTPUT
loader = torch.utils.data.DataLoader(tensor_dataset(ds, "train"), batch_size=batch_size, shuffle=True)
test_loader = torch.utils.data.DataLoader(tensor_dataset(ds, "test"), batch_size=1000)
losses, original_seconds, original = {}, {}, {}
for (processes, epochs_per_process), name in zip(configs, names):
    close_all()  # fresh workers: this run pays its own start-up, as a one-off run does
    model = costtrain.SimpleNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    records = []  # costtrain's addition: the run's record (set-up, training, testing times)
    start = time.time()
    losses[name + " NN"] = train_model(model, loader, processes, epochs_per_process, optimizer, log_interval=-1,
                                       seed=seed, test_dataloader=test_loader, progress=progress,
                                       results=records)
    end = time.time()
    log_elapsed_time(processes, epochs_per_process, start, end)
    original_seconds[(processes, epochs_per_process)] = end - start
    original[(processes, epochs_per_process)] = records[0]

# %%
# NBVAL_IGNORE_OUTPUT
fig = chart_losses(losses, title=f"Hogwild! training losses, {total_epochs} epochs of work each")
fig.savefig(figures / "03_hogwild_losses.png", dpi=90)
fig

# %% [markdown]
# ## 3. The native API: `train_hogwild`
#
# `train_hogwild` does the same with in-memory (shared) tensors and returns a `RunResult`:
# set-up (starting processes), training and evaluation times apart, throughput, and each
# process's loss curve.
#
# The panel sets **the run of this section**: the split of the `total_epochs` of work into
# processes × epochs per process, the batch size and the learning rate. Press **Run** (the live
# plot shows the loss as the workers report it) or run the cell below it. It reuses the
# workers the last run of section 2 left warm when it needs no more; its summary gives the
# one-off set-up and the warm one. Section 3.2 then runs every configuration of the
# `parameters`, with the `parameters` values, to compare them.

# %%
def hogwild_run(v, live):
    """One Hogwild! run with the panel's values `v`."""
    p, e = v["processes"], v["epochs_per_process"]
    live.start(f"hogwild {p}x{e}")
    r = train_hogwild("simple", ds, processes=p, epochs_per_process=e, batch_size=v["batch_size"], lr=v["lr"],
                      momentum=momentum, seed=seed, progress=progress, on_progress=live)
    live.finish(r)
    print(summary(r))
    display(plot_worker_losses(r))
    return r


panel = run_panel("03_hogwild", hogwild_run, total_epochs=total_epochs, processes=configs[-1][0],
                  batch_size=batch_size, lr=lr)
panel

# %%
# NBVAL_IGNORE_OUTPUT
mine = panel.run()

# %% [markdown]
# ### 3.2. Every configuration, same work
#
# Every configuration again, with `train_hogwild`, each starting fresh workers. The original
# API and `train_hogwild` run the same worker loop on the same in-memory data with the same
# settings but another seed (`seed + 1` here: other initial weights, another data order), so
# every configuration has now run twice, from two seeds: the claims below compare
# configurations only where the two runs of one lie apart from the two runs of the other (the
# ranges rule).

# %%
# NBVAL_IGNORE_OUTPUT
native = {}
for p, e in configs:
    close_all()  # fresh workers, as in section 2
    native[(p, e)] = train_hogwild("simple", ds, processes=p, epochs_per_process=e, batch_size=batch_size, lr=lr,
                                   momentum=momentum, seed=seed + 1, progress=progress)
runs = list(native.values())
print(results_table(runs))

# %%
# NBVAL_IGNORE_OUTPUT
plot_losses(runs, figures / "03_native_losses.png", x="seconds",
            title="train_hogwild: training loss against training seconds")
display(plot_losses(runs, x="seconds", title="train_hogwild: training loss against training seconds"))
both = {c: (original[c], native[c]) for c in configs}  # the two runs of each configuration


def two(field, fmt=secs, scale=1.0):
    """`field` of the two runs of every configuration: "1x4 3.1 s and 3.4 s; ..."."""
    return "; ".join(f"{p}x{e} " + " and ".join(fmt(scale * getattr(r, field)) for r in both[(p, e)])
                     for p, e in configs)


display(Markdown(md(
    f"**Measured**, two runs of each configuration (the original API's with seed {seed}, then "
    f"`train_hogwild`'s with seed {seed + 1}): "
    f"training seconds {two('train_seconds')}. Set-up, one-off: {two('setup_seconds')}; warm (what a re-run "
    f"in this kernel would have paid): {two('warm_setup_seconds')}. Steady state: "
    f"{two('steady_samples_per_second', rate)}. Test accuracy: {two('test_accuracy', pct)}.")))
single = (1, total_epochs) if (1, total_epochs) in both else min(configs)  # one process, every core's threads
split = max((c for c in configs if single[0] < c[0] <= cores), default=None)  # the most processes that fit the cores
if split is not None:
    display(Markdown(md(
        f"Notebook 01 asked whether more processes use cores that extra threads cannot: {split[0]}x{split[1]} "
        f"({split[0]} processes × {threads_per_process(split[0])} thread(s)) against {single[0]}x{single[1]} "
        f"({single[0]} process{'es' if single[0] > 1 else ''} × {threads_per_process(single[0])} thread(s)).")))
    display(claim("03.processes-beat-threads", [r.train_seconds for r in both[split]],
                  [r.train_seconds for r in both[single]], busy=busy_note([*both[split], *both[single]])))
if many != single:
    display(Markdown(md(f"Section 1 asked whether the races cost accuracy: {many[0]}x{many[1]}, the most processes, "
                        f"against {single[0]}x{single[1]}, one process, at equal samples.")))
    display(claim("03.races-cost-accuracy", [100 * r.test_accuracy for r in both[many]],
                  [100 * r.test_accuracy for r in both[single]]))

# %% [markdown]
# ## 4. The thread-oversubscription trap, measured
#
# The same small job runs with the **right budget** (`threads=cores // processes`) twice, so
# that the two say how much one run moves, then once with every process using **all cores**
# (`threads=cores`, what you get without thinking about it). That run breaks the rule on
# purpose, so costtrain prints its oversubscription warning for it. The slow run is stopped
# about `oversub_timeout` seconds after its processes have started, so we compare throughput,
# not completion (`oversub_timeout = 0` skips this section).

# %%
# NBVAL_IGNORE_OUTPUT
if oversub_timeout > 0:
    small = costtrain.load_dataset(dataset, subset=oversub_subset, test_subset=500, seed=seed)
    budget = threads_per_process(oversub_processes)
    goods = [train_hogwild("simple", small, processes=oversub_processes, threads=budget, batch_size=batch_size,
                           lr=lr, seed=seed, timeout=max(120.0, 10 * oversub_timeout), progress=progress)
             for _ in range(2)]
    good = goods[0]
    # the cap: as long as the good run took to start its processes (twice, for safety) plus oversub_timeout
    cap = 2 * good.setup_seconds + oversub_timeout
    try:
        bad = train_hogwild("simple", small, processes=oversub_processes, threads=cores, batch_size=batch_size,
                            lr=lr, seed=seed, timeout=cap, progress=progress)
    except WorkerError as stopped:  # the cap was hit: keep what the workers trained until then
        bad = stopped.result
    for i, g in enumerate(goods, 1):
        g.label = f"{oversub_processes} processes x {budget} thread(s): cores // processes, run {i}"
    bad.label = f"{oversub_processes} processes x {cores} threads: all cores each"
    display(NoWrap(results_table([bad, *goods])))  # a wide table: keep its columns
else:
    print("skipped (oversub_timeout is 0)")

# %%
# NBVAL_IGNORE_OUTPUT
if oversub_timeout > 0:
    fig, ax = plt.subplots(figsize=(6.5, 2.6), layout="constrained")
    ax.barh([bad.label, *(g.label for g in goods)], [bad.samples_per_second, *(g.samples_per_second for g in goods)],
            color=["tab:red", "tab:green", "tab:green"])
    ax.set(xlabel="samples / s (training)", title=f"Thread oversubscription on {cores} cores")
    fig.savefig(figures / "03_oversubscription.png", dpi=90)
    plt.show()
    good_rates = [g.samples_per_second for g in goods]
    stick = max(good_rates) / max(min(good_rates), 1e-9)  # how much one run of the right budget moved
    display(Markdown(md(
        f"**Measured:** *all cores each* trained {rate(bad.samples_per_second)}; the right budget "
        f"{' and '.join(rate(x) for x in good_rates)} in its two runs."
        + (f" The oversubscribed run was stopped after {secs(cap)} with {bad.samples:,} of "
           f"{oversub_processes * len(small.train_y):,} samples trained ({bad.status})." if bad.status != "ok" else ""))))
    if oversub_processes * cores <= cores:
        display(Markdown(md("With one process, 'all cores' is the right budget: both runs are the same configuration.")))
    else:
        display(claim("03.oversubscription-slows", bad.samples_per_second, good_rates, yardstick=stick,
                      busy=busy_note([bad, *goods])))

# %% [markdown]
# ## Exercises
#
# **1. More processes, fewer threads each?** Your guess went into `guess_train_ratio`
# before section 2 ran; the next cell checks it against `train_hogwild`'s two runs of the
# configurations it named. Then try others with the panel and compare the `train` seconds.

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_train_ratio, native[many].train_seconds / native[fit].train_seconds,
                 wrong={"time in inverse proportion to the processes": linear})

# %%
# NBVAL_IGNORE_OUTPUT
threads_many, threads_fit = threads_per_process(many[0]), threads_per_process(fit[0])
oversubscribed = many[0] * threads_many > cores
costs = (" " + claim("03.oversubscribed-slower", [r.train_seconds for r in both[many]],
                     [r.train_seconds for r in both[fit]],
                     busy=busy_note([*both[many], *both[fit]])).markdown() if oversubscribed else "")
worked_answer(
    (f"{many[0]} processes × {threads_many} thread(s) are {many[0] * threads_many} threads on {cores} cores, "
     f"and the cores run {cores} at a time: the extra processes add no compute, so the same work cannot take "
     f"{linear:.2g} of the time, as it would if time fell as the processes grew. What they can add is time "
     "(switching between processes, more steps that overlap in the shared weights): the claim at the end "
     "checks it on the two runs of each. "
     if oversubscribed else
     f"Both fit the {cores} cores ({many[0]} × {threads_many} and {fit[0]} × {threads_fit} threads): the "
     "question is whether processes that share the parameters without locks use the cores better than "
     f"threads inside fewer processes. Time would fall to {linear:.2g} only if the threads of the fewer "
     "processes used no core at all; section 3.2's claim checks which uses the cores better. ")
    + "This run (`train_hogwild`): " + ratio_sentence(native[many].label, native[many].train_seconds,
                                                     native[fit].label, native[fit].train_seconds,
                                                     "training seconds")
    + "; the original API's: " + ratio_sentence(original[many].label, original[many].train_seconds,
                                               original[fit].label, original[fit].train_seconds,
                                               "training seconds")
    + ". On other core counts the answer changes: that is why the notebook never hard-codes it." + costs)

# %% [markdown]
# **2. Races and the learning rate.** Predict: with the most processes, does a learning rate
# of 0.1 hurt the final accuracy more than with one process? Try it with the panel (one
# process and the most processes, at learning rates 0.01 and 0.1).
#
# <details><summary>Hint</summary>
#
# A lost or stale update is a step in a slightly wrong direction; how big is the step?
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
gaps = [abs(a.test_accuracy - b.test_accuracy) for a, b in both.values()]
worked_answer(
    "Niu et al. prove their speed-up only for a small enough step size, and the analyses of stale "
    "gradients cited in section 1 bound the damage by the step size and the staleness (which grows with "
    "the workers). A lost update is a step of `lr` times a gradient: at ten times the learning rate, ten "
    "times as much can be lost or applied to weights that have moved. Compare the test accuracy of one "
    "process and of the most processes at both rates, and judge a gap against how much one run moves: "
    f"here the two runs of one configuration ended {span(gaps, lambda g: f'{100 * g:.1f} points')} apart "
    "(section 3.2), so only a larger gap says something; a run that diverges says it at once.")

# %% [markdown]
# **3. Set-up cost.** Every run of sections 2 and 3.2 started its workers cold. Does the cold
# start grow with the number of processes? For which jobs does it matter, and when does a run
# pay it?
#
# <details><summary>Hint</summary>
#
# On Linux each worker is forked from the fork server, which imported PyTorch once (its start
# was printed where the data was loaded); on macOS and Windows each worker is spawned and imports
# PyTorch itself. A notebook kernel or a script keeps its workers; a one-off `costtrain run`
# starts them each time. Compare the one-off set-ups the runs printed.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
shortest = min(runs, key=lambda r: r.train_seconds)
grows = (f" Whether the cold start grows with the processes, {many[0]}x{many[1]} against {single[0]}x{single[1]}, "
         "two runs each: " + claim("03.cold-start-grows", [r.setup_seconds for r in both[many]],
                                   [r.setup_seconds for r in both[single]],
                                   busy=busy_note([*both[many], *both[single]])).markdown()
         if many != single else " This run has one configuration, so it cannot compare start-ups.")
worked_answer(
    "A one-off run pays the start-up of its workers every time; a re-run in the same kernel or script "
    "reuses them (the warm pool) and pays the warm set-up only. "
    f"This run, one-off set-ups: {two('setup_seconds')}; warm: {two('warm_setup_seconds')}. "
    f"{shortest.label} trained for {secs(shortest.train_seconds)} after a one-off set-up of "
    f"{secs(shortest.setup_seconds)}: "
    + ("a one-off run of it spent longer starting its workers than training."
       if shortest.setup_seconds > shortest.train_seconds else
       "a one-off run of it paid that on top of its training; a job many times longer hardly notices.")
    + grows)

# %% [markdown]
# **4. Your own model, from a `.py` file.** Train your own network with Hogwild!. Worker
# processes receive the model's class by name (forked from the fork server or spawned, as
# section 1 says), so they must be able to *import* it: a
# class defined in a notebook cell cannot reach them (costtrain refuses it with a clear
# error). Write a file `my_model.py` next to this notebook with a small `nn.Module` (say, two
# linear layers for 28×28 images and 10 classes), import it, and train it with 2 processes.
# Compare its accuracy and speed with `"simple"`.
#
# <details><summary>Hint</summary>
#
# `train_hogwild` takes an `nn.Module` instead of a model name. JupyterLab: File > New >
# Python File, or the `%%writefile my_model.py` cell magic.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
# the worked answer's two linear layers, built here only to count them (no training)
mlp_counts = multiply_adds(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 128), torch.nn.ReLU(),
                                               torch.nn.Linear(128, 10)), (1, 28, 28))
conv_counts = multiply_adds(costtrain.SimpleNN(), (1, 28, 28))
worked_answer(
    "```python\n"
    "# my_model.py\n"
    "import torch.nn as nn\n\n"
    "class MyNet(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))\n\n"
    "    def forward(self, x):\n"
    "        return self.net(x)\n"
    "```\n\n"
    "```python\n"
    "# in the notebook\n"
    "from my_model import MyNet\n"
    "r = train_hogwild(MyNet(), ds, processes=2, epochs_per_process=1, progress=True)\n"
    "print(summary(r))\n"
    "```\n\n"
    f"Counted from the shapes: `MyNet` has {mlp_counts['parameters']:,} parameters and "
    f"{mlp_counts['forward']:,} multiply-adds per image forward ({mlp_counts['forward'] / mlp_counts['parameters']:.1f} "
    f"per parameter); `\"simple\"` has {conv_counts['parameters']:,} parameters and {conv_counts['forward']:,} "
    f"({conv_counts['forward'] / conv_counts['parameters']:.0f} per parameter). Every step of either writes every "
    "parameter, so `MyNet`'s workers write "
    f"{(conv_counts['forward'] / conv_counts['parameters']) / (mlp_counts['forward'] / mlp_counts['parameters']):.0f}x "
    "as much shared memory per multiply-add: compare its speed-up with the conv net's on your run.")

# %% [markdown]
# ## Where Hogwild! shines: sparse models
#
# Niu et al.'s experiments were sparse problems, where each update touches a few coordinates
# and two workers rarely write the same one; the dense conv net above breaks that assumption
# (section 1 counted every weight written by every step).
#
# **Next:** [03b_sparse_hogwild.ipynb](03b_sparse_hogwild.ipynb) runs the same `train_hogwild`
# call on a sparse model and on this dense net, and measures whether the speed-up is larger
# there, where it comes from and whether it fades.

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT
lines = [
    machine_note([*runs, *original.values()]),
    "- " + one_run_sentence("Original API, end to end (fresh workers each: one-off runs)",
                            {f"{p}x{e}": s for (p, e), s in original_seconds.items()}) + ".",
    f"- Both APIs, two runs of each configuration: one-off set-up {two('setup_seconds')}; steady state "
    f"{two('steady_samples_per_second', rate)}."]
if oversub_timeout > 0:
    lines.append(f"- Oversubscription: {oversub_processes} processes trained "
                 f"{' and '.join(rate(x) for x in good_rates)} with {budget} thread(s) each (two runs) and "
                 f"{rate(bad.samples_per_second)} with {cores} each (one run).")
figs = ["03_hogwild_losses.png", "03_native_losses.png"] + (["03_oversubscription.png"] if oversub_timeout > 0 else [])
lines.append("- Figures: " + ", ".join(f"`{figures / f}`" for f in figs))
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

scoreboard.record("03_hogwild", runs)
NoWrap(scoreboard.show(notebook="03_hogwild"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
accs = [r.test_accuracy for pair in both.values() for r in pair]
takeaways = [f"Hogwild! takes no lock and almost no code change: {len(configs)} configuration(s) of the same work, "
             f"two runs each, reached {span(accs)} test accuracy."
             + (" Whether the races cost accuracy, most processes against one: "
                + claim("03.races-cost-accuracy", [100 * r.test_accuracy for r in both[many]],
                        [100 * r.test_accuracy for r in both[single]]).markdown() if many != single else "")]
takeaways.append(f"Judge processes end to end, set-up included: one-off end to end {two('total_seconds')}, of which "
                 f"set-up {two('setup_seconds')} (two runs each). More processes win a one-off run only when the "
                 "training time they save exceeds the start-up they add.")
if oversub_timeout > 0 and oversub_processes * cores > cores:
    takeaways.append(f"Oversubscription is the trap: {oversub_processes} processes with {cores} threads each trained "
                     f"{rate(bad.samples_per_second)}, with {budget} thread(s) each "
                     f"{' and '.join(rate(x) for x in good_rates)}. "
                     + claim("03.oversubscription-slows", bad.samples_per_second, good_rates, yardstick=stick,
                             busy=busy_note([bad, *goods])).markdown())
takeaways.append("Niu et al. proved near-linear speed-ups for sparse problems, where each step touches few weights: "
                 "the next notebook, 03b, measures that on this machine.")
closing("03_hogwild", takeaways, [*runs, *original.values()])

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
