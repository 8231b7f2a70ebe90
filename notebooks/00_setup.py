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
# # 00 · Set-up check: package, data, kernel, widgets
#
# A short check that everything the course needs works on your machine, before any longer run.
#
# **You will learn**
# - what costtrain sees of your machine (cores, PyTorch version, GPU if any);
# - that Fashion-MNIST is found, and what its images look like;
# - how the course notebooks work: a `parameters` cell, a panel of controls with a **Run**
#   button and a live plot, and the cell below it that trains with the values it shows.
#
# **Time:** the last cell prints how long this notebook ran. The copy of this notebook in the
# repository is one run, executed on the machine and at the date its first cell prints: its
# outputs show what each cell prints, and yours print what your machine measures.

# %%
# NBVAL_IGNORE_OUTPUT
# %matplotlib inline
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import costtrain
from costtrain.course import (claim, hardware_info, md, pct, rate, run_header, run_panel,
                              summary, threads_per_process)

# show warnings as one line, without the file they came from
warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
notebook_start = time.perf_counter()
print(run_header())

# %%
# NBVAL_IGNORE_OUTPUT
from costtrain.course import closing, opening

opening("00_setup")

# %% [markdown]
# ## Parameters
#
# The next cell holds the values this notebook runs with. Change them here, or let papermill inject others (`costtrain notebooks -p subset=60000`,
# `costtrain notebooks --ci`). Figures go to `out/figures/` next to the notebooks (not tracked
# by git); only the reference build (`make notebooks`) writes the repository's `figures/`.

# %% tags=["parameters"]
dataset = "fashion-mnist"
subset = 5000         # training images; differs: a quick smoke run, not the classroom job
test_subset = 1000    # test images; differs: a quick smoke run
batch_size = 64
lr = 0.01
seed = 42
progress = True
figures_dir = "out/figures"

# %%
from costtrain.course import check_parameters
check_parameters(globals(), "00_setup")  # types as `costtrain notebooks` checks them

# %%
# NBVAL_CHECK_OUTPUT
cores = costtrain.num_cores()
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images of shape "
      f"{ds.input_shape}, {ds.num_classes} classes")

# %% [markdown]
# ## 1. Your machine

# %%
# NBVAL_IGNORE_OUTPUT
for key, value in hardware_info().items():
    print(f"{key:>9}: {value}")
print(f"  threads: 2 processes get {threads_per_process(2)} each, 4 get {threads_per_process(4)} each")

# %% [markdown]
# ## 2. The data

# %%
# NBVAL_IGNORE_OUTPUT
images = ds.raw_images("train")[:16]
fig, axes = plt.subplots(2, 8, figsize=(9, 2.6), layout="constrained")
for ax, img, label in zip(axes.flat, images, ds.train_y[:16].tolist()):
    ax.imshow(img.squeeze(), cmap="gray_r")
    ax.set_title(ds.classes[label], fontsize=7)
    ax.axis("off")
fig.savefig(figures / "00_samples.png", dpi=90)
plt.show()

# %% [markdown]
# ## 3. How the course notebooks train: a panel, a Run button, a live plot
#
# The panel below sets **every** value of the smoke run in section 4: threads, batch size and
# learning rate. Move the controls, then press **Run**: it trains with those values, draws the
# loss live in the plot (and the test accuracy when the run ends) and prints the results under
# the panel. Running the next cell does the same in that cell; that is how the notebook trains
# when it runs top to bottom, and headless with papermill, with the `parameters` values.
# Your last choice survives re-running this cell (and Run All) until the kernel restarts;
# **Reset** goes back to the `parameters` values.

# %%
def smoke_run(v, live):
    """Train the smoke run with the panel's values `v`, drawing progress into `live`."""
    live.start("baseline")
    r = costtrain.train_baseline("simple", ds, threads=v["threads"], batch_size=v["batch_size"],
                                 lr=v["lr"], seed=seed, progress=progress, on_progress=live)
    live.finish(r)
    print(summary(r))
    return r


panel = run_panel("00_smoke", smoke_run, threads=1, batch_size=batch_size, lr=lr)
panel

# %% [markdown]
# ## 4. The smoke run

# %%
# NBVAL_IGNORE_OUTPUT
smoke = panel.run()

# %% [markdown]
# ## Summary
#
# What the smoke run checks: the data loads, the model trains (its loss falls), the test set
# is evaluated, and the accuracy is well above chance (at least twice one in the number of
# classes; the line below gives chance for this dataset). Both checks are printed with what
# they compared. It checks the set-up, not the model: the subset and the epoch are small on
# purpose (the parameters cell).

# %%
# NBVAL_IGNORE_OUTPUT
first, last = smoke.loss_curve["loss"][0], smoke.loss_curve["loss"][-1]
chance = 1 / ds.num_classes
falls = claim("00.loss-falls", last, first)
above = claim("00.above-chance", 100 * smoke.test_accuracy, 100 * 2 * chance)
works = falls.word == above.word == "held on this machine"
display(Markdown(md("\n".join([
    f"- costtrain {costtrain.__version__} with PyTorch {hardware_info()['torch']} on {cores} core(s).",
    f"- {ds.name} found: {len(ds.train_y):,} training images used here; sample images in "
    f"`{figures / '00_samples.png'}`.",
    f"- The smoke run trained {smoke.samples:,} samples at {rate(smoke.samples_per_second)}: "
    f"training loss {first:.3g} → {last:.3g}, test accuracy {pct(smoke.test_accuracy)} "
    f"(chance: {pct(chance)}).",
    f"- {falls.markdown()}",
    f"- {above.markdown()}",
    "",
    "**The set-up works.** Next: `01_baseline.ipynb`." if works else
    "**Something is off**: a check above did not hold; check the learning rate in the panel and "
    "run again."]))))

# %% [markdown]
# ## Key takeaways

# %%
# NBVAL_IGNORE_OUTPUT
closing("00_setup", [
    f"Every run reports its time in parts: set-up {smoke.setup_seconds:.2f} s, training {smoke.train_seconds:.2f} s, "
    f"evaluation {smoke.eval_seconds:.2f} s; *end to end* is all three ({smoke.total_seconds:.2f} s here).",
    f"A short run checks the set-up, not the model: {pct(smoke.test_accuracy)} test accuracy after "
    f"{smoke.samples:,} samples, against {pct(chance)} by chance.",
    "Notebooks 01-06 work the same way: a `parameters` cell, a panel with **Run**, the cell below it that "
    "trains with the panel's values, exercises with hints, and a last cell that prints how long it ran.",
])

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")
