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
# # 03b · Hogwild! where it shines: a sparse model
#
# Notebook 03 ran Hogwild! on a dense 2-conv net: every step writes *every* parameter (notebook
# 03 counted them, section 1 counts them again), so any two steps that overlap in time write
# the same weights, and the comparison that matters is against one process that uses every
# core. The Hogwild! paper ([Niu, Recht, Ré, Wright, NIPS 2011](https://arxiv.org/abs/1106.5730))
# promises near-linear speed-ups for **sparse** problems, where each step touches a few
# coordinates and two workers rarely write the same one. This notebook runs the *same*
# `train_hogwild` call on both kinds of model, on your machine, and measures whether there is
# an advantage, where it comes from, and whether it fades as the model gets denser.
#
# **You will learn**
# - what a sparse model is in PyTorch: `nn.EmbeddingBag(..., sparse=True)` gives sparse
#   gradients, so one SGD step reads and writes only the rows of the batch's features;
# - the steady-state speed of Hogwild! with one process per core (the panel picks another
#   count) against (a) one single-thread process and (b) one process using every core, for the
#   sparse model and the dense net, with the test accuracy reached on the same number of
#   samples, and the time end to end, the workers' start-up included;
# - how sparsity matters: a sweep over the number of non-zero features per sample `k`, with
#   the measured fraction of a step's rows that another worker wrote meanwhile (collisions);
# - the same on **real text**, offline: WordNet's nouns, each to be sorted into its supersense
#   (animal, artifact, person, ...) from the words of its definition. Do real words collide
#   more or less often than synthetic ones? Exercise 6 asks for your guess before section 4
#   computes it.
#
# **Time:** the last cell prints how long this notebook ran; the first says on which machine.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import inspect
import time
import warnings
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (batch_row_probability, break_even_samples, busy_note, CANNOT_TELL, check_prediction, claim,
                              Collisions, expected_row_overlap, machine_note, md, results_table, run_header,
                              run_panel, secs, SLOT_NS, SparseLinear, split_work, spread, step_footprint, train_baseline,
                              train_hogwild, worked_answer, worker)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening

opening("03b_sparse_hogwild")

# %% [markdown]
# ## Parameters
#
# The next cell holds the values this notebook runs with (small, so that it finishes quickly).
# Change them here, or let papermill inject others (`costtrain notebooks -p sparse_train=100000`,
# `costtrain notebooks --ci`). Values derived from them are computed in the cell after it.
# Figures go to `out/figures/` next to the notebooks (not tracked by git); only the reference
# build (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
sparse_train = 30000    # sparse-synthetic training samples (generated from a seed)
sparse_test = 4000      # ... and test samples
features = 2 ** 18      # d: features, i.e. rows of the model's table
k = 16                  # non-zero features per sample
subset = 3000           # Fashion-MNIST images for the dense net; differs: only a contrast here
test_subset = 1000      # Fashion-MNIST test images; differs: only a contrast here
total_epochs = 2        # the work of every run, in epochs of its dataset
processes = None        # Hogwild! processes of every run (None: one per core); the panel picks another count
sweep_k = [1, 16, 512]  # the sparsity sweep: non-zeros per sample (k runs there too, a second time)
sweep_train = 10000     # training samples of each sweep run
wordnet_subset = 65536  # WordNet nouns to train on (a power of two: see section 4; None: all of the split)
batch_size = 64
lr = 0.5                # sparse-linear's SGD learning rate (momentum 0); differs: another model
dense_lr = 0.01         # the dense net's (momentum 0.5, as in notebook 03)
seed = 42
progress = False
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "03b_sparse_hogwild")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
cores = costtrain.num_cores()
processes = processes or cores
ks = sorted(set(sweep_k) | {k})  # section 2's k runs again in the sweep: one k measured twice
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
sparse_ds = costtrain.load_dataset("sparse-synthetic", train=sparse_train, test=sparse_test,
                                   features=features, k=k)
dense_ds = costtrain.load_dataset("fashion-mnist", subset=subset, test_subset=test_subset, seed=seed)
print(f"sparse-synthetic: {len(sparse_ds.train_y):,} training / {len(sparse_ds.test_y):,} test samples, "
      f"d = {features:,} features, k = {k} per sample")
print(f"fashion-mnist: {len(dense_ds.train_y):,} training / {len(dense_ds.test_y):,} test images")

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import ready_workers

print(ready_workers())  # the fork server, once, before the first multi-process run this notebook measures

# %% [markdown]
# ## 1. The sparse problem and the sparse model
#
# `sparse-synthetic` is generated from a seed: each sample is a bag of `k` feature ids out of
# `d`, drawn with a Zipf-like frequency (a few features are common, most are rare, as words
# are in text), and labelled by a planted linear model with 5 % label noise <!-- fixed: the generator's label noise -->. The model is
# logistic regression written as one `EmbeddingBag`: the logits of a sample are the sum of the
# table rows of its features, plus a bias.

# %%
print(inspect.getsource(SparseLinear))

# %% [markdown]
# With `sparse=True` the gradient of the table is a sparse tensor holding only the rows of the
# batch's features, and plain SGD (momentum 0: a momentum buffer would touch every row it ever
# saw, every step; Exercise 3) writes only those rows. Here is what one step of each model
# writes:

# %%
# NBVAL_CHECK_OUTPUT
sparse_net = SparseLinear(features, 2)
dense_net = costtrain.SimpleNN()
fs = step_footprint(sparse_net, sparse_ds.train_x[:batch_size], sparse_ds.train_y[:batch_size])
fd = step_footprint(dense_net, dense_ds.train_x[:batch_size], dense_ds.train_y[:batch_size])
display(Markdown(md(
    f"One step on {batch_size} samples writes **{fs['written']:,} of {fs['total']:,}** parameters of "
    f"the sparse model ({100 * fs['fraction']:.2f} %) and **{fd['written']:,} of {fd['total']:,}** of "
    f"the dense net ({100 * fd['fraction']:.0f} %).")))

# %% [markdown]
# Two Hogwild! workers collide when one writes a row while the other's step, which read that
# row, is still computing. `train_hogwild` measures it with a small shared table (row → time
# and writer of its last write). Time is cut into short slots and one slot in
# `collision_every` is measured, by every worker at once: in it each step stamps the rows it
# wrote, and a step that lies wholly inside it first checks its rows for another worker's stamp
# newer than its own start. Outside the measured slots a step only reads the clock (section 4
# measures what measuring every slot costs). The helper and the two lines of the worker loop
# that call it:

# %%
every_default = inspect.signature(train_hogwild).parameters["collision_every"].default
print(f"slots of {SLOT_NS / 1e6:g} ms; train_hogwild measures one in {every_default} by default\n")
print(inspect.getsource(Collisions.end))
print("\n".join(line for line in inspect.getsource(worker).splitlines()
                if "collisions.begin()" in line or "collisions.end()" in line))

