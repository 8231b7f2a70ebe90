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
# - why unsynchronised writes still converge, what the paper assumed, and where the races
#   happen on a dense net like ours;
# - the original project's API (`train_model`, `log_elapsed_time`, `chart_losses`) on
#   configurations with the same total work, and costtrain's native `train_hogwild`;
# - the **thread-oversubscription** trap, measured: processes that each use every core for
#   their own threads crawl (notebook 01, section 3 explains the mechanism).
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
from costtrain.course import (chart_losses, check_prediction, epoch_splits, listing,
                              log_elapsed_time, machine_note, md, one_run_sentence, pct,
                              plot_losses, plot_worker_losses, rate, ratio_sentence, results_table,
                              run_header, run_panel, secs, summary, tensor_dataset,
                              threads_per_process, train_hogwild, train_model, warm_up,
                              worked_answer, worker, WorkerError)

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

# %% [markdown]
# ## 1. What one Hogwild! worker does
#
# `train_hogwild` moves the model's parameters into shared memory (`model.share_memory()`),
# starts `processes` worker processes with `spawn` (each a fresh Python interpreter that
# imports `costtrain` and receives the model: the parameters arrive as handles to the *same*
# memory, not as copies) and runs this loop in each of them. It is the package's code, read
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
#    the live plot below); worker 0 also evaluates the shared model now and then.
#
# **Where the races are.** While worker A runs its forward pass, worker B may be in the
# middle of `opt.step()`: A reads some layers before B's update and some after. And when A
# and B update the same weight at once, each reads it, adds its own step and writes it back:
# one of the two steps can be lost. On our dense conv net *every* step touches *every*
# parameter, so these collisions happen on every step, not rarely.
#
# **Why it still converges.** Niu et al. assumed a *sparse* problem: each update touches only
# a few coordinates of a huge parameter vector (a sparse SVM, matrix completion, graph cuts),
# so two workers rarely write the same coordinate, and they proved a nearly linear speed-up
# with a small enough step size. A dense net breaks the assumption, but with few workers and
# a small learning rate a lost or half-read update acts like a slightly *stale* gradient
# (computed on parameters a step or two old), the same thing the asynchronous parameter
# server of notebook 02 does on purpose. SGD tolerates that noise. With many workers or a
# large learning rate it stops being small: accuracy suffers, which the runs below let you
# check.

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
# *starting N process(es)* while the workers are spawned.
#
# A configuration with more processes than cores breaks the rule of step 1: costtrain then
# prints a one-line `CosttrainWarning: ... threads on ... core(s)` before it starts (the next cell
# says which configurations will do that on this machine). The run goes on; section 4 measures
# what it costs.

# %%
# NBVAL_IGNORE_OUTPUT
over = [n for (p, e), n in zip(configs, names) if p > cores]
display(Markdown(md(f"On this machine ({cores} cores): " + (
    f"**{', '.join(over)}** will print the oversubscription warning." if over
    else "no configuration has more processes than cores, so no warning is expected."))))

# %% [markdown]
# Each Hogwild! worker is a fresh Python process that imports torch: seconds on a laptop.
# costtrain keeps a kernel's workers warm between runs (its warm pool), so only the first
# run would pay that start-up, and it would look slower than its training is. The next cell
# starts as many workers as the largest configuration needs, once, and says how long that
# took; every run below reuses them, so their times compare the configurations, not who came
# first.

# %%
# NBVAL_IGNORE_OUTPUT
most = max(p for p, _ in configs)
print(f"starting {most} worker process(es): each imports torch, which takes seconds...", flush=True)
cold_start = warm_up(most)
print(f"started {most} worker process(es) in {cold_start:.1f} s, once; every run below reuses them")

