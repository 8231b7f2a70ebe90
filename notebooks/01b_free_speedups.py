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
# # 01b · Free speed-ups first: compile, mixed precision, memory layout, batch size
#
# Before asking whether *more processes* help (notebooks 02–05), try the levers one process
# already has. `torch.compile` compiles the net on its first call (on a CPU a C++ compiler
# builds the kernels; the
# [`torch.compile` tutorial](https://pytorch.org/tutorials/intermediate/torch_compile_tutorial.html)),
# so a one-off run pays that time before its first faster step; bf16 autocast runs on native
# bf16 instructions where the CPU has them and is emulated elsewhere, much slower than float32
# ([pytorch#146508](https://github.com/pytorch/pytorch/issues/146508)); `channels_last` stores
# an image pixel by pixel instead of channel by channel, which speeds up some conv nets
# ([PyTorch's channels-last tutorial](https://pytorch.org/tutorials/intermediate/memory_format_tutorial.html));
# a larger batch makes fewer optimizer steps per epoch, and the linear scaling rule of
# [Goyal et al. 2017](https://arxiv.org/abs/1706.02677) raises the learning rate with it.
# Which of them pays for *this* net on *your* machine is what this notebook measures.
#
# **You will learn**
# - how to switch each lever on in `costtrain` (`compile=True`, `amp="bf16"`,
#   `channels_last=True`, `batch_size` with `base_batch`) and what each does;
# - how to decide from *repeated, alternating* measurements, and why a lever that was not
#   faster in every alternating pair (each run with it against the baseline run beside it) is
#   not kept;
# - compile's one-off cost against its steady gain: the **break-even** number of samples, and
#   whether your job is longer than that;
# - batch size against *time to accuracy*, not only samples per second;
# - which levers to keep on your machine for this model: the conclusion is computed from the run.
#
# **Words.** *Set-up* includes compiling (`RunResult.compile_seconds` is the part of
# `setup_seconds` the first compiled step took), so a one-off run is charged for it.
# *Steady state* leaves out a run's warm-up (notebook 01 defines the window). A lever's
# *speed-up* is its median steady samples/s divided by the baseline's; its range is that of the
# repeats' ratios, each repeat against the baseline repeat run beside it. A *lever pays* when
# every repeat with it ran faster than the baseline repeat beside it (faster in every
# alternating pair: a slow spell of the machine slows both runs of a pair), it learns about as much from
# the same samples (at most one point of test accuracy less), **and** the whole job, charged
# its one-off cost, finishes sooner. A lever is *slower* when it was slower in every pair, and
# *within noise* when it was faster in some pairs and not in others.
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import inspect
import logging
import math
import time
import timeit
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (alternate, break_even_samples, build_model, check_prediction, claim,
                              conclusion, CosttrainError, cxx_compiler, Fast, first_verdict,
                              format_table, has_conv, judge, machine_note, make_levers, md,
                              median_index, multiply_adds, native_bf16, pick, reset_compiled,
                              run_header, run_panel, spread, summary, time_to_accuracy, Trial,
                              worked_answer)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # compile's "No CUDA runtime" note
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening

opening("01b_free_speedups")

