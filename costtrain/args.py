"""Command-line argument types and option groups shared by every entry point.

``costtrain run|compare|advise|notebooks`` (:mod:`costtrain.cli`) and the torchrun entry
``python -m costtrain.parameter_server`` / ``python -m costtrain.local_sgd`` declare their options here, once. This module imports
no torch, so that a mistyped option is reported at once; the name tuples below are checked
against the package's registries by the tests.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import methods
from .utils import CosttrainError, momentum_fraction

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "sparse-synthetic",
                 "wordnet-supersense")  # costtrain.data.datasets.DATASETS
MODEL_NAMES = ("cnn", "mlp", "simple", "sparse-linear")  # costtrain.data.models.MODELS
PS_MODES = ("sync", "async")  # costtrain.train.ps_ranks.MODES
OPTIMIZER_NAMES = ("sgd", "adam")  # costtrain.train.engine.OPTIMIZERS
PIPELINE_NAMES = ("memory", "classic")  # costtrain.train.engine.PIPELINES
SHARDING_NAMES = ("full", "shard")  # costtrain.hogwild.SHARDINGS
METHOD_NAMES = methods.NAMES  # costtrain run --method: the registry's rows
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune",
                 "max-autotune-no-cudagraphs")  # costtrain.train.levers.COMPILE_MODES
AMP_NAMES = ("bf16", "fp16")  # costtrain.train.levers.AMP_DTYPES
LEVER_OPTIONS = ("compile", "amp", "channels_last", "force_amp", "base_batch")  # baseline, hogwild


def _number(text: str, kind: type, lowest: float, inclusive: bool) -> float:
    """Parse `text` as `kind` and check it against `lowest`, with an argparse-style error."""
    try:
        v = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not (v >= lowest if inclusive else v > lowest) or v == float("inf"):
        bound = f">= {lowest:g}" if inclusive else "a positive number"
        raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
    return v


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    return int(_number(text, int, 1, True))


def nonnegative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    return int(_number(text, int, 0, True))


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    return _number(text, float, 0, False)


def nonnegative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _number(text, float, 0, True)


def momentum(text: str) -> float:
    """An argparse type: a momentum in [0, 1) (1 or more diverges: refused before training)."""
    value = _number(text, float, 0, True)
    try:
        return momentum_fraction(value)
    except CosttrainError as exc:
        raise argparse.ArgumentTypeError(str(exc).rstrip(".")) from None


def existing_dir(text: str) -> str:
    """An argparse type: a folder that exists."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"data directory {text!r} does not exist")
    return text


def add_data_args(p: argparse.ArgumentParser) -> None:
    """Data and model: which dataset, where its files are, which net."""
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default="fashion-mnist", choices=DATASET_NAMES,
                   help="dataset to train on (default: %(default)s, available offline on Debian "
                        "as the package dataset-fashion-mnist; wordnet-supersense = WordNet 3.0's "
                        "noun supersenses from the package wordnet-base, sparse text for "
                        "--model sparse-linear)")
    g.add_argument("--data-dir", type=existing_dir, default=None,
                   help="folder holding the dataset files, searched first (else $COSTTRAIN_DATA, "
                        "./data, for WordNet $WNSEARCHDIR, system folders)")
    g.add_argument("--download", action="store_true",
                   help="let torchvision download the dataset into --data-dir or ./data if it "
                        "is not found")
    g.add_argument("--subset", type=positive_int, default=None,
                   help="train on a stratified sample of this many training samples "
                        "(default: all)")
    g.add_argument("--sparse-features", type=positive_int, default=None,
                   help="sparse-synthetic: number of features d (default: 2**18)")
    g.add_argument("--sparse-k", type=positive_int, default=None,
                   help="sparse-synthetic: non-zero features per sample (default: 16)")
    g.add_argument("--model", default="simple", choices=MODEL_NAMES,
                   help="simple = the classic 2-conv Hogwild! example net, mlp = small MLP, "
                        "cnn = small CNN for CIFAR-10, sparse-linear = logistic regression for "
                        "sparse-synthetic and wordnet-supersense (default: %(default)s)")


