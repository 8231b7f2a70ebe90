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
# # 05 · Beyond one machine: local SGD, bytes on the wire, and a what-if for your network
#
# Two old laptops on Wi-Fi: is it worth joining them, and with which method? The parameter
# server (notebook 02) sends a gradient and receives the whole model at **every step**.
# **Local SGD** lets every worker train alone and averages the models only every **H** steps
# (an all-reduce). This notebook measures both here, counts the bytes each one sends, and then
# *predicts* what they would take on a real network of N machines.
#
# **You will learn**
# - how local SGD works, from the package's own loop (built on `torch.distributed`'s
#   `PeriodicModelAverager`), and what H changes: the bytes sent and the accuracy reached;
# - how many bytes each method sends per training sample, and the time spent communicating,
#   measured on this machine;
# - a simple model of a network (bandwidth and latency) that predicts time to accuracy on LAN,
#   Wi-Fi and WAN for 2, 4 and 8 machines, checked against what can be measured here;
# - when one machine is still the answer.
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.
# A one-off distributed run pays for starting its processes and connecting them (the
# `setup s` column); a re-run in the same kernel reuses the warm processes (`warm setup s`).
#
# Papers: local SGD — Stich 2019, [Local SGD converges fast and communicates little](https://arxiv.org/abs/1805.09767);
# Lin et al. 2020, [Don't use large mini-batches, use local SGD](https://arxiv.org/abs/1808.07217);
# DiLoCo — Douillard et al. 2023, [Distributed low-communication training](https://arxiv.org/abs/2311.08105);
# the ring all-reduce — Patarasuk and Yuan 2009, [Bandwidth optimal all-reduce algorithms for clusters of workstations](https://doi.org/10.1016/j.jpdc.2008.09.002).

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import inspect
import math
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullFormatter
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (busy_note, check_prediction, claim, format_table, hardware_info, LINKS,
                              machine_note, md, measure_loopback, measured_seconds_per_step, pct, predict,
                              results_table, run_header, run_panel, secs, span, step_costs, summary,
                              threads_per_process, time_to_accuracy, train_local_sgd,
                              train_parameter_server, train_rank, worked_answer)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening, scoreboard

opening("05_beyond_one_machine")

# %% [markdown]
# ## Parameters
#
# The next cell holds the values this notebook runs with. Change them here, or let papermill
# inject others
# (`costtrain notebooks -p subset=60000`, `costtrain notebooks --ci`). Values derived from them
# are computed in the cell after it. Figures go to `out/figures/` next to the notebooks (not
# tracked by git); only the reference build (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 6000         # training images (None: all 60,000)
test_subset = 2000    # test images (None: all 10,000)
epochs = 2            # passes over the training set, the same in every run
workers = 2           # workers of the parameter server and of local SGD
average_every_list = [1, 8, 32]  # local SGD's H values to compare (and H of 1 in any case: the yardstick)
batch_size = 64       # per worker and step
lr = 0.01             # sync parameter server and local SGD step with lr x workers (linear scaling rule); async with lr
momentum = 0.5
eval_every = 2000     # evaluate every this many samples: time to accuracy needs it
machines_list = [2, 4, 8]        # machine counts to predict
link = "wifi"         # the link preset of your run's prediction and of the table in section 4 (lan, wifi, wan)
tolerance = 0.02      # the target accuracy: final accuracy of the baseline minus this
seed = 42
timeout = 60.0        # seconds any wait on a peer may take before the run fails
progress = True
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "05_beyond_one_machine")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
common = dict(epochs=epochs, batch_size=batch_size, momentum=momentum, seed=seed, eval_every=eval_every)
hs = sorted({1, *average_every_list})  # H = 1 is the same SGD as the parameter server's sync mode: the yardstick
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images, {epochs} epoch(s) per run")
print(f"local SGD with H in {hs}; predictions for {machines_list} machines on "
      + ", ".join(preset.describe() for preset in LINKS.values()))

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import ready_workers

print(ready_workers())  # the fork server, once, before the first multi-process run this notebook measures