# %% [markdown]
# ## Parameters
#
# The next cell holds the values this notebook runs with. Change them here, or let papermill inject others (`costtrain notebooks --only 01b -p subset=60000`,
# `costtrain notebooks --ci`). `job_samples` is the job the verdicts are about: a lever with a
# one-off cost pays only if the job is long enough. Figures go to `out/figures/` next to the
# notebooks (not tracked by git); only the reference build (`make notebooks`) writes `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
model = "simple"          # the classic 2-conv net; "mlp" has no convolutions (no channels_last)
subset = 6000             # training images (None: all 60,000)
test_subset = 2000        # test images
epochs = 1                # passes over the training set in each run
batch_size = 64           # the baseline's batch; lr is meant for it
lr = 0.01
momentum = 0.5
threads = None            # the tuned baseline's threads (None: every core; notebook 01 measures it)
repeats = 3               # alternating repeats of every configuration (2 or more: one run has no range)
measure_compile = True    # False skips torch.compile (its first step compiles the net)
batch_sizes = [32, 64, 128, 256]  # section 5: batch sizes, lr scaled by batch / batch_size
eval_every = 1000         # section 5: test accuracy every this many samples
target_accuracy = None    # section 5 (None: 1 point below the lowest final accuracy)
job_samples = 120000      # the job the verdicts are about (the full-size job of docs/measuring.md: 2 epochs of 60,000)
seed = 42
progress = False
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "01b_free_speedups")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
cores = costtrain.num_cores()
threads = threads or cores
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
common = dict(epochs=epochs, threads=threads, lr=lr, momentum=momentum, seed=seed, progress=progress)
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images, model {model!r}")
print(f"each run: {epochs} epoch(s) = {epochs * len(ds.train_y):,} samples; {repeats} alternating repeats "
      f"of every configuration; the verdicts are for a job of {job_samples:,} samples")
print(f"batch sizes of section 5: {', '.join(map(str, batch_sizes))} (lr {lr} is for batches of {batch_size})")
work = multiply_adds(build_model(model, ds.input_shape, ds.num_classes), ds.input_shape)
print(f"the {model} net: {work['parameters']:,} parameters; a mini-batch of {batch_size} is "
      f"{batch_size * work['forward'] / 1e6:.1f} M multiply-adds forward, "
      f"{batch_size * (work['forward'] + work['backward']) / 1e6:.1f} M with the backward pass "
      "(counted from the layers' shapes)")

# %% [markdown]
# ## 1. What this machine can use
#
# Each lever is checked before anything trains. The CPU's feature flags say whether bf16 is
# native (`avx512_bf16` or `amx_bf16` on x86, `bf16` on Arm); `torch.compile` needs a C++
# compiler on the CPU; `channels_last` changes only nets with 2-D convolutions. A lever the
# hardware cannot run fast is refused with the reason (`force_amp=True` runs bf16 anyway).

# %%
# NBVAL_IGNORE_OUTPUT
net = build_model(model, ds.input_shape, ds.num_classes)
native, has = native_bf16()
compiler = cxx_compiler()
candidates, skipped = {"baseline": {}}, {}
if has_conv(net):
    candidates["channels_last"] = {"channels_last": True}
else:
    skipped["channels_last"] = f"{type(net).__name__} has no convolution, so there is nothing to lay out"
if native:
    candidates["bf16"] = {"amp": "bf16"}
else:
    skipped["bf16"] = (f"this CPU has no native bf16 ({has}): the trainers refuse it, emulated bf16 is slow "
                       "([pytorch#146508](https://github.com/pytorch/pytorch/issues/146508))")
if not measure_compile:
    skipped["compile"] = ("skipped in this run (`measure_compile = False`, the CI setting: its first step "
                          "compiles the net, which this small run is not meant to wait for); set "
                          "`measure_compile = True` to measure it")
elif compiler is None:
    skipped["compile"] = "no C++ compiler was found, so torch.compile cannot build CPU kernels here"
else:
    candidates["compile"] = {"compile": True}
display(Markdown(md(
    f"**This machine:** bf16 {'is native (' + has + ')' if native else 'is not native (' + has + ')'}; "
    f"C++ compiler: {compiler or 'none found'}. Levers measured below: "
    f"{', '.join(c for c in candidates if c != 'baseline') or 'none'}"
    + (f"; not measured: {'; '.join(f'{k}: {v}' for k, v in skipped.items())}." if skipped else "."))))

# %% [markdown]
# How the levers enter a training loop: `train_baseline` and `train_hogwild` call the net
# through this small class. Full batches go through the compiled net, a smaller last batch
# through the eager one (no second compile); autocast wraps the forward pass, and the scores
# come back in float32 so the loss is computed in float32. `warm_up` takes the first compiled
# step during set-up and undoes it (gradients dropped, BatchNorm statistics put back).

