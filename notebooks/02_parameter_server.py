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
#   the new parameters back: mathematically large-batch SGD (batch = workers × batch size;
#   Goyal et al. 2017, section 2);
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
# A one-off run pays for starting its processes and connecting them (the `setup s` column of
# the tables); a re-run in the same kernel reuses the warm processes (`warm setup s`). The
# summary at the end says what this notebook's runs paid.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import inspect
import math
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (check_prediction, claim, format_table, listing, machine_note, md,
                              multiply_adds, one_run_sentence, pct, rate, results_table, run_header,
                              run_panel, secs, serve, span, summary, threads_per_process,
                              train_parameter_server, work, worked_answer)

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
# The next cell holds the values this notebook runs with. Change them here, or let papermill
# inject others (`costtrain notebooks -p subset=60000`, `costtrain notebooks --ci`). Figures go
# to `out/figures/` next to the notebooks (not tracked by git); only the reference build
# (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 6000         # training images (None: all 60,000)
test_subset = 2000    # test images (None: all 10,000)
epochs = 1            # passes over the training set (all workers together)
workers_list = None   # worker counts to compare; None: 1 and 2 (and 4 on 4+ cores); 1 always runs (the yardstick)
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
# one worker always runs: sync and async then take the same steps, the yardstick of section 3
workers_list = sorted({1, *(workers_list or ([1, 2, 4] if cores >= 4 else [1, 2]))})
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
plan = [(mode, w) for mode in ("sync", "async") for w in workers_list]
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images")
print(f"work per run: {epochs} epoch(s) = {epochs * len(ds.train_y):,} samples shared by the workers, "
      f"batch size {batch_size} per worker, SGD lr {lr}, momentum {momentum}, scale_lr {scale_lr}")
print("runs:", ", ".join(f"ps-{m} {w} worker{'s' if w > 1 else ''}" for m, w in plan), "+ a baseline")

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import ready_workers

print(ready_workers())  # the fork server, once, before the first multi-process run this notebook measures

# %% [markdown]
# ## 1. The protocol: push gradients, pull parameters
#
# Each worker holds a private copy of the model and a shard of the data. One step of a worker:
# compute the gradient of its next mini-batch, **push** it to the server, **pull** back the
# parameters, copy them into its model. The server owns the optimizer: it applies gradients
# and answers. The two modes differ only in *when* the server steps:

# %% [markdown]
# ![The parameter server's push and pull: in sync mode the server waits for every worker's gradient and steps once; in async mode it steps on each gradient as it arrives, so a worker's gradient can be stale (section 5 measures by how many versions)](diagrams/parameter_server.svg)
#
# A worker's loop, exactly as the package runs it (`work`). The message is
# one flat tensor: a header (batch size, the parameter version the gradient was computed on,
# the summed loss), then every gradient, then the model's buffers; the answer is the
# parameters behind a header of three (the version, go on or stop, and the seconds the server
# spent evaluating the test set while this gradient waited). `dist.send` and `dist.recv`
# block, so a worker waits while the server is busy with other workers' gradients: that wait
# is counted as communication. A wait for the server's evaluation is not: the worker takes it
# out of its communication time and its training clock (`evaluating`), as the server takes it
# out of its own.

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
# `cores // (workers + 1)` threads (at least one; the `+ 1` counts the server), the server
# one. The next cell says, for this machine, which runs stay within the cores and which
# outnumber them. The progress bar first says *starting server and workers* while the
# processes start and connect, then counts the samples the server has applied.

# %%
# NBVAL_IGNORE_OUTPUT
over = [w for w in workers_list if (w + 1) * threads_per_process(w + 1) > cores]  # the package's check
display(Markdown(md(f"On this machine ({cores} cores): " + "; ".join(
    f"{w} worker(s) × {threads_per_process(w + 1)} thread(s) + the server's 1 = "
    f"{w * threads_per_process(w + 1) + 1} threads in {w + 1} processes"
    + (" (more processes than cores)" if w in over else "") for w in workers_list) + ". " + (
    f"The runs with {' and '.join(str(w) for w in over)} worker(s), the panel's included, will print the "
    "oversubscription warning: their processes take turns on the cores. They run anyway, and section 4 "
    "shows where the workers' time goes." if over else
    "No run has more processes than cores, so no oversubscription warning is expected."))))

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
# the same optimizer (SGD with `momentum`) and initial model. It runs without the levers of
# notebook 01b on purpose: here it is also the same SGD as the one-worker runs (the yardstick
# below), and a lever such as bf16 would change its arithmetic; notebooks 04, 05 and 06 give
# their one-machine baseline the levers 01b kept. Sync mode averages the workers'
# gradients, so each step sees `workers × batch_size` samples; `scale_lr = True` steps with
# `lr × workers`, the linear scaling rule of
# [Goyal et al. (2017)](https://arxiv.org/abs/1706.02677), section 2.1, to make up for the
# fewer steps (`scale_lr = False` keeps `lr`).
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