# %% [markdown]
# ## 1. The loop
#
# Every worker runs this function on its own shard of the data. It is the ordinary training
# loop plus one line: `averager.average_parameters(params)`, which after every H-th step
# all-reduces the parameters (sums them over the workers and divides by K) so that every
# worker continues from the average. With H = 1 that is synchronous data-parallel SGD:
# averaging the models after every step gives the same steps as averaging the gradients
# (momentum included, since it is linear; a test of the package checks it), which is what the
# parameter server's sync mode does. The counters (`cc`) record what each average moves.

# %% [markdown]
# ![Local SGD with two workers: each takes H local steps, then one all-reduce averages their models; between averages the copies drift apart](diagrams/local_sgd.svg)

# %%
# NBVAL_CHECK_OUTPUT
print(inspect.getsource(train_rank))

# %% [markdown]
# ## 2. Your run
#
# The panel sets **the run of this section**: one local-SGD run with the number of
# **workers**, **H** (local steps between two averages), batch size per worker and learning
# rate you pick, plus the **link** its prediction uses. Press **Run**, or run the cell below
# it. The live plot shows rank 0's loss after every average; when the run ends it prints what
# the run sent and its *predicted* time per step on the chosen link for
# `machines_list` machines. The comparison in section 3 always uses the `parameters` values.
# Local SGD starts one process per worker, the parameter server one more for its server; the
# next cell says whether that outnumbers this machine's cores.

# %%
# NBVAL_IGNORE_OUTPUT
cores = costtrain.num_cores()
counts = {"local SGD": workers, "the parameter server": workers + 1}  # processes each method starts
over = [name for name, p in counts.items() if p * threads_per_process(p) > cores]  # the package's check
display(Markdown(md(f"On this machine ({cores} cores), with `workers` = {workers}: " + "; ".join(
    f"{name} starts {p} processes" + (" (more than the cores)" if name in over else "")
    for name, p in counts.items()) + ". " + (
    f"The runs of {' and '.join(over)} will print the oversubscription warning: their processes take turns "
    "on the cores. They run anyway." if over else
    "No run has more processes than cores, so no oversubscription warning is expected."))))

# %%
def local_run(v, live):
    """One local-SGD run with the panel's values `v`, then its prediction on `v['link']`."""
    live.start(f"local-sgd H={v['average_every']} {v['workers']} worker(s)")
    r = train_local_sgd("simple", ds, workers=v["workers"], average_every=v["average_every"], epochs=epochs,
                        batch_size=v["batch_size"], lr=v["lr"], momentum=momentum, seed=seed,
                        timeout=timeout, progress=progress, on_progress=live)
    live.finish(r)
    print(summary(r))
    comm = r.extra["comm"]
    print(f"sent {comm['bytes_sent_per_sample']:,.0f} bytes per training sample in {comm['messages']} "
          f"all-reduces ({comm['seconds']:.2f} s per worker, measured here)")
    for n in machines_list:
        p = predict(r, v["link"], n)
        print(f"predicted on {n} machines, {LINKS[v['link']].describe()}: {1e3 * p.seconds_per_step:.1f} ms "
              f"per step, {p.samples_per_second:,.0f} samples/s")
    return r


panel = run_panel("05_beyond_one_machine", local_run, workers=workers, average_every=average_every_list[-1],
                  batch_size=batch_size, lr=lr, link=link)
panel

# %%
# NBVAL_IGNORE_OUTPUT
mine = panel.run()

# %% [markdown]
# ## 3. Local SGD against the parameter server, at equal samples
#
# Every run trains the same data for the same epochs with the `parameters` values:
# `workers` workers for the parameter server (sync and async) and for local SGD with each H in
# `average_every_list` (and H = 1), against one process with every core and the levers
# notebook 01b kept on this machine (as in 04 and 06). Local SGD with H = 1
# and the parameter server in sync mode are the same SGD (section 1) from the same initial
# model; their workers draw their batches in other orders, so the gap between their
# accuracies is how much one run's accuracy moves here: the yardstick for the claims below.
#
# **Exercise 4, predict first: bytes and H.** How many times fewer bytes per training sample
# will local SGD with the largest H in `average_every_list` send than with the smallest? Write
# your guess in the next cell before the runs; the Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# How often does an average happen, per step? What does one average move, and does that
# depend on H?
# </details>