# %%
# NBVAL_CHECK_OUTPUT
print(inspect.getsource(Fast))

# %% [markdown]
# ## 2. One run with the levers you pick
#
# The panel sets **the run of this section**: batch size, learning rate (for batches of
# `batch_size`, scaled by the linear rule when you pick another batch size), `torch.compile`,
# mixed precision and `channels_last`. A lever this machine cannot run fast is refused before
# training, and the reason is printed. Sections 3–5 use the `parameters` values.

# %%
def lever_run(v, live):
    """One baseline run with the panel's values `v`."""
    chosen = make_levers(v["compile"], v["amp"], v["channels_last"]).describe()
    live.start(f"batch {v['batch_size']}, levers: {chosen}")
    try:
        r = costtrain.train_baseline(model, ds, epochs=epochs, threads=threads, batch_size=v["batch_size"],
                                     base_batch=batch_size, lr=v["lr"], momentum=momentum, seed=seed,
                                     compile=v["compile"], amp=v["amp"], channels_last=v["channels_last"],
                                     progress=progress, on_progress=live)
    except CosttrainError as exc:
        print(f"refused before training: {exc}")
        return None
    live.finish(r)
    print(summary(r))
    return r


panel = run_panel("01b_free_speedups", lever_run, batch_size=batch_size, lr=lr, compile=False, amp="off",
                  channels_last=False)
panel

# %%
# NBVAL_IGNORE_OUTPUT
first = panel.run()

# %% [markdown]
# ## 3. Each lever against the tuned baseline, repeated
#
# The same work runs without levers (the baseline: one process, in-memory data, `threads`
# intra-op threads) and with each lever on its own, in turn: baseline, lever 1, lever 2, …,
# then again (ABAB), so that a slow spell of the machine hits every configuration alike.
# Before each compiled run `torch._dynamo.reset()` forgets the compiled graphs of this kernel,
# so every repeat traces and compiles again; what Inductor's caches (on disk and in this
# kernel) still save the repeats, section 4 measures. The verdicts charge the longest compile
# measured: what a one-off run pays. The table gives each lever's speed-up (defined at the top)
# with the range of its repeats' pairs: each run with the lever against the baseline run of the
# same round. A lever is kept only if it was faster in every pair (a slow spell slows both runs
# of a round alike, so the pairs see through it where the two ranges of rates may not).
#
# **Exercise 1, predict first:** how many times the baseline's steady samples/s will the best
# lever train? Write your guess in the next cell before the runs; the Exercises check it.

# %%
guess_lever_ratio = None  # your guess: the best lever's steady samples/s ÷ the baseline's

# %%
# NBVAL_IGNORE_OUTPUT
runs = {label: [] for label in candidates}
for _, (label, kw) in alternate(list(candidates.items()), repeats):
    if "compile" in kw:
        reset_compiled()
    r = costtrain.train_baseline(model, ds, batch_size=batch_size, **common, **kw)
    r.label = label
    runs[label].append(r)


def steady(label):
    return [r.steady_samples_per_second for r in runs[label]]


base = spread(steady("baseline"))
noise = base.high / base.low if base.n > 1 else math.inf  # how much one run moves here: the baseline's repeats


def speedup(label):
    """The one definition of a lever's speed-up: median steady samples/s ÷ the baseline's."""
    return spread(steady(label)).median / base.median


base_setup = spread([r.setup_seconds for r in runs["baseline"]]).median
verdicts = [judge(Trial(label, steady(label), steady("baseline"),
                        extra_setup=max(r.compile_seconds for r in runs[label]), kwargs=candidates[label],
                        accuracy=spread([r.test_accuracy for r in runs[label]]).median,
                        base_accuracy=spread([r.test_accuracy for r in runs["baseline"]]).median),
                  job_samples=job_samples, base_setup=base_setup)
            for label in candidates if label != "baseline"]