# %% [markdown]
# **How much one run moves.** With one worker, sync and async both apply each gradient as it
# arrives: the two runs take the same steps in the same order, so their accuracy is the same
# and only their timings differ. The baseline is the same SGD too (batch size, learning rate,
# momentum, initial model) and draws its batches in another order. So the accuracies of these
# three runs differ only by the order of the data, and the two one-worker runs' shares of time
# spent communicating differ only by the machine's noise: the next cell measures both spreads,
# the yardsticks this notebook judges a difference between single runs by.

# %%
# NBVAL_IGNORE_OUTPUT
def points(r):
    """Test accuracy in points, rounded so that equal accuracies compare equal."""
    return round(100 * r.test_accuracy, 6)


same_sgd = [reference, by_config["sync", 1], by_config["async", 1]]
resolution = 100 / len(ds.test_y)  # one test image, in points of accuracy
acc_stick = max(max(map(points, same_sgd)) - min(map(points, same_sgd)), resolution)  # as a claim subtracts
shares_1w = [by_config[m, 1].extra["comm_share"] for m in ("sync", "async")]
share_stick = max(shares_1w) / min(shares_1w) * (1 + 1e-9)  # the pair that sets it never beats it by rounding
display(Markdown(md(
    f"**Yardsticks, measured:** test accuracy {listing({r.label: r.test_accuracy for r in same_sgd}, pct)}: "
    f"one run moves up to {acc_stick:.2g} points here (at least one test image, {resolution:.2g} points); "
    f"communicating and waiting took {span(shares_1w)} of the one-worker runs' time: one run's share moves "
    f"up to {share_stick:.2f}x here.")))

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
# With K workers, one sync step averages K batches, so an epoch takes about K times fewer
# steps than the baseline's (the cell below counts them). At the same learning rate each step
# moves the model as one plain step does, so an epoch moves it about K times less. Scaling the
# learning rate by K gives each averaged step about the move of K plain steps, as long as the
# gradient changes little over K steps ([Goyal et al. 2017](https://arxiv.org/abs/1706.02677),
# section 2.1). The cell below trains sync with the most workers once more with the rule
# switched the other way and compares both with the baseline, on this run's data; the two
# claims after it are checked against the accuracy yardstick.

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
base_steps = math.ceil(len(ds.train_y) / batch_size) * epochs  # the baseline steps its last, smaller batch too
display(Markdown(md(
    f"**Counted and measured, one run each (one seed):** sync with {k_most} worker(s) took "
    f"{plain.extra['steps']:,} server steps, the baseline {base_steps:,} ({base_steps / plain.extra['steps']:.2f} "
    f"times as many; K = {k_most}). At lr {lr} sync reached {pct(plain.test_accuracy)} test accuracy, with "
    f"lr × {k_most} = {lr * k_most:g} {pct(scaled.test_accuracy)}; the baseline {pct(reference.test_accuracy)}. "
    "`benchmarks/parameter_server.py --seeds 1 2 3` repeats this over seeds.")))
display(claim("02.plain-lr-behind", points(plain), points(reference), yardstick=acc_stick))
display(claim("02.scaled-lr-catches-up", points(scaled), points(plain), yardstick=acc_stick))

# %% [markdown]
# ## 4. Communication vs compute
#
# Each worker times the two halves of every step: computing its gradient (forward and
# backward) and talking to the server (sending the gradient, receiving the parameters, and
# waiting for its turn and, in sync mode, for the other workers). A wait while the server
# evaluates the test set is in neither (this notebook's runs evaluate only at the end). The
# cell below first counts what one step of a worker computes and sends.