# %%
guess_bytes_ratio = None  # your guess: bytes per sample with the smallest H ÷ with the largest H

# %%
# NBVAL_IGNORE_OUTPUT
# one machine: the baseline with the levers notebook 01b kept on this machine, as in notebooks 04 and 06
levers, levers_why = scoreboard.kept_levers(scoreboard.findings(), hardware_info())
print("one machine: the baseline with " + ", ".join(f"`{k}={v!r}`" for k, v in levers.items())
      + ", the lever(s) notebook 01b kept on this machine" if levers else
      f"one machine: the baseline without levers ({levers_why or 'notebook 01b kept none on this machine'})")
baseline = costtrain.train_baseline("simple", ds, lr=lr, progress=progress, **common, **levers)
dist_kw = dict(workers=workers, lr=lr, timeout=timeout, progress=progress, **common)
runs = [train_parameter_server("simple", ds, mode=mode, **dist_kw) for mode in ("sync", "async")]
runs += [train_local_sgd("simple", ds, average_every=h, **dist_kw) for h in hs]
print(results_table([baseline] + runs))

# %% [markdown]
# What each run sent: `extra['comm']` holds the bytes sent and received by every rank, the
# number of messages (parameter server) or all-reduces (local SGD) and the seconds spent in
# them, waits for a turn or for the other workers included and waits for an evaluation left
# out (both methods evaluate every `eval_every` samples while their workers wait). The share
# column is that time against the workers' compute, the same share notebook 02 measures. The
# parameter server's bytes are its messages' tensors, counted by the ranks; local SGD's are the
# all-reduce payload times `2 (K-1) / K`, what a ring all-reduce moves in and out of each rank
# (Patarasuk and Yuan 2009).

# %%
# NBVAL_IGNORE_OUTPUT
rows = [[r.label, r.config.get("server_lr", r.config.get("worker_lr")), 100 * r.test_accuracy,
         f"{r.extra['comm']['bytes_sent_per_sample']:,.0f}", r.extra["comm"]["messages"],
         float(r.extra["comm"]["seconds"]), 100 * r.extra["comm_share"], r.train_seconds]
        for r in runs]
print(format_table(rows, ["run", "lr of the steps", "test acc %", "bytes sent / sample", "messages / all-reduces",
                          "comm s per worker", "comm share %", "train s (measured here)"]))
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
for r in runs:
    ax.scatter(r.extra["comm"]["bytes_sent_per_sample"], 100 * r.test_accuracy, s=40)
    ax.annotate(r.label, (r.extra["comm"]["bytes_sent_per_sample"], 100 * r.test_accuracy), fontsize=8,
                xytext=(4, 4), textcoords="offset points")
ax.axhline(100 * baseline.test_accuracy, color="k", ls="--", lw=1, label="baseline (one process)")
ax.set(xscale="log", xlabel="bytes sent per training sample (all ranks, measured)", ylabel="test accuracy %",
       title="Accuracy against communication, equal samples")