paired = {v.trial.label: v.ratio for v in verdicts}  # each repeat against the baseline repeat beside it
rows = []
for label in candidates:
    s, acc = spread(steady(label)), spread([r.test_accuracy for r in runs[label]])
    rows.append([label, f"{s.median:,.0f} ({s.low:,.0f}-{s.high:,.0f})",
                 f"{speedup(label):.2f}x" + (f" ({paired[label].low:.2f}-{paired[label].high:.2f})"
                                             if label in paired and paired[label].n > 1 else ""),
                 round(spread([r.setup_seconds for r in runs[label]]).median, 2),
                 round(max(r.compile_seconds for r in runs[label]), 2), round(100 * acc.median, 1)])
print(format_table(rows, ("configuration", "steady samples/s median (range)", "speed-up (range)",
                          "set-up s (median)", "compile s (max)", "test acc %")))

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
labels = [v.trial.label for v in verdicts]
mid = [speedup(v.trial.label) for v in verdicts]
err = [[max(0.0, m - v.ratio.low) for m, v in zip(mid, verdicts)],
       [max(0.0, v.ratio.high - m) for m, v in zip(mid, verdicts)]]
ax.bar(labels, mid, yerr=err, capsize=6, color=["tab:green" if v.kept else "tab:gray" for v in verdicts])
ax.axhline(1.0, color="k", lw=1, ls="--", label="the baseline")
ax.set(ylabel="speed-up (steady samples/s ÷ baseline's)",
       title=f"Levers on {model}, {repeats} alternating repeats (bars: range of the repeats)")
ax.legend(fontsize=8)
fig.savefig(figures / "01b_levers.png", dpi=90)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
lines = [f"- **{v.trial.label}**: {'kept' if v.kept else 'dropped'} for a job of {job_samples:,} samples: {v.why}"
         + (f"; repeats {v.ratio.low:.2f}x to {v.ratio.high:.2f}x." if v.ratio.n > 1 else ".")
         for v in verdicts]
lines += [f"- **{k}**: not measured: {why}." for k, why in skipped.items()]
best_lever = max(verdicts, key=lambda v: speedup(v.trial.label), default=None)
best_ratio = speedup(best_lever.trial.label) if best_lever else 1.0  # 1.0: no lever tried, the baseline itself
# exercise 1's check is no finer than the best lever's own range
lever_noise = (max(1 - best_lever.ratio.low / best_ratio, best_lever.ratio.high / best_ratio - 1)
               if best_lever else None)  # how far its repeats moved: what this run can tell apart
lever_tolerance = max(0.25, lever_noise or 0.0)
lever_runs = [r for rs in runs.values() for r in rs]
display(Markdown(md(machine_note(lever_runs) + "\n\n"
                    + ("**Measured:**\n" + "\n".join(lines) if lines else "**Measured:** no lever could be tried here."))))

# %% [markdown]
# ## 4. Compile: one-off cost against steady gain
#
# Compiling costs `C` seconds once; afterwards each sample takes `1/r_c` seconds instead of
# `1/r_e` (steady rates compiled and eager). The compiled run catches up after
#
# $$N^* = \frac{C}{1/r_e - 1/r_c}$$
#
# samples, if the compiled steps are faster at all; a job shorter than `N*` loses. The figure
# draws the predicted wall time of both against the job's length, from the measured numbers.

# %%
# NBVAL_IGNORE_OUTPUT
compiled = next((v for v in verdicts if v.trial.label == "compile"), None)
r_e = spread(steady("baseline")).median
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
if compiled is None:
    n = [0, job_samples]
    ax.plot(n, [base_setup + x / r_e for x in n], label="eager (measured rate)")
    ax.set_title("torch.compile not measured in this run", fontsize=10)
    compile_text = f"**Compile:** {skipped.get('compile', 'not measured')}."
