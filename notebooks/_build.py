"""Write the course notebooks (clean, no outputs) from the cell sources below.

    python notebooks/_build.py          # rewrite notebooks/NN_*.ipynb
    python notebooks/_build.py --check  # exit 1 if a notebook differs from this file

Edit the cells here rather than in JupyterLab, so the notebooks stay clean and reviewable.
Cell markers: ``# NBVAL_IGNORE_OUTPUT`` on cells whose output varies (times, progress);
``# NBVAL_CHECK_OUTPUT`` on cells whose output must reproduce exactly.
"""
from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import nbformat

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

def imports(*extra: str) -> dict:
    """The first code cell: the shared imports, the notebook's own, and the start time."""
    third_party = [e for e in extra if not e.startswith("from costtrain")]
    lines = ["%matplotlib inline", "import time", "import warnings", "from pathlib import Path", "",
             "import matplotlib.pyplot as plt", "from IPython.display import Markdown, display",
             *third_party, "",
             "import costtrain", "from costtrain.report import results_table, summary",
             "from costtrain.widgets import read_controls, training_controls",
             *[e for e in extra if e not in third_party], "",
             "# show warnings as one line, without the file they came from",
             "warnings.formatwarning = lambda message, category, *args, **kwargs: f\"{category.__name__}: {message}\\n\"",
             "notebook_start = time.perf_counter()"]
    return nbformat.v4.new_code_cell("\n".join(lines))


PARAMS_INTRO = """\
## Parameters

The next cell holds the values this notebook runs with; they are small so that it finishes
quickly. Change them here, or let papermill inject others
(`costtrain notebooks -p subset=60000`, `costtrain notebooks --ci`). Values derived from them
are computed in the cell after it."""

FOOTER = """\
# NBVAL_IGNORE_OUTPUT
print(f"this notebook ran for {time.perf_counter() - notebook_start:.0f} s on {costtrain.num_cores()} cores")"""


def md(text: str) -> dict:
    return nbformat.v4.new_markdown_cell(dedent(text).strip())