ax.legend(fontsize=8)
fig.savefig(figures / "05_bytes_vs_accuracy.png", dpi=110)
plt.show()
ps_sync = runs[0]
local = {r.config["average_every"]: r for r in runs[2:]}
h_mid = hs[len(hs) // 2]  # the middle H
resolution = 100 / len(ds.test_y)  # one test image, in points of accuracy
points = {r.label: round(100 * r.test_accuracy, 6) for r in runs}  # rounded: equal accuracies compare equal
acc_stick = max(abs(points[ps_sync.label] - points[local[1].label]), resolution)
fewer = ps_sync.extra["comm"]["bytes_sent_per_sample"] / local[h_mid].extra["comm"]["bytes_sent_per_sample"]
display(Markdown(md(
    f"**Measured, one run each:** local SGD with H = {h_mid} sent {fewer:.1f}x fewer bytes per sample than "
    f"the parameter server in sync mode (bytes are counted, not timed) and "
    f"reached {pct(local[h_mid].test_accuracy)} test accuracy (parameter server sync "
    f"{pct(ps_sync.test_accuracy)}, one process {pct(baseline.test_accuracy)}). The same SGD, two data orders: "
    f"{ps_sync.label} {pct(ps_sync.test_accuracy)} and {local[1].label} {pct(local[1].test_accuracy)}, so one run's "
    f"accuracy moves up to {acc_stick:.2g} points here (at least one test image, {resolution:.2g} points).")))

# %% [markdown]
# ## 4. What if the workers were machines on a network?
#
# Loopback is not a network between machines: the check below says what its bytes cost here.
# `predict` (from `costtrain.course`) predicts one step on N machines as
#
# > measured compute per step + bytes on the busiest link / bandwidth + round trips × latency
#
# with each machine computing like one measured worker (the slowest), and the bytes per step of
# each method for N machines: the parameter server's machine receives a gradient from and sends
# the model to each of the other N-1 machines every step; local SGD's ring all-reduce moves
# `2 (N-1)/N` models in and out of every machine once every H steps. Time to accuracy = the
# samples the measured run needed to reach the target / predicted samples per second. The
# samples needed come from the run with `workers` workers: with other N they would differ, and
# this notebook does not measure by how much. **Everything in this section is predicted**,
# except the first check.
#
# First the check: predict each run measured here from its own compute and communication
# figures with this machine's loopback (bandwidth and round trip measured now, in a fraction of
# a second).

# %%
# NBVAL_IGNORE_OUTPUT
loopback = measure_loopback()
check = [[r.label, 1e3 * measured_seconds_per_step(r), 1e3 * predict(r, loopback).seconds_per_step,
          f"{predict(r, loopback).seconds_per_step / measured_seconds_per_step(r):.2f}"] for r in runs]
print(f"loopback, measured: {loopback.describe()}")
print(format_table(check, ["run", "measured ms/step", "predicted ms/step", "predicted / measured"]))
on_wire = {r.label: predict(r, loopback).transfer_seconds + predict(r, loopback).latency_seconds for r in runs}
display(Markdown(md(
    f"**Computed from the measured loopback:** one step's bytes and round trips take "
    f"{span([1e3 * t for t in on_wire.values()], lambda ms: f'{ms:.3g} ms')} on this machine's loopback, of "
    f"steps that took {span([1e3 * measured_seconds_per_step(r) for r in runs], lambda ms: f'{ms:.3g} ms')}: "
    "the rest of each step is compute and waiting.")))
misses = [abs(float(row[3]) - 1) for row in check]
claim("05.network-model-checks", 100 * max(misses), 25.0)

# %%
# NBVAL_IGNORE_OUTPUT
target = baseline.test_accuracy - tolerance
one_machine, _ = time_to_accuracy(baseline.eval_curve, target)
chosen_link = panel.values()["link"]  # the link picked in the panel (headless: `link`)
preds = {(r.label, name, n): predict(r, name, n, target_accuracy=target)
         for r in runs for name in LINKS for n in machines_list}
table = [[p.label, f"{p.seconds_per_step * 1e3:.1f}", f"{p.samples_per_second:,.0f}",
          "not reached" if p.seconds_to_target is None else f"{p.seconds_to_target:.1f}"]
         for p in preds.values() if p.link == LINKS[chosen_link].describe()]  # the panel's link
print(f"target: {100 * target:.1f} % test accuracy; one machine here (baseline, measured): "
      + ("not reached" if one_machine is None else f"{one_machine:.1f} s of training"))
print("training only, set-up excluded on both sides (the table and the figure); section 5 adds the set-ups")
print(format_table(table, ["configuration", "predicted ms/step", "predicted samples/s",
                           "predicted training s to target"]))



def plain_minor(v, _):
    """Label the log axis' minor ticks 2 and 5 of each decade as plain numbers (0.2, 5), none other."""
    lead = v / 10 ** math.floor(math.log10(v)) if v > 0 else 0
    return f"{v:g}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""


fig, axes = plt.subplots(1, len(LINKS), figsize=(11, 3.6), layout="constrained", sharey=True)
for ax, name in zip(axes, LINKS):
    for r in runs:
        ys = [preds[r.label, name, n].seconds_to_target for n in machines_list]
        ax.plot(machines_list, [float("nan") if y is None else y for y in ys], "o-", label=r.label)
    if one_machine is not None:
        ax.axhline(one_machine, color="k", ls="--", lw=1, label="one machine (measured training)")
    ax.set(xscale="log", yscale="log", xlabel="machines", title=f"{LINKS[name].describe()} (predicted)")
    ax.set_xticks(machines_list, [str(n) for n in machines_list])
    ax.xaxis.set_minor_formatter(NullFormatter())  # the machine counts only, no "3×10⁰"
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(plain_minor))
axes[0].set_ylabel("training seconds to target\n(predicted, set-up excluded)")
fig.suptitle("Training only: section 5 adds each run's set-up", fontsize=9)
axes[-1].legend(fontsize=7)
fig.savefig(figures / "05_predicted_time_to_accuracy.png", dpi=110)
plt.show()