else:
    C, r_c = compiled.trial.extra_setup, spread(compiled.trial.rates).median
    n_star = break_even_samples(C, r_e, r_c)
    top = max(job_samples, 2 * n_star if math.isfinite(n_star) else 0)
    n = [top * i / 50 for i in range(51)]
    ax.plot(n, [base_setup + x / r_e for x in n], label="eager")
    ax.plot(n, [base_setup + C + x / r_c for x in n], label=f"compiled (+{C:.1f} s once)")
    ax.axvline(job_samples, color="k", ls=":", lw=1, label="the job")
    if math.isfinite(n_star):
        ax.axvline(n_star, color="tab:red", ls="--", lw=1, label="break-even")
    first_c = runs["compile"][0].compile_seconds
    later = [r.compile_seconds for r in runs["compile"][1:]]
    compile_text = (
        f"**Compile:** the first compile in this kernel took {first_c:.1f} s"
        + (f", the repeats after `torch._dynamo.reset()` {spread(later).text()} s" if later else "")
        + f" (the verdict charges the longest, {C:.1f} s). Steady state: {r_c:,.0f} samples/s compiled "
        f"against {r_e:,.0f} eager (its speed-up, {speedup('compile'):.2f}x). "
        + (f"At those medians its break-even is **{n_star:,.0f} samples**; the job has {job_samples:,}. "
           if math.isfinite(n_star) else "The compiled steps were not faster at the medians: no job is long enough. ")
        + f"Verdict for the job: **{'kept' if compiled.kept else 'dropped'}** ({compiled.why}).")
    if later and math.isfinite(n_star):  # the same break-even, charging a warm cache's compile instead
        c_warm = spread(later).median
        n_warm = break_even_samples(c_warm, r_e, r_c)
        compile_text += (
            f"\n\n**Break-even, cold and warm cache:** charging the first compile ({C:.1f} s) it is "
            f"{n_star:,.0f} samples; charging the repeats' median compile with the caches warm ({c_warm:.3g} s) it "
            f"is {n_warm:,.0f} samples, {'inside' if n_warm <= job_samples else 'beyond'} the job's "
            f"{job_samples:,}. The verdict above charges the longest compile.")
    if later:
        compile_text += "\n\n" + claim("01b.compile-cache", later, first_c, yardstick=noise).markdown()
ax.set(xlabel="samples trained (job length)", ylabel="predicted wall time, s")
ax.legend(fontsize=8)
fig.savefig(figures / "01b_compile_break_even.png", dpi=90)
plt.show()
display(Markdown(md(machine_note(runs.get("compile", [])) + "\n\n" + compile_text)))

# %% [markdown]
# ## 5. Batch size against time to accuracy
#
# A larger batch gives every operation more work and makes fewer optimizer steps per epoch
# (the table below prints how many); with the linear scaling rule (`base_batch=batch_size`:
# the learning rate grows with the batch) each step moves further. Does a larger batch train
# more samples per second here, and does it reach a test accuracy sooner? Every batch size
# trains the same samples, evaluated every `eval_every` samples, in alternating repeats.
#
# **Exercise 2, predict first:** how many times the smallest batch's steady samples/s will the
# largest batch train? Write your guess in the next cell before the runs.

# %%
guess_batch_ratio = None  # your guess: steady samples/s at the largest batch ÷ at the smallest

# %%
# NBVAL_IGNORE_OUTPUT
by_batch = {b: [] for b in batch_sizes}
for _, b in alternate(batch_sizes, repeats):
    r = costtrain.train_baseline(model, ds, batch_size=b, base_batch=batch_size, eval_every=eval_every, **common)
    r.label = f"batch {b}"
    by_batch[b].append(r)
finals = {b: spread([r.test_accuracy for r in rs]).median for b, rs in by_batch.items()}
target = target_accuracy if target_accuracy is not None else round(min(finals.values()) - 0.01, 3)


def to_target(r):
    sec, _ = time_to_accuracy(r.eval_curve, target)
    return None if sec is None else r.setup_seconds + sec