# %%
# NBVAL_IGNORE_OUTPUT
work_per_sample = multiply_adds(costtrain.build_model("simple", ds.input_shape, ds.num_classes), ds.input_shape)
payload = runs[0].extra["comm"]["payload_bytes"]  # one gradient as sent: the same in every run
display(Markdown(md(
    f"**Counted:** one step of a worker at batch size {batch_size} computes "
    f"{(work_per_sample['forward'] + work_per_sample['backward']) * batch_size / 1e6:,.0f} M multiply-adds "
    f"(forward and backward) and sends {payload:,} bytes (its gradient: {work_per_sample['parameters']:,} "
    "parameters of 4 bytes, and a short header), then receives the parameters back.")))
labels = [r.label for r in runs]
comm = [r.extra["comm_seconds"] for r in runs]          # mean per worker
compute = [r.extra["compute_seconds"] for r in runs]
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
ax.barh(labels, compute, label="compute (forward + backward)")
ax.barh(labels, comm, left=compute, label="communication + waiting (turn, other workers)")
ax.set(xlabel="seconds per worker", title="Where the workers' time goes")
fig.legend(fontsize=8, loc="outside lower center", ncol=2)
fig.savefig(figures / "02_comm_compute.png", dpi=90)
plt.show()
share = {r.label: r.extra["comm_share"] for r in runs}
lo, hi = min(share, key=share.get), max(share, key=share.get)
display(Markdown(md(f"**Measured, one run each:** communication and waiting took {pct(share[lo])} of the "
                    f"workers' time in *{lo}* and {pct(share[hi])} in *{hi}*; the rest was computing gradients "
                    f"(one run's share moves up to {share_stick:.2f}x here).")))

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
# first one. The transport is unauthenticated and unencrypted (PyTorch's security policy,
# [*Using distributed features*](https://github.com/pytorch/pytorch/blob/main/SECURITY.md#using-distributed-features);
# the package's [security notes](../docs/parameter-server.md#security)), so use it on a network
# you trust only.
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
most_async = max((r for r in runs if r.config["mode"] == "async"), key=lambda r: r.config["workers"])
w_async = most_async.config["workers"]
check_prediction(guess_staleness, most_async.extra["staleness"]["mean"], tolerance=0.5,
                 wrong={"no staleness": 0.0, "W, counting the worker itself": w_async} if w_async > 1 else None)

# %%
# NBVAL_IGNORE_OUTPUT
w_most = most.config["workers"]
worked_answer(
    "About `W - 1`, if the workers take turns evenly: between a worker's pull and its push each of the "
    "other `W - 1` workers pushes once, and each push is one server update; with one worker it is 0. "
    f"This run: {w_most} async worker(s), so `W - 1` = {w_most - 1}, and the measured mean was "
    f"{stale['mean']:.2f} (one run; the histogram in section 5 shows how the turns actually fell: "
    + ", ".join(f"{pct(v / total)} at {k}" for k, v in hist.items()) + ").")

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

# %%
# NBVAL_IGNORE_OUTPUT
w2, b2 = 2, 32  # the exercise's choice
shard = math.ceil(len(ds.train_y) / w2)  # the largest worker's share of the data
asked = panel.last if (panel.last is not None and panel.last.config.get("mode") == "sync"
                       and panel.last.config.get("workers") == w2
                       and panel.last.config.get("batch_size") == b2) else None
worked_answer(
    "The batch of one process that takes the same steps: workers × batch size, since each sync step averages "
    "one batch from every worker. Sync takes as many steps per epoch as the worker with the most data needs: "
    "ceil(its share of the images / batch size). That is why `scale_lr = True` multiplies the learning rate by "
    "the workers: the linear scaling rule of Goyal et al. (2017) for a batch that many times larger. "
    f"This run: batch {w2 * b2} ({w2} × {b2}); the largest share is {shard:,} of the {len(ds.train_y):,} images, "
    f"so ceil({shard:,} / {b2}) × {epochs} epoch(s) = {math.ceil(shard / b2) * epochs:,} steps (against "
    f"{math.ceil(len(ds.train_y) / (w2 * b2)) * epochs:,} if the images split into whole batches of {w2 * b2}); "
    f"the learning rate lr × {w2} = {lr * w2:g}. "
    + (f"Your run took {asked.extra['steps']:,} steps." if asked else
       "Your panel run was not this one: pick `ps-sync`, 2 workers and batch size 32, press **Run**, then run "
       "this cell again to see its steps."))