# %% [markdown]
# ## 5. Conclusion, from the numbers above
#
# For each link and machine count: the method predicted to reach the target soonest and how it
# compares with one machine (the baseline as measured here), **set-up included** on both
# sides, since a distributed run pays for starting its processes before it trains.

# %%
# NBVAL_IGNORE_OUTPUT
by_label = {r.label: r for r in runs}
# 10 %, or the model's largest miss on loopback (section 4) read as a ratio (0.72 -> 1.39x), if larger
margin = max(1.10, max(max(float(row[3]), 1 / float(row[3])) for row in check))
one_total = None if one_machine is None else baseline.setup_seconds + one_machine  # set-up + training to target
lines, against_one = [], {}  # (link, machines) -> the soonest method's verdict against one machine
for name in LINKS:
    parts = []
    for n in machines_list:
        # end to end = the run's set-up as measured here + its predicted training seconds to the target
        reach = {label: by_label[label].setup_seconds + p.seconds_to_target
                 for (label, l, m), p in preds.items() if l == name and m == n and p.seconds_to_target is not None}
        if not reach:
            parts.append(f"{n} machines: no method reaches the target")
            continue
        best = min(reach, key=reach.get)
        ratio = None if one_total is None or busy_note([baseline] + runs) else one_total / reach[best]  # busy: no verdict
        verdict = ("" if ratio is None else f", {ratio:.2f}x sooner than one machine" if ratio >= margin
                   else ", **one machine is sooner**" if ratio <= 1 / margin else
                   f", about as soon as one machine ({ratio:.2f}x, inside the margin)")
        parts.append(f"{n} machines: {preds[best, name, n].label.split(' on ')[0]} ({secs(reach[best])}{verdict})")
        against_one[name, n] = verdict.removeprefix(", ")
    lines.append(f"- **{LINKS[name].describe()}**: " + "; ".join(parts) + ".")
display(Markdown(md(
    machine_note([baseline] + runs) + "\n\n"
    + "Predicted soonest to the target, set-up included: " + ("one machine (the baseline, measured) takes "
    f"{secs(baseline.setup_seconds)} to start and {secs(one_machine)} to train to the target; "
    if one_machine is not None else "the baseline did not reach the target; ")
    + "each distributed run adds its set-up as measured here with "
    f"{workers} workers ({secs(min(r.setup_seconds for r in runs))} to {secs(max(r.setup_seconds for r in runs))}; "
    "assumed the same on real machines, each starting its own processes, the rendezvous over the network not "
    "counted). Predicted from one run of each method: a guide, not a verdict; \"sooner\" and \"one machine is "
    f"sooner\" need a {100 * (margin - 1):.0f} % margin: 10 %, or the network model's largest miss on loopback "
    f"in section 4 read as a ratio ({margin:.2f}x) if that is larger.\n\n"
    + "\n".join(lines)
    + "\n\nCheck a prediction on Linux with `tc netem` ([docs/local-sgd.md](../docs/local-sgd.md), *Check a "
    "prediction on a real network*) before buying anything.")))

# %% [markdown]
# ## 6. Across machines with `torchrun`
#
# The same loop runs across machines when `torchrun` starts it on each one (every rank must
# reach the first machine's address; the transport is unauthenticated, so trusted networks
# only). The commands below use this notebook's parameters.