seconds_to_target = {f"batch {b}": [to_target(r) for r in rs] for b, rs in by_batch.items()}
rows = [[f"batch {b}", math.ceil(len(ds.train_y) / b), f"{r.config['lr']:g}",
         f"{spread([x.steady_samples_per_second for x in rs]).median:,.0f}",
         round(100 * finals[b], 1),
         spread([t for t in seconds_to_target[f'batch {b}'] if t is not None]).text()
         if any(t is not None for t in seconds_to_target[f"batch {b}"]) else "not reached"]
        for b, rs in by_batch.items() for r in rs[:1]]
print(format_table(rows, ("run", "steps per epoch", "lr used", "steady samples/s (median)", "final test acc %",
                          f"s to {100 * target:.1f} % (median, range)")))

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
for b, rs in by_batch.items():
    r = rs[median_index([x.steady_samples_per_second for x in rs])]
    c = r.eval_curve
    ax.plot([r.setup_seconds + s for s in c["seconds"]], [100 * a for a in c["accuracy"]], "o-", ms=3,
            label=f"batch {b}")
ax.axhline(100 * target, color="k", ls=":", lw=1, label="target")
ax.set(xlabel="set-up + training seconds", ylabel="test accuracy %", title="Batch size: accuracy against time (median run)")
ax.legend(fontsize=8)
fig.savefig(figures / "01b_batch_time_to_accuracy.png", dpi=90)
plt.show()
batch_verdict = first_verdict(seconds_to_target, goal=f"{100 * target:.1f} % test accuracy")
small, large = min(batch_sizes), max(batch_sizes)
rates_small = [x.steady_samples_per_second for x in by_batch[small]]
rates_large = [x.steady_samples_per_second for x in by_batch[large]]
batch_ratio = spread(rates_large).median / spread(rates_small).median
size_ratio = large / small
missed = {b: sum(to_target(r) is None for r in rs) for b, rs in by_batch.items()}
reached = ("every batch size reached it in all its repeats" if not any(missed.values())
           else "; ".join(f"batch {b} missed it in {n} of {len(by_batch[b])} repeat(s)" for b, n in missed.items() if n))
batch_runs = [r for rs in by_batch.values() for r in rs]
display(Markdown(md(
    machine_note(batch_runs) + "\n\n"
    f"**Measured:** {batch_verdict}. Batch {large} trained {batch_ratio:.2f}x the steady samples per "
    f"second of batch {small} (medians), with {size_ratio:g}x the samples per step. The target "
    f"({100 * target:.1f} %) is "
    + ("the one set in the parameters" if target_accuracy is not None
       else "1 point below the lowest final accuracy among the batch sizes")
    + f": {reached}.\n\n"
    + claim("01b.larger-batch-faster", rates_large, rates_small).markdown() + "\n\n"
    + claim("01b.less-than-batch-ratio", batch_ratio, size_ratio, yardstick=noise).markdown())))

# %% [markdown]
# ## Exercises
#
# **1. Predict, then measure: the best lever.** Before section 3 ran, your guess of how many
# times the baseline's steady samples/s the best lever trains went into `guess_lever_ratio`;
# the next cell checks it.
#
# <details><summary>Hint</summary>
#
# This net is small: the parameters' cell printed the multiply-adds of one mini-batch. What does
# compile remove (Python overhead, separate kernels fused into one), what does `channels_last`
# change (the order in which a convolution reads memory), and how much of a step is that?
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_lever_ratio, best_ratio, tolerance=lever_tolerance,
                 wrong={"no gain, as if every lever were within noise": 1.0}, noise=lever_noise)

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    "The repeats decide, not one run: a lever that was not faster in every alternating pair is dropped, however "
    "large its median speed-up, and one that pays in steady state can still lose the job to its one-off "
    "cost. "
    + (f"This run: the best lever was **{best_lever.trial.label}**, {best_ratio:.2f}x the baseline's steady "
       f"samples/s (repeats {best_lever.ratio.low:.2f}x to {best_lever.ratio.high:.2f}x); for the job it was "
       f"{'kept' if best_lever.kept else 'dropped'} ({best_lever.why}). Every lever's speed-up: "
       + ", ".join(f"{v.trial.label} {speedup(v.trial.label):.2f}x" for v in verdicts) + "."
       if best_lever else "This run: no lever could be tried here, so the answer is the baseline itself, 1.0."))

