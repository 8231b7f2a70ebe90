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
# # 01 · The baseline: one process, measured
#
# Before spreading training over processes or machines, measure what **one process** does on
# your machine. The later notebooks compare their methods with a single-process run like this
# one, trained with the classroom values of the parameters cell (a notebook that changes one
# says why beside it).
#
# **You will learn**
# - how to train the classic 2-conv "mnist_hogwild" net on Fashion-MNIST with
#   `costtrain.train_baseline` and read its measurements (set-up / train / eval time,
#   samples per second, test accuracy);
# - how the number of intra-op threads (`torch.set_num_threads`) changes the speed, and why
#   threads × processes must not exceed the cores (*oversubscription*);
# - where the time goes: the classic data pipeline (a `DataLoader` with per-sample PIL
#   transforms) against in-memory tensors.
#
# **Words used in every notebook.** *Set-up* is loading the data, building the model and (for
# the parallel methods) starting processes; *training* is the optimisation loop; *evaluation*
# is measuring test accuracy. **End to end** means set-up + training + evaluation: the wall
# time you wait for a run (`RunResult.total_seconds`, the `total s` column). *Steady state*
# is the training throughput with the first 20 % of the loss curve's points (the warm-up) left out. <!-- fixed: the steady-state window, a definition -->
# The evaluations *during* training (`eval_every`: the accuracy curves, the time to an
# accuracy) read a fixed slice of the test set, the same for every method
# (`RunResult.extra["eval_slice"]`); the final accuracy reads the whole test set.
# The slice holds 2,000 images: the standard error of an accuracy p read on it is
# √(p(1−p)/2000), about one point near p = 0.7.
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (build_model, busy_note, check_prediction, claim, machine_note, md, multiply_adds,
                              one_run_sentence, pct, rate, results_table, run_header, run_panel, secs,
                              span, summary, threads_per_process, worked_answer)

default_threads = torch.get_num_threads()  # the intra-op pool PyTorch gave this kernel (no run has set it yet)


# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import TYPICAL_ACCURACY, closing, opening

opening("01_baseline")