# %%
# NBVAL_CHECK_OUTPUT
h_mid = average_every_list[len(average_every_list) // 2]  # the middle H of the comparison
args = f"--average-every {h_mid} --epochs {epochs} --batch-size {batch_size} --lr {lr} --momentum {momentum}"
args += f" --subset {subset}" if subset else ""
nodes = "--nnodes 2 --nproc-per-node 1 --master-addr 192.168.1.10 --master-port 29500 --rdzv-conf timeout=60"
print("\n".join([f"torchrun {nodes} --node-rank 0 -m costtrain.local_sgd {args} --out local_sgd.json  # on A",
                 f"torchrun {nodes} --node-rank 1 -m costtrain.local_sgd {args}  # on B"]))

# %% [markdown]
# ## Exercises
#
# **1.** Which H would you pick for two laptops on the Wi-Fi preset, from the runs above?
#
# <details><summary>Hint</summary>
#
# Look at the accuracy of each H in section 3 and at its predicted time to the target on
# `wifi` for 2 machines in section 4: the smallest time among the runs that reach the target.
# </details>
#

# %%
# NBVAL_IGNORE_OUTPUT
wifi2 = {r.label: preds[r.label, "wifi", 2].seconds_to_target for r in runs} if 2 in machines_list else {}
reached = {k: s for k, s in wifi2.items() if s is not None and k.startswith("local-sgd")}
worked_answer(
    "```python\n"
    'wifi2 = {r.label: preds[r.label, "wifi", 2].seconds_to_target for r in runs}\n'
    'reached = {k: s for k, s in wifi2.items() if s is not None and k.startswith("local-sgd")}\n'
    'print(min(reached, key=reached.get) if reached else "none reaches the target")\n'
    "```\n\n"
    "A larger H sends less, but between averages the workers' models drift apart. How far H can grow "
    "before that costs accuracy is what [Stich (2019)](https://arxiv.org/abs/1805.09767) bounds for convex "
    "problems (local SGD keeps mini-batch SGD's rate while communicating up to √T times less, T the steps) and "
    "what [Lin et al. (2020)](https://arxiv.org/abs/1808.07217) measure on deep nets; the claim below checks it "
    "on this run. "
    + ("This run: 2 is not in `machines_list`, so there is no 2-machine prediction. " if 2 not in machines_list else
       f"This run (predicted from one run each): {min(reached, key=reached.get)}, "
       f"{secs(reached[min(reached, key=reached.get)])} of training to the target"
       + (f"; with every run's set-up counted, section 5 found the soonest method on 2 machines over Wi-Fi "
          f"{against_one['wifi', 2]}: joining the two laptops "
          + ("pays here. " if "sooner than one machine" in against_one["wifi", 2] else "does not pay here. ")
          if against_one.get(("wifi", 2)) else ". ") if reached else
       "This run: no local-SGD run is predicted to reach the target on 2 machines. ")
    + "Its accuracies: " + ", ".join(f"H = {h} {pct(local[h].test_accuracy)}" for h in hs) + ".")

# %%
# NBVAL_IGNORE_OUTPUT
claim("05.larger-h-less-accurate", points[local[max(hs)].label], points[local[min(hs)].label], yardstick=acc_stick)

# %% [markdown]
# **2.** At what bandwidth would the parameter server in sync mode spend as long sending as
# computing, for 4 machines?
#
# <details><summary>Hint</summary>
#
# Per step its machine moves `2 x (N-1) x payload` bytes; set that over the bandwidth equal to
# the compute per step. `step_costs(run)` gives both.
# </details>
#

# %%
# NBVAL_IGNORE_OUTPUT
c = step_costs(ps_sync)
machines = 4
bandwidth = 2 * (machines - 1) * c.payload_bytes / (c.compute + c.server_update)  # bytes/s
worked_answer(
    "```python\n"
    "from costtrain.course import step_costs\n"
    "c = step_costs(ps_sync)\n"
    "machines = 4\n"
    "bandwidth = 2 * (machines - 1) * c.payload_bytes / (c.compute + c.server_update)   # bytes/s\n"
    'print(f"{8 * bandwidth / 1e6:.0f} Mbit/s")\n'
    "```\n\n"
    f"This run: {8 * bandwidth / 1e6:.0f} Mbit/s (a payload of {c.payload_bytes:,} bytes, "
    f"{1e3 * (c.compute + c.server_update):.1f} ms of compute and update per step, one run). Below that "
    "bandwidth the network, not the cores, sets the pace.")

# %% [markdown]
# **3.** Predict your own network: measure it (e.g. `iperf3` for bandwidth, `ping` for the
# round trip) and pass it as a link such as `"300mbit,5ms"`.
#
# <details><summary>Hint</summary>
#
# `predict(run, link, machines, target_accuracy=target)` accepts a preset name or a string
# `"<bandwidth>,<latency>"`; `get_link("300mbit,5ms").describe()` shows how
# it was read.
# </details>
#

# %%
# NBVAL_IGNORE_OUTPUT
mine_link = {r.label: predict(r, "300mbit,5ms", 3, target_accuracy=target) for r in runs}
worked_answer(
    "```python\n"
    "for r in runs:\n"
    '    p = predict(r, "300mbit,5ms", 3, target_accuracy=target)\n'
    "    print(p.label, p.seconds_to_target)\n"
    "```\n\n"
    "This run, predicted seconds of training to the target on 3 machines: "
    + ", ".join(f"{label} {'not reached' if p.seconds_to_target is None else secs(p.seconds_to_target)}"
                for label, p in mine_link.items()) + ".")

# %% [markdown]
# **4. Bytes and H.** Your guess went into `guess_bytes_ratio` before section 3 ran; the next
# cell checks it.

# %%
# NBVAL_IGNORE_OUTPUT
sent = {r.config["average_every"]: r.extra["comm"]["bytes_sent_per_sample"] for r in runs if "average_every" in r.config}
check_prediction(guess_bytes_ratio, sent[min(sent)] / sent[max(sent)],
                 wrong={"bytes that do not depend on H": 1.0})

# %%
# NBVAL_IGNORE_OUTPUT
averages = {h: local[h].extra["averages"] for h in (min(hs), max(hs))}  # all-reduces of one worker
worked_answer(
    "About the ratio of the largest H to the smallest: every average moves one model's worth of bytes whatever "
    "H is, and there is one average every H steps, plus one at the end when a worker's steps do not divide by "
    f"H. This run: {max(hs)} / {min(hs)} = {max(hs) / min(hs):g}; {averages[min(hs)]:,} averages with H = {min(hs)} and "
    f"{averages[max(hs)]:,} with H = {max(hs)}; {sent[min(sent)]:,.0f} bytes per sample with H = {min(sent)} and "
    f"{sent[max(sent)]:,.0f} with H = {max(sent)}, a ratio of {sent[min(sent)] / sent[max(sent)]:.1f} "
    "(bytes are counted, not timed).")

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

scoreboard.record("05_beyond_one_machine", [baseline] + runs)
NoWrap(scoreboard.show(notebook="05_beyond_one_machine"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
ratios = [float(row[3]) for row in check]
soonest = {}  # (link, machines) -> the method predicted soonest to the target, set-up included
for name in (min(LINKS, key=lambda k: LINKS[k].bandwidth), max(LINKS, key=lambda k: LINKS[k].bandwidth)):
    n = max(machines_list)
    reach = {p.label.split(" on ")[0]: by_label[label].setup_seconds + p.seconds_to_target
             for (label, l, m), p in preds.items() if l == name and m == n and p.seconds_to_target is not None}
    best = min(reach, key=reach.get) if reach else None
    soonest[name, n] = ("no method reaches the target" if best is None else f"{best} ({secs(reach[best])}"
                        + (f"; one machine {secs(one_total)})" if one_total is not None else ")"))
closing("05_beyond_one_machine", [
    f"Local SGD talks once every H steps: with H = {h_mid} it sent {fewer:.1f}x fewer bytes per sample than the "
    f"parameter server in sync mode, at {pct(local[h_mid].test_accuracy)} test accuracy (sync "
    f"{pct(ps_sync.test_accuracy)}, one process {pct(baseline.test_accuracy)}; one run each).",
    f"Loopback is not a network: the predictions use this machine's measured compute and bytes; predicting "
    f"the loopback runs themselves gave {min(ratios):.2f}-{max(ratios):.2f}x the measured seconds per step.",
    "Predicted soonest to the target (section 5, set-up included): "
    + "; ".join(f"on {LINKS[name].describe()} with {n} machines {soonest[name, n]}" for name, n in soonest) + ".",
], [baseline] + runs)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
