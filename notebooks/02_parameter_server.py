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
# # 02 · A parameter server: sync and async
#
# A **parameter server** keeps the model on one process (rank 0, the server) while worker
# processes compute gradients on their own mini-batches and send them in. costtrain builds it
# on `torch.distributed` (gloo): the same code runs on one machine (it launches the server
# and the workers itself on 127.0.0.1) and across machines under `torchrun`.
#
# **You will learn**
# - the worker's and the server's loops, read from the package, and the push/pull protocol;
# - **sync** mode: each step the server averages every worker's gradient, updates, and sends
#   the new parameters back: mathematically large-batch SGD (batch = workers × batch size);
# - **async** mode: each worker pushes its gradient and pulls the latest parameters on its
#   own; gradients computed on old parameters are *stale*, and we measure how stale;
# - how much time goes to communication against computation;
# - the `torchrun` commands that run the same thing across two machines.
#
# **Primary sources.** Dean et al., [*Large Scale Distributed Deep Networks*](https://proceedings.neurips.cc/paper_files/paper/2012/hash/6aca97005c68f1206823815f66102863-Abstract.html)
# (NIPS 2012, DistBelief's asynchronous "Downpour SGD"); Li et al.,
# [*Scaling Distributed Machine Learning with the Parameter Server*](https://www.usenix.org/conference/osdi14/technical-sessions/presentation/li_mu)
# (OSDI 2014); Goyal et al., [*Accurate, Large Minibatch SGD*](https://arxiv.org/abs/1706.02677)
# (2017, the linear learning-rate scaling rule); PyTorch's
# [multiprocessing best practices](https://pytorch.org/docs/stable/notes/multiprocessing.html).
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.
# Every run starts processes, which takes seconds: watch the set-up column.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import inspect
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (check_prediction, format_table, listing, machine_note, md,
                              one_run_sentence, pct, rate, results_table, run_header, run_panel,
                              secs, serve, span, summary, train_parameter_server, work,
                              worked_answer)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening

opening("02_parameter_server")

# %% [markdown]
# ## Parameters
#
# The next cell holds the values this notebook runs with (small, so that it finishes quickly).
# Change them here, or let papermill inject others (`costtrain notebooks -p subset=60000`,
# `costtrain notebooks --ci`). Figures go to `out/figures/` next to the notebooks (not tracked
# by git); only the reference build (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 6000         # training images (None: all 60,000)
test_subset = 2000    # test images (None: all 10,000)
epochs = 1            # passes over the training set (all workers together)
workers_list = None   # worker counts to compare; None: 1 and 2 (and 4 on 4+ cores)
batch_size = 64       # per worker and step
lr = 0.01
momentum = 0.5        # the server's SGD momentum (the same optimizer as notebook 01)
scale_lr = True       # sync: the server steps with lr x workers (the linear scaling rule)
seed = 42
timeout = 60.0        # seconds any wait on a peer may take before the run fails
progress = True
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "02_parameter_server")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
cores = costtrain.num_cores()
workers_list = workers_list or ([1, 2, 4] if cores >= 4 else [1, 2])
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
plan = [(mode, w) for mode in ("sync", "async") for w in workers_list]
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images")
print(f"work per run: {epochs} epoch(s) = {epochs * len(ds.train_y):,} samples shared by the workers, "
      f"batch size {batch_size} per worker, SGD lr {lr}, momentum {momentum}, scale_lr {scale_lr}")
print("runs:", ", ".join(f"ps-{m} {w} worker{'s' if w > 1 else ''}" for m, w in plan), "+ a baseline")

# %% [markdown]
# ## 1. The protocol: push gradients, pull parameters
#
# Each worker holds a private copy of the model and a shard of the data. One step of a worker:
# compute the gradient of its next mini-batch, **push** it to the server, **pull** back the
# parameters, copy them into its model. The server owns the optimizer: it applies gradients
# and answers. The two modes differ only in *when* the server steps:

# %% [markdown]
# ![The parameter server's push and pull: in sync mode the server waits for every worker's gradient and steps once; in async mode it steps on each gradient as it arrives, so a slower worker's gradient can be one version stale](diagrams/parameter_server.svg)
#
# A worker's loop, exactly as the package runs it (`work`). The message is
# one flat tensor: a header (batch size, the parameter version the gradient was computed on,
# the summed loss), then every gradient, then the model's buffers. `dist.send` and
# `dist.recv` block, so a worker waits while the server is busy with others: that wait is
# counted as communication.

# %%
# NBVAL_CHECK_OUTPUT
display(Markdown(md(f"```python\n{inspect.getsource(work)}```")))

# %% [markdown]
# The server's loop (`serve`): one receiving thread per worker puts
# messages in an inbox; the loop takes them one at a time. In **async** mode it applies each
# gradient at once (`srv.apply([payload])`) and answers that worker; in **sync** mode it keeps
# them in `pending` until every active worker has sent one, then applies their
# batch-size-weighted mean in one step and answers all of them. `srv.apply` also records the
# staleness: the server's version now minus the version the gradient was computed on.

# %%
# NBVAL_CHECK_OUTPUT
display(Markdown(md(f"```python\n{inspect.getsource(serve)}```")))

# %% [markdown]
# ## 2. Your run
#
# The panel sets **the run of this section**: mode, number of workers, batch size per worker
# and learning rate. Press **Run**, or run the cell below it. Each worker gets
# `cores // (workers + 1)` threads (at least one; the `+ 1` is the server), so that workers
# and server do not oversubscribe the cores. The progress bar first says *starting server
# and workers* (spawning the processes and connecting them takes seconds), then counts the
# samples the server has applied.

# %%
def ps_run(v, live):
    """One parameter-server run with the panel's values `v`."""
    mode = v["method"].removeprefix("ps-")
    live.start(f"ps-{mode} {v['workers']} worker(s)")
    r = train_parameter_server("simple", ds, mode=mode, workers=v["workers"], epochs=epochs,
                               batch_size=v["batch_size"], lr=v["lr"], momentum=momentum, scale_lr=scale_lr,
                               seed=seed, timeout=timeout, progress=progress, on_progress=live)
    live.finish(r)
    print(summary(r))
    return r


panel = run_panel("02_parameter_server", ps_run, method="ps-sync", methods=("ps-sync", "ps-async"),
                  workers=workers_list[-1], batch_size=batch_size, lr=lr)
panel

# %%
# NBVAL_IGNORE_OUTPUT
mine = panel.run()

# %% [markdown]
# ## 3. Sync vs async, and the number of workers
#
# Same data, same number of epochs, the `parameters` values in every run; only the mode and
# the number of workers change. The reference is a single-process baseline with all cores and
# the same optimizer (SGD with `momentum`). Sync mode averages the workers' gradients, so each
# step sees `workers × batch_size` samples at the same learning rate; `scale_lr = True`
# applies the linear scaling rule (`lr × workers`, Goyal et al.) to make up for the fewer
# steps.
#
# **Exercise 1, predict first: the staleness.** With `W` async workers that each take about
# as long per step, what mean staleness do you expect for the async run with the most
# workers below? Write it in the next cell before the runs; the Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# Between a worker's pull and its next push, how many *other* workers' gradients does the
# server apply, if they take turns?
# </details>

# %%
guess_staleness = None  # your guess: mean staleness of the async run with the most workers

# %%
# NBVAL_IGNORE_OUTPUT
reference = costtrain.train_baseline("simple", ds, epochs=epochs, batch_size=batch_size, lr=lr,
                                     momentum=momentum, seed=seed, progress=progress)
by_config = {(mode, w): train_parameter_server("simple", ds, mode=mode, workers=w, epochs=epochs,
                                               batch_size=batch_size, lr=lr, momentum=momentum,
                                               scale_lr=scale_lr, seed=seed, timeout=timeout, progress=progress)
             for mode, w in plan}
