"""Command line: ``costtrain run``, ``costtrain compare`` (the main job) and friends."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import advise, notebooks
from .args import (METHOD_NAMES, add_data_args, add_optim_args, add_output_args, add_run_args,
                   positive_float, positive_int)
from .result import RunResult, save_results
from .utils import CosttrainError

METHODS = METHOD_NAMES
# How the trainers' keyword arguments appear on the command line where the names differ.
API_TO_CLI = {"net": "model", "data": "dataset", "data_root": "data_dir",
              "progress": "no_progress"}
NOT_ON_CLI: tuple[str, ...] = ("on_progress",)  # callbacks: Python only (the notebooks' live plot)
SUBCOMMANDS = (  # name, module, help: each module has add_arguments(parser) and run_cli(args)
    ("advise", advise, "recommend the fastest/cheapest method for this machine from short probes"),
    ("notebooks", notebooks, "run the notebooks headless (papermill); --reference: the committed copies"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="costtrain",
        description="Train PyTorch models faster and cheaper on the machine you have: "
                    "single process, Hogwild!, a parameter server and local SGD, measured side by "
                    "side.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train once with one method and print a summary",
                         description="Train once with one method and print a summary.")
    add_run_args(run)

    cmp_ = sub.add_parser("compare", help="the main job: every method on the same total work, "
                                          "one table",
                          description="Run every method on the same data and the same total "
                                      "work and print one table (set-up / train / eval time, "
                                      "throughput, accuracy).")
    cmp_.add_argument("--total-epochs", type=positive_int, default=2,
                      help="total passes over the training set each configuration does "
                           "(default: %(default)s)")
    cmp_.add_argument("--only", nargs="*", default=None,
                      help="run only configurations whose label starts with one of these")
    cmp_.add_argument("--figures", default="figures",
                      help="folder for the figures: compare_losses.png, "
                           "compare_accuracy_vs_time.png, compare_cost.png (default: "
                           "%(default)s; '' for none)")
    cmp_.add_argument("--target-accuracy", type=positive_float, default=None,
                      help="report time and cost to this test accuracy (percent, e.g. 75, or a "
                           "fraction); turns on periodic evaluation")
    add_data_args(cmp_)
    add_optim_args(cmp_, full=False)
    add_output_args(cmp_)

    for name, module, text in SUBCOMMANDS:
        sp = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        module.add_arguments(sp)
        sp.set_defaults(handler=module.run_cli)
    return parser


def _load(args):
    from .data import SPARSE, load_dataset
    sparse = dict(features=args.sparse_features, k=args.sparse_k)
    if args.dataset != SPARSE:
        given = [f"--sparse-{k}" for k, v in sparse.items() if v is not None]
        if given:
            raise CosttrainError(f"{', '.join(given)}: only for --dataset {SPARSE}.")
        sparse = {}
    return load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed,
                        download=args.download, **sparse)


def _optimizer(args: argparse.Namespace):
    """None for SGD (the trainer picks lr and momentum for the model), else the factory."""
    from .engine import make_optimizer
    if args.optimizer == "sgd":
        return None
    if args.model == "sparse-linear":
        raise CosttrainError(f"--optimizer {args.optimizer}: sparse-linear has sparse gradients; "
                             "train it with --optimizer sgd (momentum 0).")
    return make_optimizer(args.optimizer, 0.01 if args.lr is None else args.lr, 0.0)


def run_kwargs(args: argparse.Namespace) -> dict:
    """The trainer keyword arguments of ``costtrain run`` for ``args.method``."""
    common = dict(batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                  seed=args.seed, device=args.device, eval_every=args.eval_every,
                  log_every=args.log_every, progress=not args.no_progress, threads=args.threads)
    if args.optimizer != "sgd" and args.method in ("ps", "local-sgd"):
        raise CosttrainError(f"--optimizer {args.optimizer}: --method {args.method} steps with "
                             "SGD (--lr, --momentum); use --optimizer sgd.")
    if args.method == "baseline":
        return dict(common, epochs=args.epochs, pipeline=args.pipeline,
                    optimizer=_optimizer(args))
    if args.method == "hogwild":
        return dict(common, processes=args.processes, epochs_per_process=args.epochs_per_process,
                    sharding=args.sharding, pipeline=args.pipeline, timeout=args.timeout,
                    optimizer=_optimizer(args), collision_every=args.collision_every)
    if args.method == "local-sgd":
        return dict(common, workers=args.workers, average_every=args.average_every,
                    epochs=args.epochs, addr=args.addr, port=args.port, scale_lr=args.scale_lr,
                    timeout=60.0 if args.timeout is None else args.timeout)
    return dict(common, mode=args.mode, workers=args.workers, epochs=args.epochs,
                addr=args.addr, port=args.port, scale_lr=args.scale_lr,
                max_staleness=args.max_staleness,
                timeout=60.0 if args.timeout is None else args.timeout)


def cmd_run(args) -> list[RunResult]:
    kwargs = run_kwargs(args)
    ds = _load(args)
    if args.method == "baseline":
        from .baseline import train_baseline
        return [train_baseline(args.model, ds, **kwargs)]
    if args.method == "hogwild":
        from .hogwild import train_hogwild
        return [train_hogwild(args.model, ds, **kwargs)]
    if args.method == "local-sgd":
        from .local_sgd import LocalSGDError as Failure, train_local_sgd as train
    else:
        from .parameter_server import ParameterServerError as Failure
        from .parameter_server import train_parameter_server as train
    try:
        return [train(args.model, ds, **kwargs)]
    except Failure as exc:  # a rank was lost: keep what was measured
        if args.out and exc.result is not None:
            print(f"partial result: {save_results([exc.result], args.out)}", file=sys.stderr)
        raise CosttrainError(str(exc).split("\n")[0]) from None


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