# %% [markdown]
# ## 2. The same Hogwild! call on the sparse model and on the dense net
#
# Every run below does the same work, `total_epochs` epochs of its dataset, so the test
# accuracies compare at equal samples. For each model: (a) one process with one thread, (b)
# one process with every core, then Hogwild! (each worker using `cores // processes` threads).
#
# The panel sets **the sparse model's runs**: the number of Hogwild! processes (one count per
# run: move the slider and press **Run** for another), the batch size and the learning rate.
# Press **Run** (the live plot shows the loss of each run as it trains) or run the cell below
# it. The dense net then runs in the cell after, with the `parameters` values (`dense_lr`,
# momentum 0.5, as in notebook 03) and (a), (b) and Hogwild! with the panel's process count.
#
# **Exercise 1, predict first: the sparse speed-up.** How many times the steady-state samples/s
# of one process using every core (b) will the Hogwild! run of the sparse model reach?
# Write your guess in the next cell before the runs; the Exercises at the end check it.
#
# <details><summary>Hint</summary>
#
# A step of the sparse model writes only its batch's rows (section 1 printed the share): how
# often will two workers write the same row? Each Hogwild! worker runs its own Python loop;
# how much of a small step can (b)'s second thread take over? The dense net below is the
# comparison: every step writes every parameter.
# </details>

# %%
guess_sparse_speedup = None  # your guess, a number such as 1.5 (no quotes): Hogwild!'s steady samples/s ÷ (b)'s

# %%
def scaling(model, ds, procs, batch_size, lr, momentum=None, live=None):
    """(a), (b) and Hogwild! with each of `procs` processes on `ds`, all doing total_epochs of work."""
    common = dict(batch_size=batch_size, lr=lr, momentum=momentum, seed=seed, progress=progress)
    plans = [("(a) 1 process, 1 thread", train_baseline, dict(epochs=total_epochs, threads=1)),
             (f"(b) 1 process, {cores} threads", train_baseline, dict(epochs=total_epochs, threads=cores))]
    plans += [(f"Hogwild! {p} process{'es' if p > 1 else ''}", train_hogwild,
               dict(timeout=600, **split_work(total_epochs, p))) for p in procs]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # more processes than cores: allowed, and warned
        for label, trainer, kw in plans:
            if live is not None:
                live.start(f"{model}: {label}")
            out[label] = r = trainer(model, ds, on_progress=live, **kw, **common)
            r.label = f"{model}: {label}"
            if live is not None:
                live.finish(r)
    return out


def sparse_run(v, live):
    """The sparse model's runs with the panel's values `v`."""
    result = scaling("sparse-linear", sparse_ds, [v["processes"]], v["batch_size"], v["lr"], live=live)
    print(results_table(list(result.values())))
    return result


panel = run_panel("03b_sparse_hogwild", sparse_run, processes=processes, batch_size=batch_size, lr=lr)
panel

# %%
# NBVAL_IGNORE_OUTPUT
sparse_runs = panel.run()
top = max(r.config["processes"] for r in sparse_runs.values() if r.method == "hogwild")

# %%
# NBVAL_IGNORE_OUTPUT
dense_runs = scaling("simple", dense_ds, [top], batch_size, dense_lr, 0.5)
runs = {"sparse-linear": sparse_runs, "simple": dense_runs}
print(results_table(list(dense_runs.values())))
_, dense_b, dense_h = dense_runs.values()
dense_speedup = dense_h.steady_samples_per_second / dense_b.steady_samples_per_second  # Hogwild! ÷ (b), dense


# %%
# NBVAL_IGNORE_OUTPUT
def speedups(model_runs):
    """Steady-state samples/s of the Hogwild! run over (a) and over (b)."""
    a, b, h = model_runs.values()
    return (h.steady_samples_per_second / a.steady_samples_per_second,
            h.steady_samples_per_second / b.steady_samples_per_second)


fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
for i, (model, model_runs) in enumerate(runs.items()):
    vs_a, vs_b = speedups(model_runs)
    bars = ax.bar([i - 0.2, i + 0.2], [vs_a, vs_b], 0.38, color=["tab:green", "tab:blue"],
                  label=["vs (a) 1 process, 1 thread", f"vs (b) 1 process, {cores} threads"] if i == 0 else None)
    ax.bar_label(bars, fmt="%.2fx", fontsize=8)
ax.axhline(1, color="black", lw=0.6)
ax.axhline(top, color="grey", ls=":", lw=1, label=f"{top}x: one per process")
ax.set_xticks(range(len(runs)), list(runs))
ax.set(ylabel="steady-state speed-up", title=f"Hogwild! {top} process{'es' if top > 1 else ''}: "
       "the sparse model against the dense net (one run each)")
ax.legend(fontsize=8)
fig.savefig(figures / "03b_speedup.png", dpi=110)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
rows = []
for model, model_runs in runs.items():
    a = next(iter(model_runs.values()))
    for label, r in model_runs.items():
        c = r.extra.get("collisions") or {}
        rows.append(f"| {model} | {label} | {r.samples:,} | {r.steady_samples_per_second:,.0f} | "
                    f"{100 * r.test_accuracy:.2f} | {100 * (r.test_accuracy - a.test_accuracy):+.2f} | "
                    + (f"{c['row_overlap_fraction']:.4f}" if c.get("measured") else
                       ("not sampled (dense)" if c else "-")) + " |")
display(Markdown(md("| model | run | samples | steady samples/s | test acc % | vs (a), points | rows overlapped |\n"
                    "|---|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
                    f"The collision sampler reads sparse rows only. The dense net's steps each write all "
                    f"{fd['total']:,} of its parameters (section 1), so any two of its steps that overlap in time "
                    "write the same weights: its row is marked *not sampled*, not measured.")))

# %% [markdown]
# ## 3. The sparsity sweep: does the advantage fade?
#
# The same comparison for the sparse model with more and more non-zeros per sample `k` (d
# fixed). A larger `k` means each step reads and writes more rows (more chances that two
# workers' steps share one) and each step is a larger piece of work (more for one process's
# threads to share). For each `k`: (a), (b) and Hogwild! with `top` processes (the panel's),
# the panel's batch size and learning rate, and (a) once more with another seed, which sees
# the samples in another order: how far its test accuracy lands from (a)'s says how much the
# order alone moves it. Section 2's `k` runs here a second time, a smaller job, and section 2's
# runs run once more at their own size: how much their speed-ups moved is the yardstick the
# claims of section 5 use.