# %%
# NBVAL_IGNORE_OUTPUT
loader = torch.utils.data.DataLoader(tensor_dataset(ds, "train"), batch_size=batch_size, shuffle=True)
test_loader = torch.utils.data.DataLoader(tensor_dataset(ds, "test"), batch_size=1000)
losses, original_seconds = {}, {}
for (processes, epochs_per_process), name in zip(configs, names):
    model = costtrain.SimpleNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    start = time.time()
    losses[name + " NN"] = train_model(model, loader, processes, epochs_per_process, optimizer, log_interval=-1,
                                       seed=seed, test_dataloader=test_loader, progress=progress)
    end = time.time()
    log_elapsed_time(processes, epochs_per_process, start, end)
    original_seconds[(processes, epochs_per_process)] = end - start

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
# plot shows the loss as the workers report it) or run the cell below it. Section 3b then runs
# every configuration of the `parameters`, with the `parameters` values, to compare them.

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
# ### 3b. Every configuration, same work
#
# **Exercise 1, predict first: more processes, fewer threads each?** The next cell names
# two configurations that 3b runs and asks for the ratio of their training seconds. Write your
# guess in the cell after it, before 3b runs; the Exercises at the end check it.
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
display(Markdown(md(
    f"Predict the training seconds of **{many[0]}x{many[1]}** ({many[0]} process(es) × "
    f"{threads_per_process(many[0])} thread(s) on {cores} cores) ÷ those of **{fit[0]}x{fit[1]}** "
    f"({fit[0]} × {threads_per_process(fit[0])}).")))

# %%
guess_train_ratio = None  # your guess: training seconds of the first configuration above ÷ of the second

# %%
# NBVAL_IGNORE_OUTPUT
native = {(p, e): train_hogwild("simple", ds, processes=p, epochs_per_process=e, batch_size=batch_size, lr=lr,
                                momentum=momentum, seed=seed, progress=progress) for p, e in configs}
runs = list(native.values())
print(results_table(runs))

# %%
# NBVAL_IGNORE_OUTPUT
plot_losses(runs, figures / "03_native_losses.png", x="seconds",
            title="train_hogwild: training loss against training seconds")
display(plot_losses(runs, x="seconds", title="train_hogwild: training loss against training seconds"))
display(Markdown(md(
    "**Measured:** " + one_run_sentence("Training seconds", {r.label: r.train_seconds for r in runs})
    + ". Set-up: " + listing({r.label: r.setup_seconds for r in runs})
    + "; test accuracy: " + listing({r.label: r.test_accuracy for r in runs}, pct) + ".")))

# %% [markdown]
# ## 4. The thread-oversubscription trap, measured
#
# The same small job runs twice: once with every process using **all cores**
# (`threads=cores`, what you get without thinking about it), once with the **right budget**
# (`threads=cores // processes`). The first run breaks the rule on purpose, so costtrain
# prints its oversubscription warning for it. The slow run is stopped about
# `oversub_timeout` seconds after its processes have started, so we compare throughput, not
# completion (`oversub_timeout = 0` skips this section).

# %%
# NBVAL_IGNORE_OUTPUT
if oversub_timeout > 0:
    small = costtrain.load_dataset(dataset, subset=oversub_subset, test_subset=500, seed=seed)
    budget = threads_per_process(oversub_processes)
    good = train_hogwild("simple", small, processes=oversub_processes, threads=budget, batch_size=batch_size,
                         lr=lr, seed=seed, timeout=max(120.0, 10 * oversub_timeout), progress=progress)
    # the cap: as long as the good run took to start its processes (twice, for safety) plus oversub_timeout
    cap = 2 * good.setup_seconds + oversub_timeout
    try:
        bad = train_hogwild("simple", small, processes=oversub_processes, threads=cores, batch_size=batch_size,
                            lr=lr, seed=seed, timeout=cap, progress=progress)
    except WorkerError as stopped:  # the cap was hit: keep what the workers trained until then
        bad = stopped.result
    good.label = f"{oversub_processes} processes x {budget} thread(s): cores // processes"
    bad.label = f"{oversub_processes} processes x {cores} threads: all cores each"
    display(NoWrap(results_table([bad, good])))  # a wide table: keep its columns