# %% [markdown]
# **2. Batch size and throughput.** Your guess of how many times more samples per second the
# largest batch size of section 5 trains than the smallest went into `guess_batch_ratio`
# before section 5 ran; the next cell checks it.
#
# <details><summary>Hint</summary>
#
# Per step there is fixed work (Python, launching operations, the optimizer step) and work
# that grows with the batch. A larger batch spreads the fixed part over more samples.
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_batch_ratio, batch_ratio, wrong={"in proportion to the batch size": size_ratio})

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    "Expect more, but less than in proportion to the batch size: the fixed part of a step is spread over "
    "more samples, while the part that grows with the batch stays the same per sample. "
    f"This run: batch {large} trained {batch_ratio:.2f}x the steady samples/s of batch {small}, with "
    f"{size_ratio:g}x the samples per step.\n\n"
    + claim("01b.larger-batch-faster", rates_large, rates_small).markdown() + "\n\n"
    + claim("01b.less-than-batch-ratio", batch_ratio, size_ratio, yardstick=noise).markdown() + "\n\n"
    f"Whether the larger batch also reaches the target sooner is a different question; section 5 answered "
    f"it for this net: {batch_verdict}.")

# %% [markdown]
# **3. bf16 without native support.** The next cell times a 256×256 matrix product in float32
# and in bf16 on this CPU. Write your guess of the bf16 time ÷ the float32 time in the next
# cell, then run the timing and the check.
#
# <details><summary>Hint</summary>
#
# Section 1 printed whether this CPU has native bf16. Without it, every bf16 product is
# converted and computed on a slower path
# ([pytorch#146508](https://github.com/pytorch/pytorch/issues/146508)).
# </details>

# %%
guess_bf16_ratio = None  # your guess: bf16 time ÷ float32 time

# %%
# NBVAL_IGNORE_OUTPUT
a32 = torch.randn(256, 256)
a16 = a32.bfloat16()
t32s = [t / 5 for t in timeit.repeat(lambda: a32 @ a32, number=5, repeat=5)]  # seconds per product, 5 repeats
t16s = [t / 5 for t in timeit.repeat(lambda: a16 @ a16, number=5, repeat=5)]
t32, t16 = min(t32s), min(t16s)  # the fastest repeat: the slower ones were slowed by other work (timeit's docs)
bf16_ratio = t16 / t32
# how much the measurement moves: the second-fastest repeat against the fastest (the slowest
# repeats, the first one's warm-up included, are the interference timeit's docs leave out)
timing_noise = max(sorted(t32s)[1] / t32, sorted(t16s)[1] / t16)
print(f"256x256 matrix product: float32 {1e3 * t32:.3f} ms, bf16 {1e3 * t16:.3f} ms (the fastest of 5 "
      f"repeats of 5; bf16 native on this CPU: {native})")

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_bf16_ratio, bf16_ratio, wrong={"as fast as float32": 1.0}, noise=timing_noise - 1)

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    "With native bf16 (AMX, AVX512-BF16 on x86, BF16 on Arm) the product runs on bf16 instructions; without "
    "them, every bf16 product is converted and computed on a slower path "
    "([pytorch#146508](https://github.com/pytorch/pytorch/issues/146508)): that is why the trainers refuse "
    "`amp=\"bf16\"` there unless `force_amp=True`. "
    f"This run, on a CPU {'with' if native else 'without'} native bf16 ({has}): float32 {1e3 * t32:.3f} ms, "
    f"bf16 {1e3 * t16:.3f} ms, a ratio of {bf16_ratio:.2f}.\n\n"
    + (claim("01b.bf16-native-faster", 1e3 * t16, 1e3 * t32, yardstick=timing_noise) if native else
       claim("01b.bf16-emulated-slower", 1e3 * t16, 1e3 * t32, yardstick=timing_noise)).markdown())

