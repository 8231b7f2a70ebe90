"""Command line: ``costtrain run``, ``costtrain compare`` (the main job) and friends."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

from .data import DATASETS, SPARSE
from .models import MODELS
from .result import RunResult, save_results
from .utils import CosttrainError

METHODS = ("baseline", "hogwild", "ps")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def _existing_dir(text: str) -> str:
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"data directory {text!r} does not exist")
    return text


def add_data_args(p: argparse.ArgumentParser) -> None:
    """Options every subcommand shares: data, model and optimisation."""
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="dataset to train on (default: %(default)s, available offline on Debian "
                        "as the package dataset-fashion-mnist)")
    g.add_argument("--data-dir", type=_existing_dir, default=None,
                   help="folder holding the dataset files, searched first (else $COSTTRAIN_DATA, "
                        "./data, system folders)")
    g.add_argument("--download", action="store_true",
                   help="let torchvision download the dataset into --data-dir or ./data if it "
                        "is not found")
    g.add_argument("--subset", type=_positive_int, default=None,
                   help="train on a stratified sample of this many training images "
                        "(default: all)")
    g.add_argument("--sparse-features", type=_positive_int, default=None,
                   help=f"{SPARSE}: number of features d (default: 2**18)")
    g.add_argument("--sparse-k", type=_positive_int, default=None,
                   help=f"{SPARSE}: non-zero features per sample (default: 16)")
    g.add_argument("--model", default="simple", choices=sorted(MODELS),
                   help="simple = the classic 2-conv Hogwild! example net, mlp = small MLP, "
                        "cnn = small CNN for CIFAR-10, sparse-linear = logistic regression "
                        f"on {SPARSE} (default: %(default)s)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch-size", type=_positive_int, default=64,
                   help="mini-batch size per step and worker (default: %(default)s)")
    o.add_argument("--lr", type=_positive_float, default=None,
                   help="SGD learning rate (default: the model's, 0.01 for the image nets, "
                        "0.5 for sparse-linear)")
    o.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    o.add_argument("--eval-every", type=_positive_int, default=None,
                   help="also measure test accuracy every this many training samples "
                        "(its time is kept out of the training time)")
    o.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"],
                   help="where to train (default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="write the result(s) as JSON to this file (atomically)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="costtrain",
        description="Train PyTorch models faster and cheaper on the machine you have: "
                    "single process, Hogwild! and a parameter server, measured side by side.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train once with one method and print a summary",
                         description="Train once with one method and print a summary.")
    run.add_argument("--method", default="baseline", choices=METHODS,
                     help="training method (default: %(default)s)")
    run.add_argument("--epochs", type=_positive_int, default=1,
                     help="baseline: passes over the training set (default: %(default)s)")
    run.add_argument("--threads", type=_positive_int, default=None,
                     help="intra-op threads per process (default: all cores for the baseline, "
                          "cores // processes for multi-process methods)")
    h = run.add_argument_group("hogwild")
    h.add_argument("--processes", type=_positive_int, default=2,
                   help="Hogwild! worker processes sharing one model (default: %(default)s)")
    h.add_argument("--epochs-per-process", type=_positive_int, default=1,
                   help="Hogwild!: epochs each process trains (default: %(default)s)")
    h.add_argument("--sharding", choices=["full", "shard"], default="full",
                   help="Hogwild!: 'full' = every process sees the whole training set each epoch "
                        "(the original project), 'shard' = disjoint shards (default: %(default)s)")
    ps = run.add_argument_group("parameter server (--method ps)")
    ps.add_argument("--mode", choices=["sync", "async"], default="sync",
                    help="sync = average every worker's gradient each step, async = each worker "
                         "pushes and pulls on its own (default: %(default)s)")
    ps.add_argument("--workers", type=_positive_int, default=2,
                    help="worker processes besides the server (default: %(default)s)")
    ps.add_argument("--addr", default="127.0.0.1",
                    help="address the server binds to (default: loopback; the transport is "
                         "unauthenticated, use trusted networks only)")
    ps.add_argument("--port", type=int, default=None,
                    help="server port (default: a free port)")
    ps.add_argument("--timeout", type=_positive_float, default=60.0,
                    help="seconds any wait on a peer may take before the run fails "
                         "(default: %(default)s)")
    add_data_args(run)

    cmp_ = sub.add_parser("compare", help="the main job: every method on the same total work, "
                                          "one table",
                          description="Run every method on the same data and the same total "
                                      "work and print one table (set-up / train / eval time, "
                                      "throughput, accuracy).")
    cmp_.add_argument("--total-epochs", type=_positive_int, default=2,
                      help="total passes over the training set each configuration does "
                           "(default: %(default)s)")
    cmp_.add_argument("--only", nargs="*", default=None,
                      help="run only configurations whose label starts with one of these")
    cmp_.add_argument("--figures", default="figures",
                      help="folder for the figures: compare_losses.png, "
                           "compare_accuracy_vs_time.png, compare_cost.png (default: "
                           "%(default)s; '' for none)")
    cmp_.add_argument("--target-accuracy", type=_positive_float, default=None,
                      help="report time and cost to this test accuracy (percent, e.g. 75, or a "
                           "fraction); turns on periodic evaluation")
    add_data_args(cmp_)

    for name, module, text in (("advise", "advise", "recommend the fastest/cheapest method for "
                                                    "this machine from short probes"),
                               ("notebooks", "notebooks", "run every course notebook headless "
                                                          "(papermill) and refresh figures/")):
        try:
            mod = importlib.import_module(f"costtrain.{module}")
        except ImportError:
            continue
        sp = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        mod.add_arguments(sp)
        sp.set_defaults(handler=mod.run_cli)
    return parser


def _load(args):
    from .data import load_dataset
    sparse = dict(features=args.sparse_features, k=args.sparse_k)
    if args.dataset != SPARSE:
        given = [f"--sparse-{k}" for k, v in sparse.items() if v is not None]
        if given:
            raise CosttrainError(f"{', '.join(given)}: only for --dataset {SPARSE}.")
        sparse = {}
    return load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed,
                        download=args.download, **sparse)


def cmd_run(args) -> list[RunResult]:
    from .baseline import train_baseline
    ds = _load(args)
    common = dict(batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                  eval_every=args.eval_every, progress=not args.no_progress)
    if args.method == "baseline":
        return [train_baseline(args.model, ds, epochs=args.epochs, threads=args.threads, **common)]
    if args.method == "hogwild":
        from .hogwild import train_hogwild
        return [train_hogwild(args.model, ds, processes=args.processes,
                              epochs_per_process=args.epochs_per_process,
                              sharding=args.sharding, threads=args.threads, **common)]
    if args.method == "ps":
        from .parameter_server import ParameterServerError, train_parameter_server
        try:
            return [train_parameter_server(args.model, ds, mode=args.mode, workers=args.workers,
                                           epochs=args.epochs, threads=args.threads,
                                           addr=args.addr, port=args.port, timeout=args.timeout,
                                           **common)]
        except ParameterServerError as exc:  # a rank was lost: keep what was measured
            if args.out and exc.partial is not None:
                print(f"partial result: {save_results([exc.partial], args.out)}",
                      file=sys.stderr)
            raise CosttrainError(str(exc).split("\n")[0]) from None
    raise CosttrainError(f"unknown method {args.method!r}")


def cmd_compare(args) -> list[RunResult]:
    from .compare import run_comparison
    from .report import summary
    ds = _load(args)
    print(f"data: {ds.name}, {len(ds.train_y):,} training / {len(ds.test_y):,} test images "
          f"from {ds.source}")
    eval_every = args.eval_every
    if args.target_accuracy and not eval_every:
        eval_every = max(1000, len(ds.train_y) // 4)  # four evaluations per epoch of work
    results = run_comparison(ds, model=args.model, total_epochs=args.total_epochs,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             eval_every=eval_every, progress=not args.no_progress,
                             only=args.only, target_accuracy=args.target_accuracy,
                             on_result=lambda r: print(summary(r), flush=True))
    from .cost import as_fraction, cost_table
    print()
    print(cost_table(results))
    if args.figures:
        from .plots import plot_accuracy_vs_time, plot_cost_to_target, plot_losses
        folder = Path(args.figures)
        paths = [plot_losses(results, folder / "compare_losses.png", x="samples",
                             title=f"Training loss, {ds.name}, same total work"),
                 plot_accuracy_vs_time(results, folder / "compare_accuracy_vs_time.png",
                                       target=as_fraction(args.target_accuracy))]
        if args.target_accuracy:
            paths.append(plot_cost_to_target(results, folder / "compare_cost.png"))
        print("figures: " + ", ".join(str(p) for p in paths))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            results = cmd_run(args)
            from .report import summary
            for r in results:
                print(summary(r))
        elif args.command == "compare":
            results = cmd_compare(args)
        else:
            results = args.handler(args)
            if not results:
                return 0
        from .report import results_table
        print()
        print(results_table(results))
        if getattr(args, "out", None):
            print(f"results: {save_results(results, args.out)}")
    except CosttrainError as exc:
        print(f"costtrain: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("costtrain: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