# %%
# NBVAL_IGNORE_OUTPUT
v = panel.values()
enough = 10  # a share of rows read off fewer checked steps than this says little: shown as not sampled
sweep = []
for kk in ks:
    ds_k = costtrain.load_dataset("sparse-synthetic", train=sweep_train, test=sparse_test, features=features, k=kk)
    a, b, h = scaling("sparse-linear", ds_k, [top], v["batch_size"], v["lr"]).values()
    a2 = train_baseline("sparse-linear", ds_k, epochs=total_epochs, threads=1, batch_size=v["batch_size"],
                        lr=v["lr"], seed=seed + 1, progress=progress)  # (a) again, another data order
    c = h.extra["collisions"]
    sweep.append(dict(k=kk, vs_a=h.steady_samples_per_second / a.steady_samples_per_second,
                      vs_b=h.steady_samples_per_second / b.steady_samples_per_second,
                      b_vs_a=b.steady_samples_per_second / a.steady_samples_per_second,
                      steps=c["overlap_fraction"], rows=c["row_overlap_fraction"],
                      rows_checked=c.get("rows_checked", 0), checked=c.get("sampled_steps", 0),
                      measured=c["measured"] and top > 1,
                      sampled=c["measured"] and top > 1 and c.get("sampled_steps", 0) >= enough,
                      acc=100 * h.test_accuracy, acc_a=100 * a.test_accuracy,
                      acc_gap=100 * (h.test_accuracy - a.test_accuracy),
                      seed_gap=100 * (a2.test_accuracy - a.test_accuracy), rate=h.steady_samples_per_second,
                      runs=(a, b, h)))
# section 2's runs once more, at their own size: how much one run's speed ratios move, at equal work
section2_again = scaling("sparse-linear", sparse_ds, [top], v["batch_size"], v["lr"])
unsampled = [s for s in sweep if not s["sampled"]]
display(Markdown(md("| k | Hogwild! samples/s | vs (a) | vs (b) | steps checked | steps overlapped | rows overlapped | "
                    "Hogwild! acc vs (a), points | (a) with another seed vs (a), points |\n"
                    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(
                        f"| {s['k']} | {s['rate']:,.0f} | {s['vs_a']:.2f}x | {s['vs_b']:.2f}x | {s['checked']:,} | "
                        + (f"{s['steps']:.3f} | {s['rows']:.4f}" if s["sampled"] else "not sampled | not sampled")
                        + f" | {s['acc_gap']:+.2f} | {s['seed_gap']:+.2f} |" for s in sweep)
                    + ("\n\n*Not sampled:* " + ", ".join(f"k = {s['k']}" for s in unsampled)
                       + f": fewer than {enough} steps checked (a run shorter than a few measured slots, or one "
                       "process: nobody to collide with), so no share of collisions is read off it."
                       if unsampled else ""))))

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
ax.plot([s["k"] for s in sweep], [s["vs_a"] for s in sweep], "o-", label="vs (a) 1 process, 1 thread")
ax.plot([s["k"] for s in sweep], [s["vs_b"] for s in sweep], "s--", label=f"vs (b) 1 process, {cores} threads")
ax.axhline(1, color="black", lw=0.6)
ax.set(xscale="log", xlabel="non-zero features per sample k", ylabel="steady-state speed-up",
       title=f"Hogwild! {top} process{'es' if top > 1 else ''}, sparse-linear, d = {features:,} (one run per k)")
ax.legend(fontsize=8)
fig.savefig(figures / "03b_sparsity_sweep.png", dpi=110)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
sampled = [s for s in sweep if s["sampled"]]  # a k with too few steps checked has no collision share to plot
ax.plot([s["rows"] for s in sampled], [s["vs_b"] for s in sampled], "o-", color="tab:green",
        label="sparse-linear (sweep over k)"
        + (f"; not sampled, left out: k = {', '.join(str(s['k']) for s in unsampled)}" if unsampled else ""))