def add_optim_args(p: argparse.ArgumentParser, *, eval_every: bool = True,
                   full: bool = True) -> None:
    """Optimisation: batch size, learning rate, seed, [eval every], [with `full`: the rest]."""
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch-size", type=positive_int, default=64,
                   help="mini-batch size per step and worker (default: %(default)s)")
    o.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: the model's: 0.01 for the image nets, 0.5 for "
                        "sparse-linear)")
    o.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    if eval_every:
        o.add_argument("--eval-every", type=positive_int, default=None,
                       help="also measure test accuracy every this many training samples "
                            "(its time is kept out of the training time)")
    if not full:
        return
    o.add_argument("--momentum", type=momentum, default=None,
                   help="SGD momentum, 0 <= m < 1 (default: the model's: 0.5 for the image nets, "
                        "the classic example's; 0 for sparse-linear, whose sparse updates "
                        "momentum would make dense)")
    o.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="sgd",
                   help="sgd (with --momentum) or adam; the parameter server steps with SGD "
                        "(default: %(default)s)")
    o.add_argument("--log-every", type=positive_int, default=10,
                   help="batches (steps) per point of the loss curves (default: %(default)s)")
    o.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"],
                   help="where to train (default: %(default)s)")


def add_output_args(p: argparse.ArgumentParser, what: str = "the result(s)") -> None:
    """``--out`` and ``--no-progress``."""
    p.add_argument("--out", default=None, help=f"write {what} as JSON to this file (atomically)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_dist_args(p: argparse.ArgumentParser, *, launcher: bool = True) -> None:
    """Options of every distributed method (`launcher`: also workers, address and port)."""
    g = p.add_argument_group("distributed (--method ps, --method local-sgd)")
    if launcher:
        g.add_argument("--workers", type=positive_int, default=2,
                       help="worker processes (ps: besides the server) (default: %(default)s)")
        g.add_argument("--addr", default="127.0.0.1",
                       help="address the rendezvous binds to (default: loopback; the transport "
                            "is unauthenticated, use trusted networks only)")
        g.add_argument("--port", type=int, default=None,
                       help="rendezvous port (default: a free port)")
    g.add_argument("--scale-lr", action=argparse.BooleanOptionalAction, default=True,
                   help="ps sync: the server uses lr x workers; local-sgd: every worker does "
                        "(linear scaling rule, Goyal et al. 2017); --no-scale-lr = exactly --lr "
                        "(default: on)")


def add_ps_args(p: argparse.ArgumentParser) -> None:
    """The parameter server's own options."""
    g = p.add_argument_group("parameter server (--method ps)")
    g.add_argument("--mode", choices=PS_MODES, default="sync",
                   help="sync = average every worker's gradient each step, async = each worker "
                        "pushes and pulls on its own (default: %(default)s)")
    g.add_argument("--max-staleness", type=nonnegative_int, default=None,
                   help="async: drop gradients more than this many updates old (default: keep all)")


def add_local_sgd_args(p: argparse.ArgumentParser) -> None:
    """Local SGD's own options."""
    g = p.add_argument_group("local SGD (--method local-sgd)")
    g.add_argument("--average-every", type=positive_int, default=8, metavar="H",
                   help="local steps between two model averages (all-reduce); 1 = synchronous "
                        "data parallel (default: %(default)s)")


def add_lever_args(p: argparse.ArgumentParser) -> None:
    """The levers of one process (baseline and Hogwild!): compile, amp, channels_last, batch."""
    g = p.add_argument_group("levers (--method baseline, hogwild; see notebook 01b)")
    g.add_argument("--compile", nargs="?", const="default", default=False, choices=COMPILE_MODES,
                   metavar="MODE",
                   help="torch.compile the net (MODE: default, reduce-overhead (CUDA), "
                        "max-autotune, max-autotune-no-cudagraphs; default: default); its first "
                        "step runs during set-up and is reported as compile seconds")
    g.add_argument("--amp", choices=AMP_NAMES, default=None,
                   help="mixed precision: bf16 (CPUs with native bf16: AVX512-BF16/AMX; CUDA) or "
                        "fp16 (CUDA, with loss scaling); refused where it would be slow")
    g.add_argument("--force-amp", action="store_true",
                   help="run --amp even where the hardware has no native support (slow)")
    g.add_argument("--channels-last", action="store_true",
                   help="conv nets: keep weights and activations in NHWC memory layout")
    g.add_argument("--base-batch", type=positive_int, default=None, metavar="B",
                   help="--lr is meant for batches of B samples: train with lr x batch-size / B "
                        "(the linear scaling rule; default: --lr as given)")


def add_baseline_args(p: argparse.ArgumentParser) -> None:
    """The baseline's own option: the input pipeline."""
    b = p.add_argument_group("baseline")
    b.add_argument("--pipeline", choices=PIPELINE_NAMES, default="memory",
                   help="memory = in-memory tensors, classic = DataLoader with per-sample "
                        "transforms (default: %(default)s)")


def add_hogwild_args(p: argparse.ArgumentParser) -> None:
    """Hogwild!'s own options."""
    h = p.add_argument_group("hogwild")
    h.add_argument("--processes", type=positive_int, default=2,
                   help="Hogwild! worker processes sharing one model (default: %(default)s)")
    h.add_argument("--epochs-per-process", type=positive_int, default=1,
                   help="Hogwild!: epochs each process trains (default: %(default)s)")
    h.add_argument("--sharding", choices=SHARDING_NAMES, default="full",
                   help="Hogwild!: 'full' = every process sees the whole training set each epoch "
                        "(the original project), 'shard' = disjoint shards (default: %(default)s)")
    h.add_argument("--collision-every", type=positive_int, default=10,
                   help="Hogwild!, sparse models: measure one 20 ms slot of time in this many: "
                        "its steps check whether another worker wrote their rows meanwhile "
                        "(default: %(default)s)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Options of ``costtrain run``, grouped by method."""
    p.add_argument("--method", default="baseline", choices=METHOD_NAMES,
                   help="training method (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=1,
                   help="baseline, ps and local-sgd: passes over the training set "
                        "(default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="intra-op threads per process (default: all cores for the baseline, "
                        "cores // processes for multi-process methods)")
    p.add_argument("--timeout", type=positive_float, default=60.0,
                   help="hogwild, ps and local-sgd: seconds a worker may send nothing (stopped, "
                        "frozen, swapped out) before the run stops with an error naming it and "
                        "keeps the partial result (default: %(default)s)")
    added: list[str] = []  # each method's option groups, once, in the registry's order
    for row in methods.METHODS.values():
        for name in row.options:
            if name not in added:
                added.append(name)
                globals()[name](p)
    add_data_args(p)
    add_optim_args(p)
    add_output_args(p)


def _torchrun_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, default=1,
                   help="passes over the training set, shared by the workers (default: 1)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads per worker (default: cores // processes on this machine)")
    p.add_argument("--timeout", type=positive_float, default=60.0,
                   help="seconds any wait on a peer may take (default: %(default)s)")


def torchrun_parser(row: methods.Method) -> argparse.ArgumentParser:
    """The options of one rank of `row`'s method started by torchrun
    (``python -m costtrain.parameter_server``, ``python -m costtrain.local_sgd``)."""
    p = argparse.ArgumentParser(
        prog=f"python -m costtrain.{row.entry}",
        description=f"One rank of a {row.title} run started by torchrun ({row.ranks}). "
                    "Reads RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the environment. "
                    "The transport is unauthenticated: trusted networks only.")
    _torchrun_common(p)
    add_dist_args(p, launcher=False)
    for name in row.options:
        if name != "add_dist_args":
            globals()[name](p)
    add_data_args(p)
    add_optim_args(p)
    add_output_args(p, "the result (rank 0)")
    return p


def add_repeats_arg(p: argparse.ArgumentParser, what: str = "configuration",
                    default: int = 1) -> None:
    """``--repeats N``: run each configuration N times, in turn, and report medians and ranges."""
    p.add_argument("--repeats", type=positive_int, default=default,
                   help=f"run each {what} this many times, alternating (all once, then all "
                        "again), and report the median with its min-max range; verdicts say "
                        "'within noise' when ranges overlap (default: %(default)s)")