runs = list(by_config.values())
print(results_table([reference] + runs))

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
width = 0.38
for i, mode in enumerate(("sync", "async")):
    rs = [by_config[mode, w] for w in workers_list]
    ax.bar([j + (i - 0.5) * width for j in range(len(rs))], [r.samples_per_second for r in rs],
           width, label=f"ps-{mode}")
ax.axhline(reference.samples_per_second, color="k", ls="--", lw=1, label="baseline, all cores")
ax.set_xticks(range(len(workers_list)), [f"{w} worker{'s' if w > 1 else ''}" for w in workers_list])
ax.set(ylabel="samples / s (training)", title="Parameter server throughput")
fig.legend(fontsize=8, loc="outside right upper")
fig.savefig(figures / "02_ps_throughput.png", dpi=90)
plt.show()

# %% [markdown]
# ### Why sync mode scales the learning rate
#
# With K workers, one sync step averages K batches, so an epoch takes K times fewer steps than
# the baseline's. At the same learning rate the model moves about K times less per epoch and
# can end behind at equal samples. Scaling the learning rate by K (Goyal et al. 2017) gives
# each averaged step the move of K plain steps. The cell below trains sync with the most workers once more with the rule
# switched the other way and compares both with the baseline, on this run's data.

# %%
# NBVAL_IGNORE_OUTPUT
k_most = max(workers_list)
other = train_parameter_server("simple", ds, mode="sync", workers=k_most, epochs=epochs, batch_size=batch_size,
                               lr=lr, momentum=momentum, scale_lr=not scale_lr, seed=seed, timeout=timeout,
                               progress=progress)
scaled, plain = (by_config["sync", k_most], other) if scale_lr else (other, by_config["sync", k_most])
rows = [[r.label, r.config.get("server_lr", lr), r.extra.get("steps", "-"), 100 * r.test_accuracy]
        for r in (reference, plain, scaled)]
print(format_table(rows, ["run", "lr of the steps", "steps", "test acc %"]))
display(Markdown(md(
    f"**Measured, one run each (one seed):** sync with {k_most} worker(s) took {plain.extra['steps']:,} server "
    f"steps (the baseline took {len(ds.train_y) // batch_size * epochs:,} or so). At lr {lr} it reached "
    f"{pct(plain.test_accuracy)} test accuracy, with lr × {k_most} = {lr * k_most:g} "
    f"{pct(scaled.test_accuracy)}; the baseline {pct(reference.test_accuracy)} "
    f"({100 * (scaled.test_accuracy - reference.test_accuracy):+.1f} points with the rule, "
    f"{100 * (plain.test_accuracy - reference.test_accuracy):+.1f} without). One seed decides no winner: "
    "`benchmarks/parameter_server.py --seeds 1 2 3` averages over seeds.")))

# %% [markdown]
# ## 4. Communication vs compute
#
# Each worker times the two halves of every step: computing its gradient (forward and
# backward) and talking to the server (sending the gradient, receiving the parameters, and
# waiting for its turn). A small net means little compute per step, so messages can dominate.

# %%
# NBVAL_IGNORE_OUTPUT
labels = [r.label for r in runs]
comm = [r.extra["comm_seconds"] for r in runs]          # mean per worker
compute = [r.extra["compute_seconds"] for r in runs]
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
ax.barh(labels, compute, label="compute (forward + backward)")
ax.barh(labels, comm, left=compute, label="communication + waiting")
ax.set(xlabel="seconds per worker", title="Where the workers' time goes")
fig.legend(fontsize=8, loc="outside lower center", ncol=2)
fig.savefig(figures / "02_comm_compute.png", dpi=90)
plt.show()
share = {r.label: r.extra["comm_share"] for r in runs}
lo, hi = min(share, key=share.get), max(share, key=share.get)
display(Markdown(md(f"**Measured, one run each:** communication and waiting took {pct(share[lo])} of the "
                    f"workers' time in *{lo}* and {pct(share[hi])} in *{hi}*; the rest was computing gradients.")))