else:
    print("skipped (oversub_timeout is 0)")

# %%
# NBVAL_IGNORE_OUTPUT
if oversub_timeout > 0:
    fig, ax = plt.subplots(figsize=(6.5, 2.6), layout="constrained")
    ax.barh([bad.label, good.label], [bad.samples_per_second, good.samples_per_second], color=["tab:red", "tab:green"])
    ax.set(xlabel="samples / s (training)", title=f"Thread oversubscription on {cores} cores")
    fig.savefig(figures / "03_oversubscription.png", dpi=90)
    plt.show()
    slowdown = good.samples_per_second / max(bad.samples_per_second, 1e-9)
    if bad.samples == 0:
        verdict = f"the oversubscribed run did not finish a single logged step before it was stopped after {secs(cap)}."
    elif oversub_processes * cores <= cores:
        verdict = "with one process, 'all cores' is the right budget, so both runs are the same configuration."
    else:
        verdict = (f"the right budget trained {slowdown:.2f}x the samples/s of all cores each (one run each; "
                   "a ratio near 1 is within what one run varies, a large one is the trap).")
    display(Markdown(md(
        f"**Measured:** *{bad.label}* trained {rate(bad.samples_per_second)}, *{good.label}* "
        f"{rate(good.samples_per_second)}: {verdict}"
        + (f" The oversubscribed run was stopped after {secs(cap)} with {bad.samples:,} of "
           f"{oversub_processes * len(small.train_y):,} samples trained ({bad.status})." if bad.status != "ok" else ""))))

# %% [markdown]
# ## Exercises
#
# **1. More processes, fewer threads each?** Your guess went into `guess_train_ratio`
# before 3b ran; the next cell checks it against the two configurations it named. Then try
# others with the panel and compare the `train` seconds.

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_train_ratio, native[many].train_seconds / native[fit].train_seconds)

# %%
# NBVAL_IGNORE_OUTPUT
threads_many, threads_fit = threads_per_process(many[0]), threads_per_process(fit[0])
worked_answer(
    (f"{many[0]} processes × {threads_many} thread(s) are {many[0] * threads_many} threads on {cores} cores: the "
     "cores can run only as many at once, so the extra processes add no compute; they add process start-ups, "
     "context switches and more write collisions on the shared parameters (the warning before the run says so). "
     "Expect a ratio at or above 1. "
     if many[0] * threads_many > cores else
     f"Both fit the {cores} cores ({many[0]} × {threads_many} and {fit[0]} × {threads_fit} threads): the "
     "question is whether processes that share the parameters without locks use the cores better than "
     "threads inside fewer processes. For a small net they often do a little, so expect a ratio near 1. ")
    + "This run: " + ratio_sentence(native[many].label, native[many].train_seconds, native[fit].label,
                                    native[fit].train_seconds, "training seconds")
    + ". On other core counts the answer changes: that is why the notebook never hard-codes it.")

# %% [markdown]
# **2. Races and the learning rate.** Predict: with 4 processes, does a learning rate of 0.1
# hurt the final accuracy more than with 1 process? Try it with the panel (1 × 4 and 4 × 1 at
# learning rate 0.1).
#
# <details><summary>Hint</summary>
#
# A lost or stale update is a step in a slightly wrong direction; how big is the step?
# </details>
#
# <details><summary>Worked answer</summary>
#
# Expect yes: the error a race introduces scales with the learning rate, and with more
# processes there are more races. Niu et al.'s guarantee needs a small enough step size. Compare
# the test accuracy of 1 × 4 and 4 × 1 at both rates: one run of each varies by a point or
# more, so look for a gap larger than that, or a run that diverges.
# </details>
#
# **3. Set-up cost.** The cell before section 2's runs started the workers once, cold; every
# run of 3b reused them, warm. Does the cold start grow with the number of processes? For which
# jobs does it matter, and when does a run pay it?
#
# <details><summary>Hint</summary>
#
# Every spawned process starts a Python interpreter and imports PyTorch. A notebook kernel or a
# script keeps its workers; a one-off `costtrain run` starts them each time.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
shortest = min(runs, key=lambda r: r.train_seconds)
worked_answer(
    "It grows with the number of processes (they start in parallel, but share the cores while importing "
    "PyTorch), and a one-off run pays it every time; a re-run in the same kernel or script does not. "
    f"This run: starting {most} worker process(es) cold took {secs(cold_start)}; the runs of 3b, reusing "
    f"them, recorded set-ups of {secs(min(r.setup_seconds for r in runs))} to "
    f"{secs(max(r.setup_seconds for r in runs))}. The cold start was {cold_start / shortest.train_seconds:.2f}x "
    f"the shortest training time of 3b ({shortest.label}, {secs(shortest.train_seconds)}): "
    + ("a one-off run of this job would spend longer starting its workers than training."
       if cold_start > shortest.train_seconds else
       "a one-off run of this job pays it on top of its training; a job many times longer hardly notices."))