def code(text: str, tags: tuple[str, ...] = ()) -> dict:
    cell = nbformat.v4.new_code_cell(dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def params(text: str) -> dict:
    return code(text, ("parameters",))


# ---------------------------------------------------------------------------------------------
NB00 = [
    md("""
    # 00 · Set-up check: package, data, kernel, widgets

    A short check that everything the course needs works on your machine, before any
    longer run.

    **You will learn**
    - what costtrain sees of your machine (cores, PyTorch version, GPU if any);
    - that Fashion-MNIST is found, and what its images look like;
    - how the course notebooks work: a `parameters` cell, widgets that only *set* values, and
      an ordinary cell below them that trains, with a progress bar.

    **Time on a laptop:** about 10 seconds.
    """),
    imports("from costtrain.utils import hardware_info, threads_per_process"),
    md(PARAMS_INTRO),
    params("""
    dataset = "fashion-mnist"
    subset = 2000         # training images for the smoke run
    test_subset = 1000    # test images
    batch_size = 64
    lr = 0.01
    seed = 42
    progress = True
    figures_dir = "../figures"
    """),
    code("""
    # NBVAL_CHECK_OUTPUT
    cores = costtrain.num_cores()
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
    print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images of shape "
          f"{ds.input_shape}, {ds.num_classes} classes")
    """),
    md("""
    ## 1. Your machine
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    for key, value in hardware_info().items():
        print(f"{key:>9}: {value}")
    print(f"  threads: 2 processes get {threads_per_process(2)} each, 4 get {threads_per_process(4)} each")
    """),
    md("""
    ## 2. The data
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    images = ds.raw_images("train")[:16]
    fig, axes = plt.subplots(2, 8, figsize=(9, 2.6), layout="constrained")
    for ax, img, label in zip(axes.flat, images, ds.train_y[:16].tolist()):
        ax.imshow(img.squeeze(), cmap="gray_r")
        ax.set_title(ds.classes[label], fontsize=7)
        ax.axis("off")
    fig.savefig(figures / "00_samples.png", dpi=110)
    plt.show()
    """),
    md("""
    ## 3. Widgets set values, the next cell trains

    Move the controls (or leave them), then run the cell below them. Run headless (papermill,
    `costtrain notebooks`), nobody moves them, so the run uses the `parameters` values.
    """),
    code("""
    controls = training_controls(threads=1, batch_size=batch_size, lr=lr)
    controls
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    v = read_controls(controls)
    smoke = costtrain.train_baseline("simple", ds, threads=v["threads"], batch_size=v["batch_size"], lr=v["lr"],
                                     seed=seed, progress=progress)
    print(summary(smoke))
    """),
    md("""
    ## Summary
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    display(Markdown("\\n".join([
        f"- costtrain {costtrain.__version__} with PyTorch {hardware_info()['torch']} on {cores} core(s).",
        f"- {ds.name} found: {len(ds.train_y):,} training images used here; sample images in "
        f"`{figures / '00_samples.png'}`.",
        f"- A {smoke.samples:,}-sample smoke run trained at {smoke.samples_per_second:,.0f} samples/s and reached "
        f"{100 * smoke.test_accuracy:.1f} % test accuracy: the set-up works. Next: `01_baseline.ipynb`."])))
    """),
    code(FOOTER),
]

# ---------------------------------------------------------------------------------------------
NB01 = [
    md("""
    # 01 · The baseline: one process, measured

    Before spreading training over processes or machines, measure what **one process** does on
    your machine. Every later notebook has to beat this number.

    **You will learn**
    - how to train the classic 2-conv "mnist_hogwild" net on Fashion-MNIST with
      `costtrain.train_baseline` and read its measurements (set-up / train / eval time,
      samples per second, test accuracy);
    - how the number of intra-op threads (`torch.set_num_threads`) changes the speed;
    - where the time goes: the classic data pipeline (a `DataLoader` with per-sample PIL
      transforms) against in-memory tensors.

    **Time on a laptop:** about 1 minute with the defaults below on 2 cores; seconds with the CI
    values. Widgets only *set* values; the cell below them does the training, so running the
    whole notebook top to bottom (or headless with papermill) trains with the defaults.
    """),
    imports(),
    md(PARAMS_INTRO),
    params("""
    dataset = "fashion-mnist"
    subset = 20000        # training images (None: all 60,000)
    test_subset = 5000    # test images (None: all 10,000)
    epochs = 1            # passes over the training set in each run
    batch_size = 64
    lr = 0.01
    seed = 42
    threads_list = None   # thread counts to compare; None: 1, half the cores and all cores
    progress = True       # tqdm progress bars
    figures_dir = "../figures"
    """),
    code("""
    # NBVAL_CHECK_OUTPUT
    cores = costtrain.num_cores()
    threads_list = threads_list or sorted({1, max(1, cores // 2), cores})
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
    print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images of shape {ds.input_shape}")
    print(f"thread counts to compare: {threads_list}")
    """),
    md("""
    ## 1. One run

    `train_baseline` is one plain training loop: shuffle, forward, loss, backward, SGD step,
    log the loss every 10 batches. It keeps set-up, training and evaluation time apart, so the
    numbers below say what the *training* cost. Pick the thread count, batch size and learning
    rate with the widgets (or leave them), then run the cell below them.
    """),
    code("""
    controls = training_controls(threads=cores, batch_size=batch_size, lr=lr)
    controls
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    v = read_controls(controls)
    first = costtrain.train_baseline("simple", ds, epochs=epochs, threads=v["threads"],
                                     batch_size=v["batch_size"], lr=v["lr"], seed=seed,
                                     progress=progress)
    print(summary(first))
    """),
    md("""
    ## 2. Threads vs speed

    PyTorch runs each convolution and matrix product on several threads (by default one per
    core). Does this small net get faster with more of them? We train the same work with each
    thread count and compare the steady-state throughput (the first 20 % of the run, the
    warm-up, is left out).
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    by_threads = [costtrain.train_baseline("simple", ds, epochs=epochs, threads=t, batch_size=batch_size,
                                           lr=lr, seed=seed, progress=progress) for t in threads_list]
    for r, t in zip(by_threads, threads_list):
        r.label = f"{t} thread{'s' if t > 1 else ''}"
    print(results_table(by_threads))
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    rates = [r.steady_samples_per_second for r in by_threads]
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.bar([str(t) for t in threads_list], rates, color="tab:blue")
    ax.set(xlabel="intra-op threads (torch.set_num_threads)", ylabel="samples / s (steady state)",
           title=f"Baseline throughput, {ds.name}, {cores} cores")
    fig.savefig(figures / "01_threads.png", dpi=110)
    plt.show()
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    one, best = by_threads[0], max(by_threads, key=lambda r: r.steady_samples_per_second)
    worst = min(by_threads, key=lambda r: r.steady_samples_per_second)
    speedup = best.steady_samples_per_second / one.steady_samples_per_second
    if best is one and worst is not one:
        verdict = (f"more threads made it slower: {worst.threads} threads trained only "
                   f"{worst.steady_samples_per_second:,.0f} samples/s, "
                   f"{one.steady_samples_per_second / worst.steady_samples_per_second:.1f}x slower than 1 thread")
    elif speedup < 1.15:
        verdict = f"extra threads barely paid off for this small net (best: {best.threads} threads, {speedup:.2f}x)"
    else:
        verdict = (f"{best.threads} threads trained {best.steady_samples_per_second:,.0f} samples/s, "
                   f"{speedup:.1f}x faster (the ideal on {cores} cores would be {cores}x)")
    display(Markdown(f"**Measured:** 1 thread trained {one.steady_samples_per_second:,.0f} samples/s; {verdict}."))
    """),
    md("""
    ## 3. Where the time goes: the data pipeline

    The original example fed the net through a `DataLoader` over a dataset that decodes every
    image with PIL and applies `ToTensor()` and `Normalize()` **per sample, every epoch**. For a
    net this small that Python work can cost more than the maths. `pipeline="classic"` does
    exactly that; `pipeline="memory"` (the default) decodes the data once into a normalized
    tensor and slices mini-batches from it. Same net, same threads, same work.
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    pipelines = {}
    for p in ("classic", "memory"):
        pipelines[p] = costtrain.train_baseline("simple", ds, epochs=epochs, threads=best.threads,
                                                batch_size=batch_size, lr=lr, seed=seed,
                                                pipeline=p, progress=progress)
        pipelines[p].label = f"{p} pipeline"
    print(results_table(list(pipelines.values())))
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    classic, memory = pipelines["classic"], pipelines["memory"]
    compute = memory.train_seconds                       # the maths alone
    data = max(0.0, classic.train_seconds - compute)     # what per-sample transforms added
    parts = {"set-up": [classic.setup_seconds, memory.setup_seconds],
             "compute (forward/backward/step)": [compute, compute],
             "data pipeline (per-sample transforms)": [data, 0.0],
             "evaluation": [classic.eval_seconds, memory.eval_seconds]}
    fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
    left = [0.0, 0.0]
    for name, secs in parts.items():
        ax.barh(["classic", "in memory"], secs, left=left, label=name)
        left = [l + s for l, s in zip(left, secs)]
    ax.set(xlabel="seconds", title=f"Where the time goes ({len(ds.train_y) * epochs:,} samples, {best.threads} thread(s))")
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(figures / "01_time_breakdown.png", dpi=110)
    plt.show()
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    share = data / classic.train_seconds if classic.train_seconds > 0 else 0.0
    ratio = classic.train_seconds / memory.train_seconds
    display(Markdown(
        f"**Measured:** the classic pipeline trained for {classic.train_seconds:.1f} s, the in-memory one for "
        f"{memory.train_seconds:.1f} s ({ratio:.1f}x {'longer' if ratio >= 1 else 'shorter'}). "
        f"About {100 * share:.0f} % of the classic run's training time went to per-sample transforms, "
        f"not to the net. Test accuracy: {100 * classic.test_accuracy:.1f} % vs {100 * memory.test_accuracy:.1f} %."))
    """),
    md("""
    ## Summary
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    fastest = min(by_threads + list(pipelines.values()), key=lambda r: r.train_seconds)
    display(Markdown("\\n".join([
        f"- Baseline to beat on this machine: **{fastest.steady_samples_per_second:,.0f} samples/s** "
        f"({fastest.label}), {100 * fastest.test_accuracy:.1f} % test accuracy after {epochs} epoch(s) "
        f"of {len(ds.train_y):,} images.",
        f"- Threads: fastest with {best.threads} of {cores} cores, {speedup:.1f}x the 1-thread speed.",
        f"- Data pipeline: in-memory tensors made training {ratio:.1f}x faster than per-sample transforms.",
        f"- Figures: `{figures / '01_threads.png'}`, `{figures / '01_time_breakdown.png'}`."])))
    """),
    code(FOOTER),
]

# ---------------------------------------------------------------------------------------------
NB02 = [
    md("""
    # 02 · A parameter server: sync and async

    A **parameter server** keeps the model on one process (rank 0, the server) while worker
    processes compute gradients on their own mini-batches and send them in. costtrain builds it
    on `torch.distributed` (gloo): the same code runs on one machine (it launches the server
    and the workers itself on 127.0.0.1) and across machines under `torchrun`.

    **You will learn**
    - **sync** mode: each step the server averages every worker's gradient, updates, and sends
      the new parameters back: mathematically large-batch SGD (batch = workers x batch size);
    - **async** mode: each worker pushes its gradient and pulls the latest parameters on its
      own; gradients computed on old parameters are *stale*, and we measure how stale;
    - how much time goes to communication against computation, and how it changes with the
      number of workers;
    - the `torchrun` commands that run the same thing across two machines.

    **Time on a laptop:** about 2 minutes with the defaults on 2 cores; under a minute with the
    CI values. Every run starts processes, which takes seconds: watch the set-up column.
    """),
    imports('from costtrain.parameter_server import train_parameter_server'),
    md(PARAMS_INTRO),
    params("""
    dataset = "fashion-mnist"
    subset = 10000        # training images (None: all 60,000)
    test_subset = 2000    # test images (None: all 10,000)
    epochs = 1            # passes over the training set (all workers together)
    workers_list = None   # worker counts to compare; None: 1 and 2 (and 4 on 4+ cores)
    batch_size = 64       # per worker and step
    lr = 0.01
    momentum = 0.0        # the server's SGD momentum
    scale_lr = False      # sync: the server steps with lr x workers (the linear scaling rule)
    seed = 42
    timeout = 60.0        # seconds any wait on a peer may take before the run fails
    progress = True
    figures_dir = "../figures"
    """),
    code("""
    # NBVAL_CHECK_OUTPUT
    cores = costtrain.num_cores()
    workers_list = workers_list or ([1, 2, 4] if cores >= 4 else [1, 2])
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
    print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images")
    print(f"worker counts to compare: {workers_list}")
    """),
    md("""
    ## 1. Sync vs async, and the number of workers

    Same data, same number of epochs in every run; only the mode and the number of workers
    change. Each worker gets `cores // workers` threads (at least one); the server mostly
    waits and uses one. The reference is a single-process baseline with all cores and the same
    optimizer (SGD with `momentum`). Sync mode averages the workers' gradients, so each step
    sees `workers x batch_size` samples at the same learning rate; `scale_lr = True` applies
    the linear scaling rule (`lr x workers`) to make up for the fewer steps. Pick a
    configuration of your own with the widgets: the cell below them trains every mode with
    every worker count of the parameters, plus your choice, with your batch size and
    learning rate.
    """),
    code("""
    controls = training_controls(method="ps-sync", methods=("ps-sync", "ps-async"),
                                 workers=workers_list[-1], batch_size=batch_size, lr=lr)
    controls
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    v = read_controls(controls)
    chosen = (v["method"].removeprefix("ps-"), v["workers"])
    reference = costtrain.train_baseline("simple", ds, epochs=epochs, batch_size=v["batch_size"], lr=v["lr"],
                                         momentum=momentum, seed=seed, progress=progress)
    plan = dict.fromkeys([(mode, w) for mode in ("sync", "async") for w in workers_list] + [chosen])
    by_config = {(mode, w): train_parameter_server("simple", ds, mode=mode, workers=w, epochs=epochs,
                                                   batch_size=v["batch_size"], lr=v["lr"], momentum=momentum,
                                                   scale_lr=scale_lr, seed=seed, timeout=timeout, progress=progress)
                 for mode, w in plan}
    runs = list(by_config.values())
    print(results_table([reference] + runs))
    print(summary(by_config[chosen]))
    """),
    code("""
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
    ax.legend(fontsize=8)
    fig.savefig(figures / "02_ps_throughput.png", dpi=110)
    plt.show()
    """),
    md("""
    ## 2. Communication vs compute

    Each worker times the two halves of every step: computing its gradient (forward and
    backward) and talking to the server (sending the gradient, receiving the parameters, and
    waiting for its turn). A small net means little compute per step, so messages can dominate.
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    labels = [r.label for r in runs]
    comm = [r.extra["comm_seconds"] for r in runs]          # mean per worker
    compute = [r.extra["compute_seconds"] for r in runs]
    fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
    ax.barh(labels, compute, label="compute (forward + backward)")
    ax.barh(labels, comm, left=compute, label="communication + waiting")
    ax.set(xlabel="seconds per worker", title="Where the workers' time goes")
    ax.legend(fontsize=8)
    fig.savefig(figures / "02_comm_compute.png", dpi=110)
    plt.show()
    share = {r.label: r.extra["comm_share"] for r in runs}
    lo, hi = min(share, key=share.get), max(share, key=share.get)
    display(Markdown(f"**Measured:** communication and waiting took {100 * share[lo]:.0f} % of the workers' "
                     f"time in *{lo}* and {100 * share[hi]:.0f} % in *{hi}*; the rest was computing gradients."))
    """),
    md("""
    ## 3. Staleness in async mode

    In async mode a worker's gradient was computed on parameters that other workers may have
    updated since. The *staleness* of a gradient is the number of server updates that happened
    in between; sync mode has staleness 0 by construction.
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    async_runs = [r for r in runs if r.config["mode"] == "async"]
    most = max(async_runs, key=lambda r: r.config["workers"])
    stale = most.extra["staleness"]
    hist = {int(k): v for k, v in sorted(stale["histogram"].items(), key=lambda kv: int(kv[0]))}
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    ax.bar(list(hist), list(hist.values()), color="tab:orange")
    ax.set(xlabel="staleness (server updates between pull and push)", ylabel="gradients",
           title=f"Staleness, {most.label}")
    fig.savefig(figures / "02_staleness.png", dpi=110)
    plt.show()
    total = sum(hist.values()) or 1
    display(Markdown(f"**Measured:** with {most.config['workers']} async worker(s) the mean staleness was "
                     f"{stale['mean']:.2f} updates (max {stale['max']}); {100 * hist.get(0, 0) / total:.0f} % "
                     f"of the gradients were computed on the latest parameters."))
    """),
    md("""
    ## 4. Across machines with `torchrun`

    On one machine `train_parameter_server` starts the server and the workers itself. Across
    machines, start the same code with `torchrun` on each machine: rank 0 (the server) on the
    first one. The transport is unauthenticated, so use it on a network you trust only.
    The commands below are filled in with this notebook's parameters.
    """),
    code("""
    # NBVAL_CHECK_OUTPUT
    w = workers_list[-1]
    args = " ".join(a for a in [f"--mode sync --epochs {epochs} --batch-size {batch_size} --lr {lr}",
                                f"--momentum {momentum}" if momentum else "", "--scale-lr" if scale_lr else "",
                                f"--subset {subset}" if subset else ""] if a)
    dist = "--nnodes 2 --master-addr 192.168.1.10 --master-port 29500"
    print("\\n".join([
        f"# on this machine first: the server plus {w} workers",
        f"torchrun --standalone --nproc-per-node {w + 1} -m costtrain.parameter_server {args}",
        "",
        f"# two machines: A (192.168.1.10) runs the server and {w} workers, B runs {w + 1} more workers",
        f"torchrun {dist} --node-rank 0 --nproc-per-node {w + 1} -m costtrain.parameter_server {args}  # on A",
        f"torchrun {dist} --node-rank 1 --nproc-per-node {w + 1} -m costtrain.parameter_server {args}  # on B",
    ]))
    """),
    md("""
    ## Summary
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    fastest = max(runs, key=lambda r: r.samples_per_second)
    sync_best = max((r for r in runs if r.config["mode"] == "sync"), key=lambda r: r.samples_per_second)
    async_best = max(async_runs, key=lambda r: r.samples_per_second)
    vs = fastest.samples_per_second / reference.samples_per_second
    display(Markdown("\\n".join([
        f"- Fastest parameter-server run: **{fastest.label}**, {fastest.samples_per_second:,.0f} samples/s, "
        f"{vs:.2f}x the single-process baseline ({reference.samples_per_second:,.0f} samples/s).",
        f"- Best sync: {sync_best.label}, {100 * sync_best.test_accuracy:.1f} % test accuracy; "
        f"best async: {async_best.label}, {100 * async_best.test_accuracy:.1f} % "
        f"(baseline {100 * reference.test_accuracy:.1f} %).",
        f"- Set-up (starting processes, connecting) took {min(r.setup_seconds for r in runs):.1f} to "
        f"{max(r.setup_seconds for r in runs):.1f} s per run, against {reference.setup_seconds:.2f} s for the baseline.",
        f"- Figures: `{figures / '02_ps_throughput.png'}`, `{figures / '02_comm_compute.png'}`, "
        f"`{figures / '02_staleness.png'}`."])))
    """),
    code(FOOTER),
]

# ---------------------------------------------------------------------------------------------
NB03 = [
    md("""
    # 03 · Hogwild!: several processes, one shared model, no locks

    **Hogwild!** (Niu et al., 2011) puts the model's parameters in shared memory and lets
    several processes run SGD on them at the same time, without locks. Updates sometimes
    overwrite each other; for sparse-ish problems and small learning rates it works anyway, and
    it needs almost no code change.

    **You will learn**
    - the original project's API (`train_model`, `log_elapsed_time`, `chart_losses`) on its
      three configurations with the same total work: 1 process x 4 epochs, 4 x 1 and 2 x 2;
    - the same with costtrain's native `train_hogwild`, which measures set-up, training and
      evaluation apart and returns loss curves per process;
    - the **thread-oversubscription** trap, live: processes that each use every core for
      their own threads crawl. The demo is a short capped run (never minutes of waiting).

    **Time on a laptop:** about 3 minutes with the defaults on 2 cores; about a minute with
    the CI values.
    """),
    imports('import torch', 'from tqdm.auto import tqdm', 'from costtrain.data import tensor_dataset', 'from costtrain.hogwild import train_hogwild', 'from costtrain.legacy import chart_losses, log_elapsed_time, train_model', 'from costtrain.plots import plot_losses, plot_worker_losses', 'from costtrain.procs import WorkerError', 'from costtrain.utils import threads_per_process'),
    md(PARAMS_INTRO),
    params("""
    dataset = "fashion-mnist"
    subset = 10000          # training images (None: all 60,000)
    test_subset = 2000      # test images (None: all 10,000)
    total_epochs = 4        # total work: processes x epochs per process
    configs = None          # (processes, epochs per process); None: 1x4, 4x1 and 2x2 (scaled to total_epochs)
    batch_size = 64
    lr = 0.01
    momentum = 0.5
    seed = 42
    oversub_processes = 2   # the oversubscription demo: processes ...
    oversub_subset = 3000   # ... on this many images ...
    oversub_timeout = 30.0  # ... and the slow run stopped this many seconds after start-up
    progress = True
    figures_dir = "../figures"
    """),
    code("""
    # NBVAL_CHECK_OUTPUT
    from costtrain.widgets import epoch_splits
    cores = costtrain.num_cores()
    splits = epoch_splits(total_epochs)
    configs = [tuple(c) for c in configs] if configs else [splits[0], splits[-1]] + splits[1:-1][:1]
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
    print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images")
    print("configurations (processes x epochs per process):", ", ".join(f"{p}x{e}" for p, e in configs))
    """),
    md("""
    ## 1. The original API: `train_model`

    The original project trains a model you build, through a `DataLoader` you build, with an
    optimizer you build: `train_model(model, train_dataloader, num_processes,
    epochs_per_process, optimizer)`. It prints the test accuracy and returns the training
    losses; `log_elapsed_time` prints the wall time and `chart_losses` draws the curves. Each
    worker gets `cores // processes` threads: that one line is what keeps Hogwild! fast (see
    part 3).
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    loader = torch.utils.data.DataLoader(tensor_dataset(ds, "train"), batch_size=batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(tensor_dataset(ds, "test"), batch_size=1000)
    losses, original_seconds = {}, {}
    for processes, epochs_per_process in tqdm(configs, desc="configurations", disable=not progress):
        model = costtrain.SimpleNN()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        start = time.time()
        label = f"{processes} process{'es' if processes > 1 else ''} x {epochs_per_process} epoch{'s' if epochs_per_process > 1 else ''} NN"
        losses[label] = train_model(
            model, loader, processes, epochs_per_process, optimizer, log_interval=-1, seed=seed,
            test_dataloader=test_loader)
        end = time.time()
        log_elapsed_time(processes, epochs_per_process, start, end)
        original_seconds[(processes, epochs_per_process)] = end - start
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    fig = chart_losses(losses, title=f"Hogwild! training losses, {total_epochs} epochs of work each")
    fig.savefig(figures / "03_hogwild_losses.png", dpi=110)
    fig
    """),
    md("""
    ## 2. The native API: `train_hogwild`

    `train_hogwild` does the same with in-memory (shared) tensors and returns a `RunResult`:
    set-up (starting processes), training and evaluation times apart, throughput, and each
    process's loss curve. The cell below the widgets trains the configurations above plus the
    split you pick (at the same total work), with the batch size and learning rate you pick.
    """),
    code("""
    controls = training_controls(total_epochs=total_epochs, processes=configs[-1][0], batch_size=batch_size, lr=lr)
    controls
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    v = read_controls(controls)
    chosen = (v["processes"], v["epochs_per_process"])
    native = {(p, e): train_hogwild("simple", ds, processes=p, epochs_per_process=e, batch_size=v["batch_size"],
                                    lr=v["lr"], momentum=momentum, seed=seed, progress=progress)
              for p, e in dict.fromkeys(configs + [chosen])}
    print(results_table(list(native.values())))
    print(summary(native[chosen]))
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    plot_losses(list(native.values()), figures / "03_native_losses.png", x="seconds",
                title="train_hogwild: training loss against training seconds")
    display(plot_losses(list(native.values()), x="seconds", title="train_hogwild: training loss against training seconds"),
            plot_worker_losses(native[chosen]))
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    runs = list(native.values())
    single = next((r for r in runs if r.config["processes"] == 1), runs[0])
    fastest = min(runs, key=lambda r: r.train_seconds)
    display(Markdown(
        f"**Measured:** {single.label} trained for {single.train_seconds:.1f} s; the fastest split, "
        f"{fastest.label}, for {fastest.train_seconds:.1f} s ({single.train_seconds / fastest.train_seconds:.2f}x), "
        f"plus {fastest.setup_seconds:.1f} s to start its processes. Test accuracy "
        f"{100 * single.test_accuracy:.1f} % vs {100 * fastest.test_accuracy:.1f} %."))
    """),
    md("""
    ## 3. The thread-oversubscription trap, live

    By default every PyTorch process uses one thread per core. Start `N` Hogwild! processes on
    `N` cores and `N x N` threads fight for them: each convolution waits for threads that are
    busy elsewhere. Below, the same small job runs twice: once with every process using **all
    cores** (`threads=cores`, what you get without thinking about it), once with the **right
    budget** (`threads=cores // processes`). The slow run is stopped about `oversub_timeout`
    seconds after its processes have started, so we compare throughput, not completion.
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
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
    print(results_table([bad, good]))
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    fig, ax = plt.subplots(figsize=(6.5, 2.6), layout="constrained")
    ax.barh([bad.label, good.label], [bad.samples_per_second, good.samples_per_second], color=["tab:red", "tab:green"])
    ax.set(xlabel="samples / s (training)", title=f"Thread oversubscription on {cores} cores")
    fig.savefig(figures / "03_oversubscription.png", dpi=110)
    plt.show()
    slowdown = good.samples_per_second / max(bad.samples_per_second, 1e-9)
    if bad.samples == 0:
        verdict = f"the oversubscribed run did not finish a single logged step before it was stopped after {cap:.0f} s."
    elif slowdown > 1.1:
        verdict = f"oversubscription made training **{slowdown:.1f}x slower**."
    else:
        verdict = (f"here the difference was small ({slowdown:.2f}x); it grows with the number of cores and "
                   "processes, and with anything else running on the machine.")
    display(Markdown(
        f"**Measured:** *{bad.label}* trained {bad.samples_per_second:,.0f} samples/s, *{good.label}* "
        f"{good.samples_per_second:,.0f} samples/s: {verdict}"
        + (f" The oversubscribed run was stopped after {cap:.0f} s with {bad.samples:,} of "
           f"{oversub_processes * len(small.train_y):,} samples trained ({bad.status})." if bad.status != "ok" else "")))
    """),
    md("""
    ## Summary
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    best_orig = min(original_seconds, key=original_seconds.get)
    display(Markdown("\\n".join([
        "- Original API wall times: " + ", ".join(f"{p}x{e}: {s:.1f} s" for (p, e), s in original_seconds.items())
        + f"; fastest {best_orig[0]}x{best_orig[1]}.",
        f"- Native API: fastest split {fastest.label}, {fastest.steady_samples_per_second:,.0f} samples/s in steady "
        f"state vs {single.steady_samples_per_second:,.0f} for one process.",
        f"- Oversubscription: {oversub_processes} processes trained {good.samples_per_second:,.0f} samples/s with "
        f"{budget} thread(s) each and {bad.samples_per_second:,.0f} samples/s with {cores} each.",
        f"- Figures: `{figures / '03_hogwild_losses.png'}`, `{figures / '03_native_losses.png'}`, "
        f"`{figures / '03_oversubscription.png'}`."])))
    """),
    code(FOOTER),
]

# ---------------------------------------------------------------------------------------------
NB04 = [
    md("""
    # 04 · Every method side by side: time, accuracy, cost

    The earlier notebooks looked at one method each. Here every method trains the **same
    total work** (the same number of passes over the same data) and we compare what matters
    to a casual practitioner: wall time, accuracy, the loss against samples and against
    seconds, and what reaching a target accuracy costs.

    **You will learn**
    - how the baseline, Hogwild! and the parameter server compare on your machine, measured,
      with set-up, training and evaluation kept apart;
    - why "loss against samples" and "loss against seconds" tell different stories;
    - what each run cost (electricity, or a cloud instance's price per hour) and which
      configuration reached the target accuracy first and cheapest;
    - optionally, what `costtrain advise` recommends for a whole job after short probes.

    **Time on a laptop:** about 2 to 3 minutes with the defaults on 2 cores; about a minute
    with the CI values.
    """),
    imports('from costtrain.compare import run_comparison', 'from costtrain.cost import attach_cost, price_basis', 'from costtrain.plots import plot_accuracy_vs_time, plot_cost_to_target, plot_losses', 'from costtrain.report import format_table'),
    md(PARAMS_INTRO),
    params("""
    dataset = "fashion-mnist"
    subset = 10000          # training images (None: all 60,000)
    test_subset = 2000      # test images (None: all 10,000)
    total_epochs = 2        # passes over the training set, the same for every method
    only = None             # run only configurations whose label starts with one of these
    batch_size = 64
    lr = 0.01
    seed = 42
    eval_every = 2000       # held-out accuracy every this many samples (for accuracy vs time)
    target_accuracy = None  # e.g. 0.75; None: 90 % of the best final accuracy
    instance = None         # price as this cloud instance, e.g. "aws-c7i.large"; None: electricity
    advise_budget = 20.0    # seconds for costtrain's recommendation probes; 0 skips them
    progress = True
    figures_dir = "../figures"
    """),
    code("""
    # NBVAL_CHECK_OUTPUT
    cores = costtrain.num_cores()
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    basis = price_basis(instance)
    ds = costtrain.load_dataset(dataset, subset=subset, test_subset=test_subset, seed=seed)
    print(f"{ds.name}: {len(ds.train_y):,} training and {len(ds.test_y):,} test images; "
          f"{total_epochs} epochs of work = {total_epochs * len(ds.train_y):,} samples per configuration")
    print(f"priced as {basis.describe()}")
    """),
    md("""
    ## 1. Run every method

    `run_comparison` is what `make run` / `costtrain compare` runs: the configurations of
    `comparison_plan`, each doing `total_epochs` passes over the data, with the energy of each
    run measured (or estimated where the machine does not report it). Pick the batch size and
    learning rate they share, then run the cell below the widgets.
    """),
    code("""
    controls = training_controls(batch_size=batch_size, lr=lr)
    controls
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    v = read_controls(controls)
    results = run_comparison(ds, total_epochs=total_epochs, batch_size=v["batch_size"], lr=v["lr"], seed=seed,
                             eval_every=eval_every, only=only, price=basis, progress=progress)
    print(results_table(results))
    """),
    md("""
    ## 2. Loss against samples, loss against seconds

    Against **samples seen**, curves on top of each other mean the methods learn equally
    well per example. Against **seconds of training**, the faster method pulls ahead. A method
    can win one picture and lose the other.
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    for x in ("samples", "seconds"):
        plot_losses(results, figures / f"04_losses_{x}.png", x=x, title=f"Training loss against {x}, same total work")
    display(plot_losses(results, x="samples", title="Training loss against samples seen"),
            plot_losses(results, x="seconds", title="Training loss against training seconds"))
    """),
    md("""
    ## 3. Accuracy against wall time, and cost

    Held-out accuracy was measured every `eval_every` samples (that time is kept out of the
    clock). The cost of a run is its energy at your electricity price, or its wall time at a
    cloud instance's hourly price (see `costtrain.cost` to use your own prices).
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    target = target_accuracy or round(0.9 * max(r.test_accuracy for r in results), 3)
    for r in results:  # price again now that the target is known (each run keeps its measured energy)
        attach_cost(r, target_accuracy=target, basis=basis)
    title = f"Cost to {100 * target:.0f} % test accuracy ({basis.name})"
    plot_accuracy_vs_time(results, figures / "04_accuracy_vs_time.png", target=target)
    plot_cost_to_target(results, figures / "04_cost_to_target.png", title=title)
    display(plot_accuracy_vs_time(results, target=target), plot_cost_to_target(results, title=title))
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    from costtrain.cost import money
    print(f"target accuracy {100 * target:.1f} %, priced as {basis.describe()}")
    print(format_table([(r.label, round(r.total_seconds, 1), round(100 * r.test_accuracy, 1), money(r.cost["cost"]),
                         "not reached" if r.cost["time_to_target_seconds"] is None
                         else round(r.cost["time_to_target_seconds"], 1), money(r.cost["cost_to_target"]))
                        for r in results],
                       ("run", "wall s", "test acc %", "cost", "s to target", "cost to target")))
    """),
    md("""
    ## 4. What costtrain recommends (optional)

    `costtrain.advise.recommend` runs short probes of each method on this machine within a
    time budget, predicts the time and cost of the whole job and recommends one (the same as
    `costtrain advise` on the command line). Set `advise_budget` to 0 to skip it.
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    if advise_budget > 0:
        from costtrain.advise import recommend
        advice = recommend("simple", ds, target_accuracy=target, budget_seconds=advise_budget,
                           epochs=total_epochs, instance=instance, batch_size=v["batch_size"], lr=v["lr"],
                           seed=seed, progress=progress)
        print(advice)
    else:
        print("skipped (advise_budget is 0)")
    """),
    md("""
    ## Summary
    """),
    code("""
    # NBVAL_IGNORE_OUTPUT
    fastest = min(results, key=lambda r: r.total_seconds)
    accurate = max(results, key=lambda r: r.test_accuracy)
    base = next((r for r in results if r.method == "baseline"), results[0])
    reached = [r for r in results if r.cost["cost_to_target"] is not None]
    lines = [
        f"- Same work ({total_epochs} epochs of {len(ds.train_y):,} images) for {len(results)} configurations "
        f"({', '.join(sorted({r.method for r in results}))}).",
        f"- Fastest end to end: **{fastest.label}**, {fastest.total_seconds:.1f} s"
        + (f", {base.total_seconds / fastest.total_seconds:.2f}x the speed of {base.label}." if fastest is not base
           else ": no parallel method beat the single process at this size."),
        f"- Most accurate: **{accurate.label}**, {100 * accurate.test_accuracy:.1f} %; the spread across "
        f"configurations was {100 * (accurate.test_accuracy - min(r.test_accuracy for r in results)):.1f} points."]
    if reached:
        first = min(reached, key=lambda r: r.cost["time_to_target_seconds"])
        cheap = min(reached, key=lambda r: r.cost["cost_to_target"])
        lines.append(f"- {len(reached)} of {len(results)} reached {100 * target:.1f} %; first **{first.label}** "
                     f"after {first.cost['time_to_target_seconds']:.1f} s, cheapest **{cheap.label}**.")
    else:
        lines.append(f"- No configuration reached {100 * target:.1f} % test accuracy.")
    lines.append("- Figures: " + ", ".join(f"`{figures / n}`" for n in (
        "04_losses_samples.png", "04_losses_seconds.png", "04_accuracy_vs_time.png", "04_cost_to_target.png")))
    display(Markdown("\\n".join(lines)))
    """),
    code(FOOTER),
]

NOTEBOOKS = {"00_setup": NB00, "01_baseline": NB01, "02_parameter_server": NB02, "03_hogwild": NB03, "04_compare": NB04}


def build(name: str, cells: list) -> nbformat.NotebookNode:
    """A clean notebook (kernel python3, deterministic cell ids, no outputs)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC),
                   "language_info": {"name": "python", "pygments_lexer": "ipython3"}}
    for i, cell in enumerate(cells):
        cell = nbformat.from_dict(dict(cell))
        cell["id"] = f"{name[:2]}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def _content(nb: nbformat.NotebookNode) -> tuple:
    """What --check compares: metadata and every cell's type, id, tags and source."""
    return (nb.metadata, [(c.cell_type, c.get("id"), c.metadata, c.source) for c in nb.cells])


def main(argv: list[str]) -> int:
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / f"{name}.ipynb"
        nb = build(name, cells)
        if "--check" in argv:
            if not path.exists() or _content(nbformat.read(path, as_version=4)) != _content(nb) \
                    or any(c.get("outputs") for c in nbformat.read(path, as_version=4).cells):
                stale.append(path.name)
        else:
            path.write_text(nbformat.writes(nb) + "\n")
    if stale:
        print("out of date with _build.py (run python notebooks/_build.py):", ", ".join(stale))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