# %% [markdown]
# ## Parameters
#
# The next cell holds the values this notebook runs with. Change them here, or let papermill inject others (`costtrain notebooks -p subset=60000`,
# `costtrain notebooks --ci`). Figures go to `out/figures/` next to the notebooks (not tracked
# by git); only the reference build (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 6000         # training images (None: all 60,000)
test_subset = 2000    # test images (None: all 10,000)
epochs = 1            # passes over the training set in each run
batch_size = 64
lr = 0.01
momentum = 0.5        # the same SGD optimizer in every notebook
seed = 42
threads_list = None   # thread counts to compare; None: 1, half the cores and all cores
progress = True       # progress bars
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "01_baseline")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
cores = costtrain.num_cores()
threads_list = threads_list or sorted({1, max(1, cores // 2), cores})
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images of shape {ds.input_shape}")
print(f"work per run: {epochs} epoch(s) = {epochs * len(ds.train_y):,} samples, batch size {batch_size}, "
      f"SGD lr {lr}, momentum {momentum}")
print(f"thread counts to compare: {', '.join(map(str, threads_list))}")
work = multiply_adds(build_model("simple", ds.input_shape, ds.num_classes), ds.input_shape)


def mega(n):
    return f"{n / 1e6:.1f} M"


print(f"the net: {work['parameters']:,} parameters; {work['forward']:,} multiply-adds per sample forward, "
      f"{work['forward'] + work['backward']:,} with the backward pass; a mini-batch of {batch_size}: "
      f"{mega(batch_size * work['forward'])} forward, {mega(batch_size * (work['forward'] + work['backward']))} "
      "with the backward pass (counted from the layers' shapes)")

# %% [markdown]
# ## 1. One run
#
# `train_baseline` is one plain training loop: shuffle, forward, loss, backward, SGD step,
# log the loss every `log_every` batches (10 by default). It keeps set-up, training and
# evaluation time apart.
#
# The panel sets **the run of this section**: its threads, batch size and learning rate.
# Press **Run** to train with them (the live plot shows the loss as it falls), or run the cell
# below the panel. It starts at 1 thread: Exercise 1 (section 2) asks you to predict what more
# threads do before any other count has run. Sections 2 and 4 train with the `parameters`
# values, so that they compare like with like whatever you pick here.

# %%
def first_run(v, live):
    """One baseline run with the panel's values `v`."""
    live.start(f"baseline, {v['threads']} thread(s)")
    r = costtrain.train_baseline("simple", ds, epochs=epochs, threads=v["threads"], batch_size=v["batch_size"],
                                 lr=v["lr"], momentum=momentum, seed=seed, progress=progress, on_progress=live)
    live.finish(r)
    print(summary(r))
    return r


panel = run_panel("01_baseline", first_run, threads=1, batch_size=batch_size, lr=lr)  # 1: section 2 measures the others
panel

# %%
# NBVAL_IGNORE_OUTPUT
first = panel.run()
display(Markdown(md(f"This run reached **{pct(first.test_accuracy)}** test accuracy after "
                    f"{first.samples:,} samples. {TYPICAL_ACCURACY}")))

# %% [markdown]
# ## 2. Threads vs speed
#
# PyTorch runs each convolution and matrix product on a pool of *intra-op* threads, one pool
# per process, sized with `torch.set_num_threads`
# ([PyTorch's CPU threading notes](https://pytorch.org/docs/stable/notes/cpu_threading_torchscript_inference.html));
# the next cell prints the size PyTorch gave this kernel. Does this small net get faster with
# more of them? The same work runs with each thread count; we compare the steady-state
# throughput.
#
# **Exercise 1, predict first.** Before this section runs: how many times the steady-state
# samples/s of 1 thread do you expect the best thread count to train? Write it in the next
# cell; the Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# Ideal scaling would give one speed-up per thread, up to one per core. How much work does one
# mini-batch give each operation to split between threads? (The parameters' cell printed its
# multiply-adds.)
# </details>

# %%
guess_thread_speedup = None  # your guess: the best thread count's steady samples/s ÷ 1 thread's

# %%
# NBVAL_IGNORE_OUTPUT
print(f"PyTorch's default intra-op pool in this kernel: {default_threads} thread(s), on {cores} core(s)")
by_threads = [costtrain.train_baseline("simple", ds, epochs=epochs, threads=t, batch_size=batch_size, lr=lr,
                                       momentum=momentum, seed=seed, progress=progress) for t in threads_list]
for r, t in zip(by_threads, threads_list):
    r.label = f"{t} thread{'s' if t > 1 else ''}"
print(results_table(by_threads))

# %%
# NBVAL_IGNORE_OUTPUT
rates = [r.steady_samples_per_second for r in by_threads]
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.bar([str(t) for t in threads_list], rates, color="tab:blue")
ax.set(xlabel="intra-op threads (torch.set_num_threads)", ylabel="samples / s (steady state)",
       title=f"Baseline throughput, {ds.name}, {cores} cores")
fig.savefig(figures / "01_threads.png", dpi=90)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
one, best = by_threads[0], max(by_threads, key=lambda r: r.steady_samples_per_second)
speedup = best.steady_samples_per_second / one.steady_samples_per_second
vs_one = ", ".join(f"{r.label} {r.steady_samples_per_second / one.steady_samples_per_second:.2f}x"
                   for r in by_threads[1:])  # each thread count against the first (1 thread)
ideal = max(threads_list) / one.threads  # one speed-up per thread, for the largest count tried
thread_speedup = speedup
relative = (f"against {one.label}: {vs_one} (the ideal for {max(threads_list)} threads would be {ideal:g}x)" if vs_one
            else "only one thread count ran, so there is nothing to compare")
display(Markdown(md("**Measured:** " + one_run_sentence(
    "steady-state throughput", {r.label: r.steady_samples_per_second for r in by_threads}, rate, relative)
    + ". Section 4 repeats the fastest count: that repeat says how much one run moves here.")))

# %% [markdown]
# ## 3. Threads, processes and cores: oversubscription
#
# The next notebooks run several training **processes** at once. Each process has its own
# pool of intra-op threads, sized by default as section 2 printed for this kernel. With `P`
# processes × `T` threads each on `C` cores:
#
# - if `P × T ≤ C`, no thread waits for a core that another of these threads holds;
# - if `P × T > C` (**oversubscription**), the operating system time-slices the threads: it
#   stops one, saves its registers, and runs another (a *context switch*). An operation split
#   over `T` threads ends when its *slowest* thread does (PyTorch's
#   [`at::parallel_for`](https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/Parallel.h)
#   returns when every chunk is done), so one thread that waits for a core stalls the whole
#   operation, and the threads that finished early first wait actively on their core
#   (GNU OpenMP's default, [`OMP_WAIT_POLICY`](https://gcc.gnu.org/onlinedocs/libgomp/OMP_005fWAIT_005fPOLICY.html)).
#
# The rule costtrain follows everywhere: **threads per process = cores // processes** (at
# least 1), as PyTorch's own
# [multiprocessing best practices](https://pytorch.org/docs/stable/notes/multiprocessing.html)
# recommend. When a configuration breaks it (more processes than cores, or more threads than
# cores in one process), costtrain prints a `CosttrainWarning: ... on ... core(s)` before it
# starts: that warning means the mechanism above. This section runs nothing; notebook 03
# measures what oversubscription costs on this machine.

# %% [markdown]
# ![Left: 2 processes with 1 thread each on 2 cores, every thread has a core. Right: 2 processes with 2 threads each on 2 cores, the operating system time-slices 4 threads on 2 cores, with a context switch at every slice](diagrams/oversubscription.svg)

# %% [markdown]
# ## 4. Where the time goes: the data pipeline
#
# The original example fed the net through a `DataLoader` over a dataset that decodes every
# image with PIL and applies `ToTensor()` and `Normalize()` **per sample, every epoch**.
# `pipeline="classic"` does exactly that; `pipeline="memory"` (the default) decodes the data
# once into a normalized tensor and slices mini-batches from it. Same net, same threads (the
# fastest count of section 2), same work. How large is that Python work next to the maths?
# The in-memory run is also a repeat of section 2's run with those threads: the two say how
# much one run moves on this machine, the yardstick of the verdicts below.
#
# **Exercise 4, predict first.** How many times longer do you expect the classic pipeline
# to train than the in-memory one, same net and threads? Write it in the next cell before the
# runs below; the Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# If per-sample transforms take a share `s` of the classic run's training time, removing them
# divides the time by `1 / (1 - s)`. How much Python work is decoding and normalising one
# small image, against a forward and backward pass of a tiny net?
# </details>

# %%
guess_pipeline_ratio = None  # your guess: classic training seconds ÷ in-memory training seconds

# %%
# NBVAL_IGNORE_OUTPUT
pipelines = {}
for p in ("classic", "memory"):
    pipelines[p] = costtrain.train_baseline("simple", ds, epochs=epochs, threads=best.threads,
                                            batch_size=batch_size, lr=lr, momentum=momentum, seed=seed,
                                            pipeline=p, progress=progress)
    pipelines[p].label = f"{p} pipeline"
print(results_table(list(pipelines.values())))

# %%
# NBVAL_IGNORE_OUTPUT
classic, memory = pipelines["classic"], pipelines["memory"]
compute = memory.train_seconds                       # the maths alone
data = max(0.0, classic.train_seconds - compute)     # what per-sample transforms added
parts = {"set-up": [classic.setup_seconds, memory.setup_seconds],
         "compute (forward/backward/step)": [compute, compute],
         "data pipeline (per-sample transforms)": [data, 0.0],
         "evaluation": [classic.eval_seconds, memory.eval_seconds]}
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
left = [0.0, 0.0]
for name, widths in parts.items():
    ax.barh(["classic", "in memory"], widths, left=left, label=name)
    left = [l + w for l, w in zip(left, widths)]
ax.set(xlabel="seconds, end to end", title=f"Where the time goes ({epochs * len(ds.train_y):,} samples, {best.threads} thread(s))")
fig.legend(fontsize=8, loc="outside lower center", ncol=2)  # below the bars, never over them
fig.savefig(figures / "01_time_breakdown.png", dpi=90)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
share = data / classic.train_seconds if classic.train_seconds > 0 else 0.0
busy_pipe, busy_threads = busy_note([classic, memory]), busy_note(by_threads)  # other work: cannot tell
pipeline_ratio = classic.train_seconds / memory.train_seconds
# the same configuration ran more than once (section 2's fastest count, the in-memory run, the panel's
# run when it used the parameters values): how much one run moves here
repeated = [r for r in [first, *by_threads, memory] if r.threads == memory.threads and r.config == memory.config]
yardstick = max(max(v) / min(v) for v in ([r.steady_samples_per_second for r in repeated],
                                          [r.train_seconds for r in repeated]) if min(v) > 0)
tolerance = max(0.25, yardstick - 1)  # the exercises' checks: no finer than one run's noise
# transforms ÷ maths = classic ÷ in-memory - 1 carries both runs' noise: its yardstick is how far
# that ratio falls if the classic run was `yardstick` too slow and the in-memory one too fast
worst = classic.train_seconds / (memory.train_seconds * yardstick ** 2) - 1
transforms_yardstick = (data / compute) / worst if worst > 0 and data > 0 else yardstick ** 2
display(Markdown(md(
    f"**Measured, one run each:** the classic pipeline trained for {secs(classic.train_seconds)}, the "
    f"in-memory one for {secs(memory.train_seconds)} (a ratio of {pipeline_ratio:.2f}). Taking the in-memory "
    f"time as the maths alone, {pct(share)} of the classic run's training time went to per-sample transforms. "
    f"Test accuracy: {pct(classic.test_accuracy)} vs {pct(memory.test_accuracy)}.\n\n"
    f"**Noise:** {best.label} with the in-memory pipeline ran {len(repeated)} times here "
    f"(steady {span([r.steady_samples_per_second for r in repeated], rate)}, training "
    f"{span([r.train_seconds for r in repeated], secs)}): one run moves up to {yardstick:.2f}x on this "
    f"machine now, so transforms ÷ maths, a difference of two runs' times over one of them, moves up to "
    f"{transforms_yardstick:.2f}x.\n\n"
    + claim("01.transforms-cost-more", data, compute, yardstick=transforms_yardstick, busy=busy_pipe).markdown())))

# %% [markdown]
# ## Exercises
#
# **1. The speed-up from threads.** Your guess went into `guess_thread_speedup` before
# section 2 ran; the next cell checks it.

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_thread_speedup, thread_speedup, tolerance=tolerance,
                 wrong={"the ideal, one speed-up per thread": ideal}, noise=yardstick - 1)

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    "Expect less than one speed-up per thread. Every operation split over threads ends when its slowest "
    "thread does, and PyTorch keeps an element-wise operation on fewer than 32,768 elements on one thread "
    "([`GRAIN_SIZE`](https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/TensorIterator.h), "
    "'the minimum number of work that warrants parallelism'). "
    f"This run: one mini-batch of {batch_size} is {mega(batch_size * work['forward'])} multiply-adds forward and "
    f"{mega(batch_size * (work['forward'] + work['backward']))} with the backward pass (counted from the net's shapes), "
    + (f"and only {one.label} ran: set `threads_list` to compare. " if len(by_threads) == 1
       else f"and the steady rate against {one.label}, one run each, was {vs_one}. ")
    + claim("01.threads-fall-short", thread_speedup, ideal, yardstick=yardstick, busy=busy_threads).markdown()
    + " Notebook 03 measures whether more *processes* use the cores that extra threads leave idle.")

# %% [markdown]
# **2. Oversubscribe one process.** Set the panel's threads to twice your cores and press
# **Run**. Faster or slower than `threads = cores`? By how much? Then run the next cell.
#
# <details><summary>Hint</summary>
#
# Section 3: more threads than cores means time-slicing, and an operation waits for its
# slowest thread.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
over = panel.last if panel.last is not None and panel.last.threads > cores else None
at_cores = next((r for r in by_threads if r.threads == cores), best)  # section 2's run to compare with
if over is not None:
    x = over.steady_samples_per_second / at_cores.steady_samples_per_second
    told = ("slower beyond that" if x < 1 / yardstick else "faster beyond that" if x > yardstick
            else "within that, so this run cannot tell the two apart")
worked_answer(
    "What to look for: with more threads than cores the operating system time-slices them, and each "
    "operation waits for its slowest thread (section 3); how much that costs depends on the machine and "
    "on whatever else runs on it. "
    + (f"This run: the panel's last run, {over.threads} threads on {cores} core(s), trained "
       f"{rate(over.steady_samples_per_second)} steady against {rate(at_cores.steady_samples_per_second)} for "
       f"{at_cores.label} in section 2, {x:.2f}x; one run moves up to {yardstick:.2f}x here, so it was {told}."
       if over is not None else
       f"This run: the panel's last run used {panel.last.threads if panel.last is not None else 'no'} "
       f"thread(s), not more than the {cores} core(s): set its threads to {2 * cores}, press **Run**, then "
       "run this cell again.")
    + " Notebook 03 measures oversubscription with several processes.")

# %% [markdown]
# **3. Batch size.** With the panel, train once at batch size 64 and once at 512 (same
# learning rate). Predict before you run: which trains more samples per second, and which
# reaches the higher test accuracy after one epoch?
#
# <details><summary>Hint</summary>
#
# A larger batch gives each operation more work to split between threads, and makes fewer
# optimizer steps per epoch.
# </details>
#
# <details><summary>Worked answer</summary>
#
# Your two runs answer it: compare their `samples trained` and `test accuracy` lines. What
# differs between them: batch 512 makes 512 / 64 = 8 times fewer optimizer steps per epoch
# than batch 64, each on 8 times more samples, at the same learning rate. The linear scaling
# rule of Goyal et al. (2017) raises the learning rate with the batch to make up for the fewer
# steps. Notebook 01b measures batch sizes in repeated runs, by samples per second and by time
# to an accuracy; notebook 02 uses the rule for the synchronous parameter server.
# </details>
#
# **4. The data pipeline.** Your guess went into `guess_pipeline_ratio` before section 4
# ran; the next cell checks it.

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_pipeline_ratio, pipeline_ratio, tolerance=tolerance,
                 wrong={"no difference (the transforms cost nothing)": 1.0}, noise=yardstick - 1)

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    "If the per-sample transforms take a share `s` of the classic run's training time, removing them divides "
    "the time by `1 / (1 - s)`. "
    f"This run: {secs(classic.train_seconds)} of training with per-sample transforms against "
    f"{secs(memory.train_seconds)} in memory, a ratio of {pipeline_ratio:.2f} (one run each). The transforms took "
    f"{pct(share)} of the classic run's training time, and `1 / (1 - s)` = {1 / (1 - share):.2f} gives the "
    "same ratio by construction: the compute of both pipelines is taken to be the in-memory run's. Section 4 "
    "checked whether they cost more than the maths, against one run's noise.")

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT
everything = [first] + by_threads + list(pipelines.values())
display(Markdown(md("\n".join([
    machine_note(everything),
    f"- {len(everything)} runs of {epochs} epoch(s) of {len(ds.train_y):,} images in this notebook: "
    f"steady {rate(min(r.steady_samples_per_second for r in everything))} to "
    f"{rate(max(r.steady_samples_per_second for r in everything))}, test accuracy "
    f"{span([r.test_accuracy for r in everything])}.",
    f"- Threads, steady rate against {one.label} on {cores} core(s), one run each: {vs_one or 'nothing else ran'}"
    f" (ideal for {max(threads_list)} threads: {ideal:g}x).",
    f"- Data pipeline: per-sample transforms made training {pipeline_ratio:.2f}x as long as in-memory tensors "
    "(one run each).",
    f"- Noise: the same configuration ran {len(repeated)} times and moved up to {yardstick:.2f}x; the verdicts "
    "call a gap between runs that ran once each only beyond that.",
    f"- Figures: `{figures / '01_threads.png'}`, `{figures / '01_time_breakdown.png'}`."]))))