# %% [markdown]
# ## 5. Staleness in async mode
#
# In async mode a worker's gradient was computed on parameters that other workers may have
# updated since. The *staleness* of a gradient is the number of server updates that happened
# in between; sync mode has staleness 0 by construction.

# %%
# NBVAL_IGNORE_OUTPUT
async_runs = [r for r in runs if r.config["mode"] == "async"]
most = max(async_runs, key=lambda r: r.config["workers"])
stale = most.extra["staleness"]
hist = {int(k): v for k, v in sorted(stale["histogram"].items(), key=lambda kv: int(kv[0]))}
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.bar(list(hist), list(hist.values()), color="tab:orange")
ax.xaxis.get_major_locator().set_params(integer=True)  # staleness is a whole number
ax.set(xlabel="staleness (server updates between pull and push)", ylabel="gradients",
       title=f"Staleness, {most.label}")
fig.savefig(figures / "02_staleness.png", dpi=90)
plt.show()
total = sum(hist.values()) or 1
display(Markdown(md(f"**Measured:** with {most.config['workers']} async worker(s) the mean staleness was "
                    f"{stale['mean']:.2f} updates (max {stale['max']}); {pct(hist.get(0, 0) / total)} "
                    "of the gradients were computed on the latest parameters (one run).")))

# %% [markdown]
# ## 6. Across machines with `torchrun`
#
# On one machine `train_parameter_server` starts the server and the workers itself. Across
# machines, start the same code with `torchrun` on each machine: rank 0 (the server) on the
# first one. The transport is unauthenticated, so use it on a network you trust only.
# The commands below are filled in with this notebook's parameters.

# %%
# NBVAL_CHECK_OUTPUT
w = workers_list[-1]
args = " ".join(a for a in [f"--mode sync --epochs {epochs} --batch-size {batch_size} --lr {lr}",
                            f"--momentum {momentum}" if momentum else "", "--scale-lr" if scale_lr else "--no-scale-lr",
                            f"--subset {subset}" if subset else ""] if a)
dist = "--nnodes 2 --master-addr 192.168.1.10 --master-port 29500 --rdzv-conf timeout=60"
print("\n".join([
    f"# on this machine first: the server plus {w} workers",
    f"torchrun --standalone --nproc-per-node {w + 1} -m costtrain.parameter_server {args}",
    "",
    f"# two machines: A (192.168.1.10) runs the server and {w} workers, B runs {w + 1} more workers",
    f"torchrun {dist} --node-rank 0 --nproc-per-node {w + 1} -m costtrain.parameter_server {args}  # on A",
    f"torchrun {dist} --node-rank 1 --nproc-per-node {w + 1} -m costtrain.parameter_server {args}  # on B",
]))

# %% [markdown]
# ## Exercises
#
# **1. The staleness.** Your guess went into `guess_staleness` before section 3 ran; the next
# cell checks it (within 50 %, since staleness is a small number).

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_staleness, max((r for r in runs if r.config["mode"] == "async"),
                                      key=lambda r: r.config["workers"]).extra["staleness"]["mean"], tolerance=0.5)

# %%
# NBVAL_IGNORE_OUTPUT
w_most = most.config["workers"]
worked_answer(
    f"About `W - 1`: while one worker computes, each of the others pushes once; with one worker it is 0. "
    f"This run: {w_most} async worker(s), so `W - 1` = {w_most - 1}, and the measured mean was "
    f"{stale['mean']:.2f} (one run). Measured values fall below `W - 1` when the workers share the cores "
    "unevenly (one gets ahead) and above it when one is slowed down.")