# %% [markdown]
# **4. Your own model, from a `.py` file.** Train your own network with Hogwild!. Worker
# processes are started with `spawn`, so they must be able to *import* the model's class: a
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
#
# <details><summary>Worked answer</summary>
#
# ```python
# # my_model.py
# import torch.nn as nn
#
# class MyNet(nn.Module):
#     def __init__(self):
#         super().__init__()
#         self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))
#
#     def forward(self, x):
#         return self.net(x)
# ```
#
# ```python
# # in the notebook
# from my_model import MyNet
# r = train_hogwild(MyNet(), ds, processes=2, epochs_per_process=1, progress=True)
# print(summary(r))
# ```
#
# This MLP has far more parameters than `"simple"` but much less compute per parameter, so
# each update writes more shared memory per unit of work: more collisions, and more time
# writing than computing. Expect a different speed-up than with the conv net.
# </details>

# %% [markdown]
# ## Where Hogwild! shines: sparse models
#
# Niu et al.'s experiments were sparse problems, where each update touches a few coordinates
# and collisions are rare; the dense conv net above is the hard case for Hogwild!.
#
# **Next:** [03b_sparse_hogwild.ipynb](03b_sparse_hogwild.ipynb) runs the same `train_hogwild`
# call on a sparse model and on this dense net, and measures where the speed-up comes from and
# where it fades.

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT
lines = [
    machine_note(runs),
    "- " + one_run_sentence("Original API, end to end",
                            {f"{p}x{e}": s for (p, e), s in original_seconds.items()}) + ".",
    "- " + one_run_sentence("Native API, steady state",
                            {r.label: r.steady_samples_per_second for r in runs}, rate) + "."]
if oversub_timeout > 0:
    lines.append(f"- Oversubscription, one run each: {oversub_processes} processes trained "
                 f"{rate(good.samples_per_second)} with {budget} thread(s) each and "
                 f"{rate(bad.samples_per_second)} with {cores} each.")
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
accs = [100 * r.test_accuracy for r in runs]
takeaways = [f"Hogwild! takes no lock and almost no code change: {len(runs)} configuration(s) of the same work "
             f"reached {pct(min(accs) / 100)} to {pct(max(accs) / 100)} test accuracy despite the races."]
takeaways.append("Judge processes end to end, set-up included: " + one_run_sentence(
    "end to end", {r.label: r.total_seconds for r in runs}, note=False,
    detail="set-up " + listing({r.label: r.setup_seconds for r in runs})) + ". One run names no winner.")
if oversub_timeout > 0:
    takeaways.append(f"Oversubscription is the trap: {oversub_processes} processes with {cores} threads each trained "
                     f"{rate(bad.samples_per_second)}, with {budget} thread(s) each {rate(good.samples_per_second)} "
                     "(one run each).")
takeaways.append("Hogwild! shines when each step touches few weights: the next notebook, 03b, measures that.")
closing("03_hogwild", takeaways, runs)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