# %% [markdown]
# **3. Where the time goes.** Communication took the share of the workers' time printed in
# section 4. Predict whether it grows or shrinks with a bigger batch size per worker, then
# try batch size 256 in the panel. (The worked answer trains that run itself if your panel has
# not: a few seconds.)
#
# <details><summary>Hint</summary>
#
# A message carries every parameter whatever the batch size; the compute grows with the batch.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
bigger = panel.last if (panel.last is not None and panel.last.method.startswith("ps-")
                        and panel.last.config.get("batch_size", 0) > batch_size
                        and (panel.last.config["mode"], panel.last.config["workers"]) in by_config) else None
if bigger is None:  # the reader's panel has not run one: train it here, once
    bigger = train_parameter_server("simple", ds, mode="sync", workers=k_most, epochs=epochs,
                                    batch_size=4 * batch_size, lr=lr, momentum=momentum, scale_lr=scale_lr,
                                    seed=seed, timeout=timeout, progress=progress)
same = by_config[bigger.config["mode"], bigger.config["workers"]]
b_big = bigger.config["batch_size"]
flops = work_per_sample["forward"] + work_per_sample["backward"]
worked_answer(
    "Expect it to shrink: a message carries every parameter whatever the batch size, while a step's compute "
    "grows with the batch: more compute per message. A net with more compute per parameter and sample has "
    f"more compute per message too. This run: {payload:,} bytes each way; {flops * batch_size / 1e6:,.0f} M "
    f"multiply-adds per step at batch size {batch_size}, {flops * b_big / 1e6:,.0f} M at {b_big} "
    f"({flops / work_per_sample['parameters']:.0f} per parameter and sample); {bigger.label} at batch size {b_big} spent "
    f"{pct(bigger.extra['comm_share'])} of its workers' time communicating and waiting, against "
    f"{pct(same.extra['comm_share'])} at batch size {batch_size}.")

# %%
# NBVAL_IGNORE_OUTPUT
claim("02.bigger-batch-smaller-share", 100 * bigger.extra["comm_share"], 100 * same.extra["comm_share"],
      yardstick=share_stick)

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
waits = claim("02.async-waits-less", 100 * by_config["async", k_most].extra["comm_share"],
              100 * by_config["sync", k_most].extra["comm_share"], yardstick=share_stick)
display(Markdown(md(f"One run each of sync and async with {k_most} worker(s), judged against the yardstick of one "
                    f"pair of one-worker runs ({share_stick:.2f}x; a second pair could move more). "
                    + waits.markdown())))
closing("02_parameter_server", [
    f"A parameter server's workers spend part of every step on messages: here "
    f"{pct(min(share.values()))} to {pct(max(share.values()))} of their time went to communicating or "
    "waiting for a turn or the other workers; " + one_run_sentence(
        "training throughput against the baseline",
        {r.label: r.samples_per_second / reference.samples_per_second for r in runs},
        lambda x: f"{x:.2f}x", note=False) + ".",
    f"Sync is large-batch SGD, for which the linear scaling rule multiplies the learning rate by the workers: "
    f"with {k_most} worker(s), lr x {k_most} reached {pct(scaled.test_accuracy)}, lr {lr} "
    f"{pct(plain.test_accuracy)}, one run each (one seed; one run moves up to {acc_stick:.2g} points here). "
    "More accurate with the rule: "
    f"*{claim('02.scaled-lr-catches-up', points(scaled), points(plain), yardstick=acc_stick).word}*.",
    f"Async does not make a worker wait for the others' gradients, but it steps on stale gradients: mean "
    f"staleness {stale['mean']:.2f} updates with {most.config['workers']} worker(s). A smaller share of the "
    f"workers' time communicating and waiting than sync's ({pct(by_config['async', k_most].extra['comm_share'])} "
    f"against {pct(by_config['sync', k_most].extra['comm_share'])}, one run each): *{waits.word}*.",
    f"Processes cost start-up before the first step of a one-off run: {span([r.setup_seconds for r in runs], secs)}, "
    f"against {secs(reference.setup_seconds)} for the baseline"
    + (f"; a re-run in the same kernel reuses them ({secs(max(r.warm_setup_seconds for r in warm_runs))} at most here)."
       if warm_runs else "."),
], everyone)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