# %% [markdown]
# ## The course's scoreboard
#
# Every notebook adds the runs it measured to one table (`out/scoreboard.json`, next to the
# notebooks): below, this notebook's runs, one row per configuration (the runs of one
# configuration together, with their range), against the fastest single process of the same
# job; notebook 06 shows the whole scoreboard. Runs are compared only within one job (the same
# data, model and work): notebooks that train other sizes get their own table.

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import scoreboard
from costtrain.course import NoWrap

scoreboard.record("01_baseline", by_threads + list(pipelines.values()))
NoWrap(scoreboard.show(notebook="01_baseline"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
takeaways = [
    one_run_sentence(f"End to end for {epochs * len(ds.train_y):,} samples",
                     {r.label: r.total_seconds for r in by_threads}, note=False)
    + f"; test accuracy {span([r.test_accuracy for r in by_threads])}."]
takeaways.append("Threads: "
                 + claim("01.threads-fall-short", thread_speedup, ideal, yardstick=yardstick, busy=busy_threads).markdown())
takeaways += [
    f"Keep threads × processes ≤ cores: threads per process = cores // processes, which on these {cores} cores "
    f"is {threads_per_process(2)} for 2 processes.",
    claim("01.pipeline-before-threads", pipeline_ratio, thread_speedup, yardstick=yardstick,
          busy=busy_pipe or busy_threads).markdown()]
closing("01_baseline", takeaways, everything)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