# %% [markdown]
# **2. Sync is large-batch SGD.** Pick `ps-sync` with 2 workers and batch size 32 in the panel
# and press **Run**. Which single-process batch size does this step match, and how many server
# steps should the run take for one epoch of `subset` images? Check `steps` in the printed
# result (`mine.extra["steps"]`).
#
# <details><summary>Hint</summary>
#
# Each sync step averages one batch from every worker.
# </details>
#
# <details><summary>Worked answer</summary>
#
# Batch 64 (2 × 32), and about `subset / 64` steps per epoch (a little more when the last
# batches of the shards are smaller). That is why `scale_lr = True` doubles the learning rate
# with 2 workers: the linear scaling rule of Goyal et al. (2017).
# </details>
#
# **3. Where the time goes.** Communication took the share of the workers' time printed in
# section 4. Predict whether it grows or shrinks with a bigger batch size per worker, then
# try batch size 256 in the panel.
#
# <details><summary>Hint</summary>
#
# A message carries every parameter whatever the batch size; the compute grows with the batch.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    "Expect it to shrink: the message size is fixed by the model, so a bigger batch does more compute per "
    "message. This is the main lever of a parameter server: a net with much compute per parameter "
    "(convolutions on big images) hides communication better than a tiny one. This run, at batch size "
    f"{batch_size} per worker (one run each): communication and waiting took "
    + ", ".join(f"{pct(share[r.label])} in {r.label}" for r in runs)
    + "; compare with your run at batch size 256.")

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT
everyone = [reference] + runs
warm_runs = [r for r in runs if not r.extra["startup"].get("cold", True)]  # reused warm processes
display(Markdown(md("\n".join([
    machine_note(everyone),
    "- " + one_run_sentence("Training throughput", {r.label: r.samples_per_second for r in everyone}, rate) + ".",
    "- Test accuracy, one run each: " + listing({r.label: r.test_accuracy for r in everyone}, pct) + ".",
    f"- Set-up of the parameter-server runs as a one-off run pays it (starting processes, connecting): "
    f"{span([r.setup_seconds for r in runs], secs)}, against {secs(reference.setup_seconds)} for the baseline"
    + (f"; {len(warm_runs)} of the {len(runs)} runs here reused warm processes and waited "
       f"{span([r.warm_setup_seconds for r in warm_runs], secs)}"
       if warm_runs else "") + ". End to end as one-off runs, one run each: "
    + listing({r.label: r.total_seconds for r in everyone}) + ".",
    f"- Figures: `{figures / '02_ps_throughput.png'}`, `{figures / '02_comm_compute.png'}`, "
    f"`{figures / '02_staleness.png'}`."]))))

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

scoreboard.record("02_parameter_server", [reference] + runs)
NoWrap(scoreboard.show(notebook="02_parameter_server"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
closing("02_parameter_server", [
    f"A parameter server's workers spend part of every step on messages: here "
    f"{pct(min(share.values()))} to {pct(max(share.values()))} of their time went to communicating or "
    "waiting; " + one_run_sentence("training throughput against the baseline",
                                   {r.label: r.samples_per_second / reference.samples_per_second for r in runs},
                                   lambda x: f"{x:.2f}x", note=False) + ".",
    f"Sync is large-batch SGD, for which the rule of thumb scales the learning rate by the workers: with {k_most} worker(s), "
    f"lr x {k_most} reached {pct(scaled.test_accuracy)}, lr {lr} {pct(plain.test_accuracy)} (one run each, one seed).",
    f"Async never waits but steps on stale gradients: mean staleness {stale['mean']:.2f} updates with "
    f"{most.config['workers']} worker(s).",
    f"Processes cost start-up before the first step of a one-off run: {span([r.setup_seconds for r in runs], secs)}, "
    f"against {secs(reference.setup_seconds)} for the baseline"
    + (f"; a re-run in the same kernel reuses them ({secs(max(r.warm_setup_seconds for r in warm_runs))} at most here)."
       if warm_runs else "."),
], everyone)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