# %% [markdown]
# **4. Your own job length.** With the compile numbers of section 4, how long must a job be
# (in samples) before compiling pays? Does the answer change if the compile cache is warm?
#
# <details><summary>Hint</summary>
#
# `N* = C / (1/r_e - 1/r_c)`. A warm compile cache lowers `C` (section 4 measured what the
# caches saved the repeats here); the rates are measured after the compile.
# </details>
#
# <details><summary>Worked answer</summary>
#
# Section 4 prints `N*` from this run's numbers, with the cold compile and with a warm cache's
# (or says compile was not measured). A smaller `C` moves `N*` proportionally closer; if the
# compiled steps are not faster, no `C` is small enough. Run `costtrain advise`: it measures the levers for your model and counts the compile
# time against your job's length.
# </details>

# %% [markdown]
# ## The course's scoreboard
#
# Every notebook adds the runs it measured to one table (`out/scoreboard.json`, next to the
# notebooks): below, this notebook's runs of the levers and batch sizes, one row per
# configuration (its repeats together, with their range), against the fastest single-process
# configuration of the same job; notebook 06 shows the whole scoreboard. The levers kept here
# are written to `out/findings.json` for the notebooks that run a single-process baseline later.

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import scoreboard
from costtrain.course import NoWrap

scoreboard.record("01b_free_speedups", lever_runs + batch_runs)
kept_v = [v for v in verdicts if v.kept]


def lever_words(v):
    return f"{v.trial.label} {speedup(v.trial.label):.2f}x [{v.ratio.low:.2f}-{v.ratio.high:.2f}]"


if kept_v:
    levers_why = ("notebook 01b measured " + " and ".join(lever_words(v) for v in kept_v)
                  + f" the plain baseline's steady samples/s on this machine, faster in every alternating pair, and kept "
                  f"{'it' if len(kept_v) == 1 else 'them'} for a job of {job_samples:,} samples")
elif verdicts:
    levers_why = (f"notebook 01b kept no lever on this machine for a job of {job_samples:,} samples ("
                  + ", ".join(lever_words(v) for v in verdicts) + " the plain baseline's steady samples/s)")
else:
    levers_why = "notebook 01b could try no lever on this machine"
levers_kept = {k: (value if v.kept else False) for v in verdicts for k, value in v.trial.kwargs.items()}
scoreboard.remember("01b_free_speedups", "levers", {"kept": levers_kept, "why": levers_why,
                                                    "job_samples": job_samples})
NoWrap(scoreboard.show(notebook="01b_free_speedups"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
chosen = pick(verdicts)
sentence = conclusion(verdicts, f"the {model} net on {ds.name} (a job of {job_samples:,} samples)")
if skipped:
    sentence = sentence[:-1] + "; not measured: " + ", ".join(skipped) + "."
keep = {k: v for k, v in levers_kept.items() if v}
closing("01b_free_speedups", [
    sentence[0].upper() + sentence[1:],
    "The best single lever: " + (f"**{chosen.trial.label}** ({speedup(chosen.trial.label):.2f}x the baseline's "
                                 f"steady samples/s): the job of {job_samples:,} samples is predicted at "
                                 f"{chosen.job_seconds:.1f} s instead of {chosen.base_seconds:.1f} s, its one-off "
                                 "cost included"
                                 if chosen else "none: keep the plain baseline") + ".",
    f"Batch size: {batch_verdict}.",
    "Notebooks 04, 05 and 06 read what this notebook kept on this machine (`out/findings.json`) and give "
    "their single-process runs " + (", ".join(f"`{k}={v!r}`" for k, v in keep.items() if k != "compile")
                                    or "no lever") + (" (not compile: in one kernel only their first run would "
                                                      "pay its compile)" if "compile" in keep else "")
    + ("" if keep else " (none paid here)") + ".",
    f"Figures: `{figures / '01b_levers.png'}`, `{figures / '01b_compile_break_even.png'}`, "
    f"`{figures / '01b_batch_time_to_accuracy.png'}`.",
], lever_runs + batch_runs)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {cores} cores")