for s in sampled:
    ax.annotate(f"k={s['k']}", (s["rows"], s["vs_b"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
ax.plot([1.0], [dense_speedup], "s", color="tab:blue", label="dense net (every row, every step: not sampled)")
ax.axhline(1, color="black", lw=0.6)
ax.set(xlabel="fraction of a step's rows written by another worker meanwhile",
       ylabel=f"speed-up vs (b) 1 process, {cores} threads",
       title=f"Collisions against speed-up, Hogwild! {top} process{'es' if top > 1 else ''}")
ax.legend(fontsize=8)
fig.savefig(figures / "03b_collisions.png", dpi=110)
plt.show()

# %% [markdown]
# ## 4. Real text: WordNet's noun supersenses
#
# `sparse-synthetic` is made up; the paper's own experiments were real sparse problems (text
# classification on RCV1, Netflix ratings, graph cuts). One real sparse text problem installs
# offline: **WordNet 3.0** (Princeton University, under the *WordNet 3.0 license*; on
# Debian/Ubuntu `sudo apt-get install wordnet-base`). Its file `data.noun` lists every noun
# *synset* (a sense shared by synonyms) with its words, a definition (gloss) and the
# lexicographer file it belongs to: one of 26 **supersenses** such as `noun.animal`,
# `noun.artifact` or `noun.person`. `costtrain.load_dataset("wordnet-supersense")` turns each
# synset into the bag of words of its lemmas and gloss, one id per word of the training
# vocabulary (most frequent word = id 0), and keeps one synset in five for testing (chosen by
# its offset, the same on every machine). The task: predict the supersense from the bag.
# The runs train on `wordnet_subset` synsets, a power of two, so that every epoch ends on a
# full batch: SGD averages the loss over a batch, so a last batch of a handful of samples
# would take as large a step as a full one, each of its samples weighing many times more.
#
# Before you read on, make the guess of **exercise 6**: at the same number of words per sample
# and the same table size, do real words collide more or less often than tokens drawn
# uniformly at random? Write `"more"` or `"less"` in the next cell and run it.

# %%
my_collision_guess = None  # your guess: "more" or "less" (real words against uniform tokens)

# %%
# NBVAL_CHECK_OUTPUT
wn_ds = costtrain.load_dataset("wordnet-supersense", subset=wordnet_subset, seed=seed)
wn_k = (wn_ds.train_x < wn_ds.features).sum(1).double().mean().item()  # words per sample (id d pads)
wn_majority = wn_ds.test_y.bincount(minlength=wn_ds.num_classes).max().item() / len(wn_ds.test_y)
counts = wn_ds.train_y.bincount(minlength=wn_ds.num_classes)
example = next(i for i in range(len(wn_ds.train_y)) if wn_ds.classes[wn_ds.train_y[i]] == "noun.animal")
words = [wn_ds.vocabulary[j] for j in wn_ds.train_x[example].tolist() if j < wn_ds.features]
display(Markdown(md(
    f"**{wn_ds.name}**: {len(wn_ds.train_y):,} training and {len(wn_ds.test_y):,} test synsets, "
    f"{wn_ds.num_classes} classes, a vocabulary of d = **{wn_ds.features:,}** words, "
    f"**{wn_k:.1f}** words per synset on average (at most {wn_ds.info['max_tokens']}: longer bags were cut, "
    f"{100 * wn_ds.info['truncated']:.1f} % of the training split). Largest class: "
    f"`{wn_ds.classes[int(counts.argmax())]}` ({100 * counts.max().item() / len(wn_ds.train_y):.1f} % "
    f"of the training synsets; always guessing the test set's largest class scores "
    f"{100 * wn_majority:.1f} %), smallest: `{wn_ds.classes[int(counts.argmin())]}` "
    f"({counts.min().item()} synsets).\n\n"
    f"The most frequent words: {', '.join(wn_ds.vocabulary[:10])}. One `noun.animal` sample: "
    f"_{' '.join(words)}_")))

# %% [markdown]
# A Hogwild! step writes the rows of the words in its batch. The chance that a random batch
# writes row `r` is `p_r = 1 - (1 - n_r / N) ** batch_size` (`n_r` of the `N` samples hold word
# `r`): a word in half of the synsets is in nearly every batch (the next cell computes how
# nearly), so *both* workers write its row at nearly every step, while a word seen once is in
# a batch once an epoch. The share of one step's rows that a concurrent step of the other
# worker also writes is about `sum p_r² / sum p_r` (`expected_row_overlap`): frequent rows
# count twice. The cell computes both from the data alone, for the real words and for two
# synthetic twins with the same d, the same number of samples and k = the real mean: tokens
# drawn **uniformly**, and tokens with the Zipf frequencies of sections 1-3.

# %%
# NBVAL_CHECK_OUTPUT
wn_twins = {
    "sparse-synthetic, uniform": costtrain.load_dataset(
        "sparse-synthetic", train=len(wn_ds.train_y), test=len(wn_ds.test_y), features=wn_ds.features,
        k=round(wn_k), classes=wn_ds.num_classes, zipf=0.0),
    "sparse-synthetic, Zipf": costtrain.load_dataset(
        "sparse-synthetic", train=len(wn_ds.train_y), test=len(wn_ds.test_y), features=wn_ds.features,
        k=round(wn_k), classes=wn_ds.num_classes, zipf=1.0)}
collision_sets = {"wordnet-supersense (real words)": wn_ds, **wn_twins}
wn_p = batch_row_probability(wn_ds.train_x, wn_ds.features, batch_size)  # ids are ranked by frequency
bands = [(0, 10), (10, 100), (100, 1000), (1000, 10000), (10000, wn_ds.features)]
band_rows = []
for lo, hi in bands:
    p = wn_p[lo:hi]
    band_rows.append(f"| {lo + 1:,}-{min(hi, wn_ds.features):,} | {', '.join(wn_ds.vocabulary[lo:min(lo + 3, hi)])}, ... | "
                     f"{100 * p.sum() / wn_p.sum():.1f} % | {(p * p).sum() / p.sum():.3f} | "
                     f"{100 * (p * p).sum() / (wn_p * wn_p).sum():.1f} % |")
display(Markdown(md(
    f"A word in half of the synsets is in a batch of {batch_size} with probability 1 - 0.5^{batch_size} "
    f"= 1 - {0.5 ** batch_size:.1e}.\n\n"
    f"Real words by frequency rank, batches of {batch_size}:\n\n"
    "| words ranked | e.g. | share of a step's rows | chance the other worker's step writes them too | share of the expected collisions |\n"
    "|---|---|---:|---:|---:|\n" + "\n".join(band_rows) + "\n\n"
    "Expected share of a step's rows that one concurrent step also writes, from the frequencies alone:\n\n"
    "| data (same d, same samples) | words per sample | expected rows overlapped |\n|---|---:|---:|\n"
    + "\n".join(f"| {name} | {(d.train_x < d.features).sum(1).double().mean():.1f} | "
                f"{expected_row_overlap(d.train_x, d.features, batch_size):.4f} |"
                for name, d in collision_sets.items()))))

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
for (name, d), color in zip(collision_sets.items(), ("tab:red", "tab:grey", "tab:green")):
    p = batch_row_probability(d.train_x, d.features, batch_size).sort(descending=True).values
    ax.plot(range(1, len(p) + 1), p.numpy(), color=color, label=name)
ax.set(xscale="log", xlabel="row (word) ranked by frequency", ylabel=f"chance a batch of {batch_size} writes it",
       title=f"Which rows both workers write: d = {wn_ds.features:,}, k = {wn_k:.1f}")
ax.legend(fontsize=8)
fig.savefig(figures / "03b_wordnet_rows.png", dpi=110)
plt.show()

# %% [markdown]
# Now the runs. (a), (b) and Hogwild! with `top` processes on the real text, each doing
# `total_epochs` epochs of it, with the panel's batch size and learning rate; then, to compare
# collisions, Hogwild! once more on the real text and on each twin with the collision sampler
# measuring every slot (`collision_every=1`: more steps checked). The speed-ups above are
# measured with the default; section 5 checks whether measuring every slot slowed the runs.

# %%
# NBVAL_IGNORE_OUTPUT
v = panel.values()
wn_runs = scaling("sparse-linear", wn_ds, [top], v["batch_size"], v["lr"])
print(results_table(list(wn_runs.values())))
collision_runs = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # more processes than cores: allowed, and warned
    for name, d in collision_sets.items():
        collision_runs[name] = train_hogwild("sparse-linear", d, batch_size=v["batch_size"], lr=v["lr"],
                                             seed=seed, progress=progress, timeout=600, collision_every=1,
                                             **split_work(total_epochs, top))

# %%
# NBVAL_IGNORE_OUTPUT
wn_a, wn_b, wn_h = wn_runs.values()
wn_rows = [f"| {label} | {r.samples:,} | {r.steady_samples_per_second:,.0f} | "
           f"{r.steady_samples_per_second / wn_a.steady_samples_per_second:.2f}x | "
           f"{r.steady_samples_per_second / wn_b.steady_samples_per_second:.2f}x | {100 * r.test_accuracy:.2f} | "
           f"{100 * (r.test_accuracy - wn_a.test_accuracy):+.2f} |" for label, r in wn_runs.items()]
coll = {name: r.extra["collisions"] for name, r in collision_runs.items()}
coll_rows = [f"| {name} | {expected_row_overlap(d.train_x, d.features, v['batch_size']):.4f} | "
             + (f"{coll[name]['row_overlap_fraction']:.4f} | {coll[name]['overlap_fraction']:.3f} | "
                f"{coll[name]['sampled_steps']:,} |" if coll[name]["measured"] and top > 1 else "- | - | - |")
             + f" {collision_runs[name].steady_samples_per_second:,.0f} |"
             for name, d in collision_sets.items()]
display(Markdown(md(
    f"**Real text**, `sparse-linear` on {wn_ds.name} ({len(wn_ds.train_y):,} synsets x {total_epochs} epochs of work; "
    f"majority class {100 * wn_majority:.2f} %):\n\n"
    "| run | samples | steady samples/s | vs (a) | vs (b) | test acc % | vs (a), points |\n"
    "|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(wn_rows) + "\n\n"
    f"**Collisions**, Hogwild! {top} process{'es' if top > 1 else ''}, every slot measured:\n\n"
    "| data | expected rows overlapped | measured rows overlapped | steps overlapped | steps checked | samples/s |\n"
    "|---|---:|---:|---:|---:|---:|\n" + "\n".join(coll_rows))))

# %%
# NBVAL_IGNORE_OUTPUT
real_name, uniform_name, zipf_name = collision_sets
expected = {n: expected_row_overlap(d.train_x, d.features, v["batch_size"]) for n, d in collision_sets.items()}
real_vs_uniform = "more" if expected[real_name] > expected[uniform_name] else "less"  # from the data itself
measured = all(coll[n]["measured"] for n in collision_sets) and top > 1
overlap = {n: coll[n]["row_overlap_fraction"] for n in collision_sets}  # this run's measurement
measured_vs_uniform = "more" if overlap[real_name] > overlap[uniform_name] else "less"
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
names = list(collision_sets)
pos = range(len(names))
ax.bar([i - 0.2 for i in pos], [expected[n] for n in names], 0.4, color="lightgrey",
       label="expected: one concurrent step, from the frequencies")
if measured:
    ax.bar([i + 0.2 for i in pos], [overlap[n] for n in names], 0.4, color=["tab:red", "tab:grey", "tab:green"],
           label=f"measured: Hogwild! {top} processes")
ax.set_xticks(list(pos), [n.replace(" (real words)", "\n(real words)").replace(", ", ",\n") for n in names])
ax.set(ylabel="share of a step's rows written\nby another worker meanwhile",
       title="Collisions: real words against synthetic tokens, same d and k")
ax.legend(fontsize=8, loc="upper center")
fig.savefig(figures / "03b_wordnet_collisions.png", dpi=110)
plt.show()

# %% [markdown]
# ## 5. What this run measured
#
# Each claim below is checked on this run's numbers. Most configurations ran once, so a
# difference counts only when it is larger than what one run moves here: section 2's runs ran
# twice at their size, and section 2's `k` once more in the sweep (a smaller job); the most
# their speed ratios moved is the yardstick of every claim about speed; (a) run with another
# seed gives the one about accuracy.

# %%
# NBVAL_IGNORE_OUTPUT
sa, sb, sh = runs["sparse-linear"].values()
sp_a, sp_b = speedups(runs["sparse-linear"])
dense_vs_a, dense_vs_b = speedups(runs["simple"])
again = next(s for s in sweep if s["k"] == k)  # section 2's k, measured a second time in the sweep
sa2, sb2, sh2 = section2_again.values()  # section 2's runs again, the same size
ratios = {"Hogwild! over (a)": (sp_a, sh2.steady_samples_per_second / sa2.steady_samples_per_second,
                                again["vs_a"]),
          "Hogwild! over (b)": (sp_b, sh2.steady_samples_per_second / sb2.steady_samples_per_second,
                                again["vs_b"]),
          "(b) over (a)": (sb.steady_samples_per_second / sa.steady_samples_per_second,
                           sb2.steady_samples_per_second / sa2.steady_samples_per_second, again["b_vs_a"])}
same_stick = max(max(x, y) / min(x, y) for x, y, _ in ratios.values())  # the same job twice
cross_stick = max(max(x, z) / min(x, z) for x, _, z in ratios.values())  # against the sweep's smaller job
rate_stick = max(same_stick, cross_stick)  # how much one run's speed ratio moves: the larger of the two
for s in sweep:  # how much the order alone moved (a)'s accuracy at this k (at least one test sample), points
    s["acc_stick"] = max(abs(s["seed_gap"]), 100 / sparse_test)
best = max(sa, sb, key=lambda r: r.steady_samples_per_second)  # the fastest single process, steady
yard = [sa, sb, sh, sa2, sb2, sh2, *again["runs"]]  # the runs the speed yardstick comes from


def busy(*compared):
    """Whether other work competed for the cores during the compared runs or the yardstick's."""
    return busy_note([*yard, *compared])


sparse_acc = [r.test_accuracy for r in runs["sparse-linear"].values()]
all_runs = [r for by_label in runs.values() for r in by_label.values()] + list(wn_runs.values()) \
    + list(collision_runs.values())
plural = "es" if top > 1 else ""
display(Markdown(md("\n".join([
    machine_note(all_runs),
    f"- **Noise:** section 2's runs ran twice at their size ({sh.samples:,} samples trained each), and k = {k} "
    f"once more in the sweep ({again['runs'][2].samples:,} samples trained), with these speed ratios: "
    + "; ".join(f"{what} {x:.2f}x and {y:.2f}x (sweep {z:.2f}x)" for what, (x, y, z) in ratios.items())
    + f". The same job twice moved a speed ratio up to {same_stick:.2f}x, the smaller sweep job against it up "
    f"to {cross_stick:.2f}x: one run's speed ratio moves up to **{rate_stick:.2f}x** here, the larger, the "
    "yardstick of the claims about speed below. (a) with another seed moved the test accuracy by "
    + ", ".join(f"{abs(s['seed_gap']):.2f} points at k = {s['k']}" for s in sweep)
    + ": at each k that (or one test sample, if more) is the yardstick of the claim about accuracy.",
    f"- **Sparse model** (one run each): {top} Hogwild! process{plural} trained at **{sp_a:.2f}x** the "
    f"steady-state speed of (a), one single-thread process, and **{sp_b:.2f}x** that of (b), one process using "
    f"all {cores} cores; test accuracies at equal samples span {100 * min(sparse_acc):.2f}–{100 * max(sparse_acc):.2f} %."]))))
sparse_verdict = claim("03b.sparse-beats-one-process", sh.steady_samples_per_second, best.steady_samples_per_second,
                       yardstick=rate_stick, busy=busy())
display(sparse_verdict)
display(claim("03b.threads-no-help", sb.steady_samples_per_second, sa.steady_samples_per_second, yardstick=rate_stick,
              busy=busy()))
display(Markdown(md(
    f"- **Dense net** (one run each): the same call with {top} process{plural} gave **{dense_vs_a:.2f}x** (a) and "
    f"**{dense_vs_b:.2f}x** (b). Niu et al.'s analysis expects the larger gain where steps rarely write the "
    "same weights:")))
display(claim("03b.sparse-gains-more", sp_b, dense_vs_b, yardstick=rate_stick, busy=busy(*runs["simple"].values())))
single_end = min(sa, sb, key=lambda r: r.total_seconds)  # the single process that finished first
even = break_even_samples(sh.setup_seconds - single_end.setup_seconds, single_end.steady_samples_per_second,
                          sh.steady_samples_per_second)
display(Markdown(md(
    f"- **End to end**, the workers' start-up included: Hogwild! took {secs(sh.total_seconds)} for this sparse job "
    f"({sh.samples:,} samples; set-up {secs(sh.setup_seconds)}, training {secs(sh.train_seconds)}) against "
    f"{secs(single_end.total_seconds)} for {single_end.label.split(': ')[-1]} (set-up {secs(single_end.setup_seconds)}, "
    f"training {secs(single_end.train_seconds)}).")))
display(claim("03b.end-to-end", sh.total_seconds, single_end.total_seconds, yardstick=rate_stick, busy=busy()))
display(Markdown(md(
    ("  At these steady rates Hogwild! would pay back its longer set-up after about "
     f"{even:,.0f} samples, {even / sh.samples:.1f}x this job: predicted time = set-up + samples / steady rate, "
     "for each." if 0 < even < float("inf") else
     "  At these steady rates Hogwild! never pays back its longer set-up: it is not faster once started."
     if even == float("inf") else "  Hogwild!'s set-up was not the longer one here.")
    + " Judge a job of your own size the same way (notebook 06 does it for your job).")))

# %%
# NBVAL_IGNORE_OUTPUT
display(Markdown(md(
    f"- **Sparsity sweep** (d = {features:,}, one run per k): speed-up over (b) "
    + ", ".join(f"{s['vs_b']:.2f}x at k = {s['k']}" for s in sweep) + "; over (a) "
    + ", ".join(f"{s['vs_a']:.2f}x" for s in sweep) + ". From the smallest k to the largest:")))
display(claim("03b.fade", sweep[-1]["vs_b"], sweep[0]["vs_b"], yardstick=rate_stick,
              busy=busy(*sweep[0]["runs"], *sweep[-1]["runs"])))
peak = max(sweep[1:-1], key=lambda s: s["vs_b"], default=None)  # the claim reads the two ends only
dip = min(sweep[1:-1], key=lambda s: s["vs_b"], default=None)
ends_vs_b = (sweep[0]["vs_b"], sweep[-1]["vs_b"])
if peak is not None and peak["vs_b"] > rate_stick * max(ends_vs_b):
    display(Markdown(md(
        f"  The claim compares the two ends only, and the sweep is not monotonic: at k = {peak['k']} the speed-up "
        f"over (b) was {peak['vs_b']:.2f}x, above both ends ({ends_vs_b[0]:.2f}x and {ends_vs_b[1]:.2f}x) by more "
        f"than one run moves ({rate_stick:.2f}x): it rose before it fell.")))
elif dip is not None and dip["vs_b"] < min(ends_vs_b) / rate_stick:
    display(Markdown(md(
        f"  The claim compares the two ends only, and the sweep is not monotonic: at k = {dip['k']} the speed-up "
        f"over (b) was {dip['vs_b']:.2f}x, below both ends ({ends_vs_b[0]:.2f}x and {ends_vs_b[1]:.2f}x) by more "
        f"than one run moves ({rate_stick:.2f}x).")))
ends = (sweep[0], sweep[-1])
if all(s["sampled"] for s in ends):
    display(Markdown(md(
        f"- **Collisions:** at k = {sweep[0]['k']} {sweep[0]['rows']:.4f} of a step's rows were written by another "
        f"worker meanwhile ({sweep[0]['checked']:,} steps, {sweep[0]['rows_checked']:,} rows checked), at "
        f"k = {sweep[-1]['k']} {sweep[-1]['rows']:.4f} ({sweep[-1]['checked']:,} steps, "
        f"{sweep[-1]['rows_checked']:,} rows).")))
    display(claim("03b.collisions-grow", sweep[-1]["rows"], sweep[0]["rows"]))
else:
    display(Markdown(md(
        "- **Collisions:** " + "; ".join(f"at k = {s['k']} the sampler checked {s['checked']:,} step(s)" for s in ends)
        + f" (fewer than {enough} at one end, or one process: nobody to collide with), so this run says nothing "
        "about how collisions grow with k.")))
display(Markdown(md("- **Accuracy at equal samples**, Hogwild! against (a), at each k:")))
for s in sweep:
    display(Markdown(md(f"  k = {s['k']}:")))
    verdict = claim("03b.sparse-accuracy", s["acc"], s["acc_a"], yardstick=s["acc_stick"])
    times = abs(s["acc_gap"]) / s["acc_stick"]  # the gap, in yardsticks (what the order alone moved (a))
    if verdict.word != CANNOT_TELL and s["acc_gap"] > 0 and times > 3:  # did not hold, and far beyond the order's reach
        verdict = replace(verdict, claim=replace(verdict.claim, why_not=(
            f"not the data order alone: the gap is {times:.0f}x what another order moved (a) here, far beyond "
            "it, and this run does not measure what else makes it")))
    display(verdict)

# %%
# NBVAL_IGNORE_OUTPUT
display(Markdown(md("\n".join([
    f"- **Real text** ({wn_ds.name}, d = {wn_ds.features:,} words, {wn_k:.1f} per synset): {top} Hogwild! "
    f"process{plural} trained at **{wn_h.steady_samples_per_second / wn_a.steady_samples_per_second:.2f}x** "
    f"the steady speed of (a) and **{wn_h.steady_samples_per_second / wn_b.steady_samples_per_second:.2f}x** that of (b), "
    f"reaching {100 * wn_h.test_accuracy:.2f} % test accuracy against (a)'s {100 * wn_a.test_accuracy:.2f} % at equal "
    f"samples ({100 * (wn_h.test_accuracy - wn_a.test_accuracy):+.2f} points; always answering the largest class: "
    f"{100 * wn_majority:.2f} %); end to end {secs(wn_h.total_seconds)} against (a)'s {secs(wn_a.total_seconds)}.",
    f"- **Collisions on real words:** from the word frequencies, a step shares {expected[real_name]:.4f} of its "
    f"rows with one concurrent step of the other worker, against {expected[uniform_name]:.4f} for uniform synthetic "
    f"tokens at the same k and d ({expected[real_name] / max(expected[uniform_name], 1e-12):.1f}x: "
    f"**{real_vs_uniform}**) and {expected[zipf_name]:.4f} for Zipf tokens. "
    + (f"Measured in this run: {overlap[real_name]:.4f}, {overlap[uniform_name]:.4f} and {overlap[zipf_name]:.4f} of "
       "a step's rows written by another worker meanwhile ("
       + ("the same order" if measured_vs_uniform == real_vs_uniform else "real and uniform the other way round")
       + f"; {min(coll[n]['sampled_steps'] for n in collision_sets):,} or more steps checked per run)"
       + (": each lower than expected, which counts one whole concurrent step of the other worker, where the "
          "measurement counts only the rows it wrote while the step ran. "
          if all(overlap[n] < expected[n] for n in collision_sets) else ". ")
       if measured else "Nothing was measured: one process has nobody to collide with. ")
    + f"The {bands[1][1]} most frequent words are {100 * wn_p[:bands[1][1]].sum() / wn_p.sum():.1f} % of a "
    f"step's rows but {100 * (wn_p[:bands[1][1]] ** 2).sum() / (wn_p ** 2).sum():.1f} % of its expected collisions.",
    "- **Measuring every slot**, on the real text: Hogwild! with the default sampling against the same run "
    "measuring every slot:"]))))
display(claim("03b.sampler-cost", collision_runs[real_name].steady_samples_per_second, wn_h.steady_samples_per_second,
              yardstick=rate_stick, busy=busy(collision_runs[real_name], wn_h)))
display(Markdown(md(
    f"- Figures: `{figures / '03b_speedup.png'}`, `{figures / '03b_sparsity_sweep.png'}`, "
    f"`{figures / '03b_collisions.png'}`, `{figures / '03b_wordnet_rows.png'}`, "
    f"`{figures / '03b_wordnet_collisions.png'}`.\n\n"
    "`python benchmarks/sparse_hogwild.py` repeats these runs, alternating them, and reports medians and "
    "ranges: a narrower yardstick than one run each.")))

# %% [markdown]
# Notebook 06's decision card quotes the sparse model's steady-state speed-up against the
# fastest single process (the median and range of its three runs above), with the verdict of
# the claim above, on this machine:

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import scoreboard

over_best = spread(ratios["Hogwild! over (b)" if best is sb else "Hogwild! over (a)"])  # its three runs
scoreboard.remember("03b_sparse_hogwild", "sparse_speedup", {
    "processes": top, "ratio": over_best.median, "low": over_best.low, "high": over_best.high,
    "runs": over_best.n, "verdict": "within noise" if sparse_verdict.word == CANNOT_TELL else "beyond noise"})
print(f"recorded: Hogwild! {top} process(es) at {over_best.median:.2f}x [{over_best.low:.2f}-{over_best.high:.2f}, "
      f"{over_best.n} runs] the steady samples/s of {best.label.split(': ')[-1]} "
      f"({'within noise' if sparse_verdict.word == CANNOT_TELL else 'beyond noise'} by section 5's claim)")

# %% [markdown]
# ## Exercises
#
# **1. The sparse speed-up.** Your guess went into `guess_sparse_speedup` before section 2
# ran; the next cell checks it.

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(guess_sparse_speedup,
                 max((r for r in sparse_runs.values() if r.method == "hogwild"), key=lambda r: r.config["processes"])
                 .steady_samples_per_second / sparse_runs[f"(b) 1 process, {cores} threads"].steady_samples_per_second,
                 wrong={"the dense net's speed-up over (b)": dense_speedup}, noise=rate_stick - 1)

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    "Each Hogwild! worker runs its own Python loop on its own core; (b) runs one loop, and its threads can share "
    "only the work inside a step (gathering and scattering the batch's rows, the sums), not the Python around it. "
    f"Niu et al. prove near-linear speed-ups where steps rarely write the same weights: up to {top}x with {top} "
    f"process{plural}, a core each. This run (one run each): {top} process{plural} reached {sp_b:.2f}x (b) on the "
    f"sparse model and {dense_vs_b:.2f}x on the dense net, on {cores} cores; k = {k} measured again in the sweep "
    f"gave {again['vs_b']:.2f}x. "
    + (f"A ratio above {top}x (this run's largest over (b): {max(ratios['Hogwild! over (b)']):.2f}x) is beyond "
       f"that near-linear speed-up; the same job's two runs gave {ratios['Hogwild! over (b)'][0]:.2f}x and "
       f"{ratios['Hogwild! over (b)'][1]:.2f}x, and one run's ratio moves up to {rate_stick:.2f}x here, so read "
       "one run's ratio with that noise. " if max(ratios["Hogwild! over (b)"]) > top else "")
    + "Section 5 checked whether the sparse gain was the larger, and whether (b)'s "
    "threads helped the sparse model, against how much one run moves.")

# %% [markdown]
# **2. Fewer features, more collisions.** Set `features = 2 ** 10` (keep `k = 16`) and rerun.
# How do the overlap fraction and the sparse model's speed-up change?
#
# <details><summary>Hint</summary>
#
# A step writes up to `batch_size × k` rows: how does that compare with the `2 ** 10` rows of
# the table?
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
small_table = costtrain.load_dataset("sparse-synthetic", train=sparse_train, test=sparse_test, features=2 ** 10, k=k)
small_overlap = expected_row_overlap(small_table.train_x, 2 ** 10, batch_size)
worked_answer(
    f"A step writes up to batch_size × k = {batch_size * k:,} rows, against a table of {2 ** 10:,} rows at "
    f"d = 2^10. From the frequencies alone (section 4's `expected_row_overlap`), a step at d = 2^10 shares "
    f"{small_overlap:.3f} of its rows with one concurrent step of the other worker, against "
    f"{expected_row_overlap(sparse_ds.train_x, features, batch_size):.4f} at this run's d = {features:,}. That is "
    "the regime Niu et al.'s analysis leaves out: it assumes rows that concurrent steps rarely share. Hogwild! "
    "takes no lock, so nothing waits; what the shared rows do to its speed (the cores pass the same rows "
    "between their caches) and to its accuracy at equal samples (gradients computed from rows the other worker "
    "has just changed) is what your rerun measures: compare its speed-ups and accuracy gap with this run's, "
    "against section 5's yardsticks.")

# %% [markdown]
# **3. Momentum.** Call `train_hogwild("sparse-linear", sparse_ds, processes=2, momentum=0.5)`.
# Why does costtrain refuse it, and what would happen without the check?
#
# <details><summary>Hint</summary>
#
# Look at what `torch.optim.SGD` keeps per parameter when `momentum > 0`.
# </details>
#
# <details><summary>Worked answer</summary>
#
# With `momentum > 0`, `torch.optim.SGD` keeps a momentum buffer per parameter and steps with
# it, not with the gradient ([its update rule](https://pytorch.org/docs/stable/generated/torch.optim.SGD.html);
# in [its source](https://github.com/pytorch/pytorch/blob/main/torch/optim/sgd.py) the buffer
# starts as a copy of the first gradient and is then `momentum × buffer + gradient`). For a
# sparse gradient the buffer keeps every row that any step has touched, so after a few steps
# each step writes all of those rows again: the update is no longer sparse, and Hogwild!
# workers write the same rows as on a dense net. costtrain refuses it so that a sparse model
# stays sparse. Plain SGD (or `torch.optim.SparseAdam`, passed as
# `optimizer=functools.partial(torch.optim.SparseAdam, lr=...)` for the table only) keeps the
# update sparse.
# </details>
#
# **4. Batch size.** Move the batch-size control to 8 and to 512 and press **Run**. Which
# baseline does Hogwild! beat by more, and why?
#
# <details><summary>Hint</summary>
#
# Which part of a step's work depends on the batch size, and which does not?
# </details>
#
# <details><summary>Worked answer</summary>
#
# A step has a part that does not depend on the batch size (the Python loop, launching each
# operation) and a part that grows with `batch_size × k` (gathering and scattering the rows).
# (b)'s extra threads can only share the second; each Hogwild! worker has a core for both, and
# at a larger batch it also writes more rows per step, which the other worker is then more
# likely to write too (section 4's formula). Which baseline Hogwild! beats by more at 8 and at
# 512 is what the panel's table says for your runs: judge the differences against section 5's
# yardstick, one run each.
# </details>
#
# **5. The parameter server on the same problem.** Run
# `costtrain.train_parameter_server("sparse-linear", sparse_ds, workers=cores)` and compare
# its samples/s with Hogwild!'s.
#
# <details><summary>Hint</summary>
#
# The parameter server's worker loop (notebook 02, section 1) sends its gradients through
# `flatten`: what does `flatten` make of a sparse gradient?
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
table_values = sum(p.numel() for p in SparseLinear(features, 2).parameters())
worked_answer(
    "The parameter server's `flatten` turns every gradient into one dense vector: a step of the sparse model sends "
    f"all {table_values:,} values of its table and bias ({4 * table_values / 2 ** 20:.1f} MiB in float32) and "
    f"receives the whole table back, though only the batch's rows changed ({fs['written']:,} values at a batch of "
    f"{batch_size}, section 1). Hogwild!'s workers write their few rows straight into shared memory. How much "
    "slower that makes the parameter server is what your run measures. Sending sparse updates (indices and rows) "
    "would be the fix; the course's server keeps one simple dense message format.")

# %% [markdown]
# **6. Real words or uniform tokens: which collide more?** Section 4 runs Hogwild! on
# WordNet's real text and on synthetic tokens drawn uniformly from the same number of rows d,
# with the same number of words per sample k. When the two workers step at the same time,
# does a step on the real text share *more* or *less* of its rows with the other worker's step?
# Your guess went into `my_collision_guess` before section 4 ran; the next cell checks it
# against the share computed from the data (section 5 adds what the run measured).
#
# <details><summary>Hint</summary>
#
# Look at the most frequent words of section 4. How many batches of 64 definitions contain
# the word "of"? How many contain a given word when every one of the d words is equally likely?
# </details>

# %%
# NBVAL_IGNORE_OUTPUT
check_prediction(my_collision_guess, real_vs_uniform)

# %%
# NBVAL_IGNORE_OUTPUT
worked_answer(
    f"**{real_vs_uniform.capitalize()}**, computed from the data: a step on the real text shares "
    f"{expected[real_name]:.4f} of its rows with one concurrent step, "
    f"{expected[real_name] / max(expected[uniform_name], 1e-12):.1f}x the {expected[uniform_name]:.4f} of uniform "
    f"tokens at the same d and k. A uniform token is in a batch with a chance of about batch_size × k / d = "
    f"{batch_size * wn_k / wn_ds.features:.4f}. Real words are far from uniform: the {bands[1][1]} most frequent "
    f"words are {100 * wn_p[:bands[1][1]].sum() / wn_p.sum():.1f} % of a step's rows but "
    f"{100 * (wn_p[:bands[1][1]] ** 2).sum() / (wn_p ** 2).sum():.1f} % of its expected collisions (section 4's band "
    f"table). The Zipf twin shares {expected[zipf_name]:.4f}, "
    f"{abs(expected[zipf_name] - expected[real_name]):.4f} away from the real text against "
    f"{abs(expected[uniform_name] - expected[real_name]):.4f} for the uniform one: that is why the synthetic problem "
    "draws its features with Zipf frequencies. Niu et al.'s analysis measures sparsity by how often samples share "
    "a coordinate: frequent features are what it is about. Whether the accuracy suffers is what section 4's "
    "accuracy column, at equal samples, shows; section 5 quotes what the run measured.")

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

scoreboard.record("03b_sparse_hogwild", [r for by_label in runs.values() for r in by_label.values()])
NoWrap(scoreboard.show(notebook="03b_sparse_hogwild"))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
closing("03b_sparse_hogwild", [
    f"Against one process using all {cores} cores, {top} Hogwild! process{plural} trained the sparse model at "
    f"{sp_b:.2f}x its steady speed and the dense net at {dense_vs_b:.2f}x: Niu et al.'s analysis expects the "
    "sparse gain to be the larger. "
    + claim("03b.sparse-gains-more", sp_b, dense_vs_b, yardstick=rate_stick, busy=busy(*runs["simple"].values())).markdown(),
    f"End to end, start-up included, the sparse job took {secs(sh.total_seconds)} with Hogwild! against "
    f"{secs(single_end.total_seconds)} with {single_end.label.split(': ')[-1]}. "
    + claim("03b.end-to-end", sh.total_seconds, single_end.total_seconds, yardstick=rate_stick, busy=busy()).markdown()
    + (f" At these rates it pays back its set-up after about {even:,.0f} samples." if 0 < even < float("inf") else ""),
    f"On real text ({wn_ds.name}) the word frequencies make a step share {expected[real_name]:.4f} of its rows with "
    f"a concurrent step, against {expected[uniform_name]:.4f} for uniform tokens (**{real_vs_uniform}**, computed "
    f"from the data); {top} Hogwild! process{plural} ran at "
    f"{wn_h.steady_samples_per_second / wn_b.steady_samples_per_second:.2f}x (b) there (one run each).",
    f"The yardstick: one run's speed ratio moved up to {rate_stick:.2f}x between two runs of k = {k} here; "
    "`python benchmarks/sparse_hogwild.py` repeats and reports ranges.",
], all_runs)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
