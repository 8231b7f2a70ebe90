"""torchrun and costtrain: ``costtrain torchrun`` (the launcher, on each machine) and one rank
of a torchrun launch (the body of ``python -m costtrain.parameter_server`` and ``python -m
costtrain.local_sgd``).

:func:`main` reads the method's options (:func:`costtrain.args.torchrun_parser`), loads the
data, runs this process's rank (the registry row's ``torchrun`` function) and, on rank 0,
prints the summary and writes ``--out``. :func:`run_cli` (``costtrain torchrun``) runs
torchrun's agent with the ranks' ``--timeout`` as its rendezvous timeout and turns what ends it
(a machine that never joins, ranks that fail, a signal) into one sentence and costtrain's exit
code.
"""
from __future__ import annotations

import inspect
import math
import os
import re
import signal
import sys
from typing import Any, Callable

from . import methods
from .args import nonnegative_int, positive_int, torchrun_parser
from .errors import CosttrainError
from .run.guards import DIVERGED, warn


def main(method: str, argv: list[str] | None = None) -> int:
    """The torchrun entry of `method` (``ps``, ``local-sgd``): returns the exit code."""
    row = methods.get(method)
    return torchrun_main(torchrun_parser(row).parse_args(argv), row.title,
                         row.load("torchrun"))


def torchrun_main(args: Any, what: str, run: Callable[..., Any]) -> int:
    """The body of a torchrun entry (``python -m costtrain.parameter_server|local_sgd``).

    Checks the options every gloo method shares, loads the data, runs this rank with
    ``run(args.model, dataset, **options)`` (every keyword of `run` read from `args`); rank 0
    (the one that gets a RunResult back) prints the summary and writes ``--out``. Returns the
    process's exit code.
    """
    options = [p for p in inspect.signature(run).parameters.values()
               if p.kind == p.KEYWORD_ONLY]
    from .data.datasets import load_dataset
    rank = os.environ.get("RANK", "?")
    try:
        if args.device != "cpu":
            raise CosttrainError(f"{what} runs on CPU (gloo); use --device cpu.")
        if args.optimizer != "sgd":
            raise CosttrainError(f"{what} steps with SGD (--lr, --momentum); use --optimizer sgd.")
        from .train.launch import torchrun_env
        torchrun_env()  # fail before loading data
        ds = load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed,
                          download=args.download)
        result = run(args.model, ds, **{p.name: getattr(args, p.name) for p in options})
    except CosttrainError as exc:
        print(f"costtrain: rank {rank}: error: {exc}", file=sys.stderr)
        return 2
    if result is None:
        return 0
    from .advice.report import summary
    print(summary(result), flush=True)
    if args.out:
        print(f"result: {result.save(args.out)}")
    return 0 if result.status == "ok" else 4 if result.status == DIVERGED else 3


# ------------------------------------------------------------------ costtrain torchrun

DEFAULT_MASTER_PORT = 29500  # torchrun's


class TorchrunFailed(CosttrainError):
    """``costtrain torchrun`` ended without a result: the sentence, and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_arguments(p: Any) -> None:
    """``costtrain torchrun [torchrun's options] --method M [-- rank options]``."""
    import argparse
    entries = [m.name for m in methods.METHODS.values() if m.torchrun]
    p.add_argument("--method", required=True, choices=entries,
                   help="the method whose ranks to start (its rank options, after --, are "
                        "those of `python -m costtrain.parameter_server --help` or "
                        "`python -m costtrain.local_sgd --help`)")
    g = p.add_argument_group("torchrun (the same meaning as torchrun's own options)")
    g.add_argument("--nnodes", type=positive_int, default=1,
                   help="machines taking part (default: %(default)s)")
    g.add_argument("--node-rank", type=nonnegative_int, default=0,
                   help="this machine's number, 0 .. nnodes-1; node 0 holds the rendezvous "
                        "(default: %(default)s)")
    g.add_argument("--nproc-per-node", type=positive_int, default=1,
                   help="ranks on this machine (default: %(default)s)")
    g.add_argument("--master-addr", default="127.0.0.1",
                   help="node 0's address, reachable from every machine (default: "
                        "%(default)s; the transport is unauthenticated: trusted networks only)")
    g.add_argument("--master-port", type=nonnegative_int, default=DEFAULT_MASTER_PORT,
                   help="a free TCP port on node 0 (default: %(default)s)")
    g.add_argument("--standalone", action="store_true",
                   help="one machine: torchrun's own rendezvous on a free port (it listens on "
                        "every interface; `costtrain run --method ps|local-sgd` stays on "
                        "loopback)")
    g.add_argument("--rdzv-conf", default="",
                   help="torchrun's rendezvous settings, key=value,...; its timeout is at most "
                        "the ranks' --timeout (the default), so a machine that never starts "
                        "ends node 0 within --timeout")
    p.add_argument("rank_options", nargs=argparse.REMAINDER,
                   help="after --: each rank's options, e.g. -- --mode async --epochs 2 "
                        "--timeout 60 --out results/ps.json (--out: written by rank 0)")


def _conf(text: str) -> dict[str, str]:
    conf = {}
    for part in filter(None, (x.strip() for x in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise CosttrainError(f"--rdzv-conf {text!r}: expected key=value pairs separated by "
                                 "commas, e.g. timeout=60.")
        conf[key.strip()] = value.strip()
    return conf


def torchrun_argv(args: Any) -> tuple[list[str], float]:
    """torchrun's own argument list for `args` (``costtrain torchrun``'s), and the rendezvous
    timeout in seconds: the ranks' ``--timeout`` unless ``--rdzv-conf`` names a shorter one."""
    row = methods.get(args.method)
    options = list(args.rank_options)
    if options[:1] == ["--"]:
        options = options[1:]
    rank = torchrun_parser(row).parse_args(options)  # a mistyped rank option: exit 2 now
    conf = _conf(args.rdzv_conf)
    timeout = rank.timeout
    if "timeout" in conf:
        try:
            given = float(conf["timeout"])
        except ValueError:
            raise CosttrainError(f"--rdzv-conf timeout={conf['timeout']!r} is not a number of "
                                 "seconds.") from None
        if given > timeout:
            warn(f"--rdzv-conf timeout={conf['timeout']} is longer than the ranks' --timeout "
                 f"{timeout:g}: node 0 waits {timeout:g} s for the other machines (pass a "
                 "larger --timeout to wait longer).")
        timeout = min(given, timeout)
    seconds = max(1, math.ceil(timeout))
    conf["timeout"] = str(seconds)
    if args.node_rank >= args.nnodes:
        raise CosttrainError(f"--node-rank {args.node_rank} with --nnodes {args.nnodes}: node "
                             f"ranks are 0 .. {args.nnodes - 1}.")
    if args.standalone:
        conf["join_timeout"] = str(seconds)
        head = ["--standalone"]
    else:
        head = ["--nnodes", str(args.nnodes), "--node-rank", str(args.node_rank),
                "--master-addr", args.master_addr, "--master-port", str(args.master_port)]
    argv = [*head, "--nproc-per-node", str(args.nproc_per_node), "--rdzv-conf",
            ",".join(f"{k}={v}" for k, v in conf.items()), "-m", f"costtrain.{row.entry}",
            *options]
    return argv, float(seconds)


def failed_ranks(failures: dict[int, Any], node_rank: int) -> tuple[str, int]:
    """The sentence and exit code for ranks that failed (torchrun's ``ChildFailedError.failures``,
    each with an ``exitcode``). torchrun's agent stops the other ranks with SIGTERM once one has
    failed: those ended for that rank's reason, so the code is the one the ranks ended with on
    their own (2, 3 or 4), else 3."""
    failed = sorted(failures.items())
    own = {f.exitcode for _, f in failed if f.exitcode >= 0}
    stopped = all(f.exitcode >= 0 or f.exitcode == -signal.SIGTERM for _, f in failed)
    code = min(own) if len(own) == 1 and own <= {2, 3, 4} and stopped else 3
    ranks = ", ".join(f"{r} (exit {f.exitcode})" if f.exitcode >= 0 else
                      f"{r} (stopped by torchrun after another rank failed)"
                      if f.exitcode == -signal.SIGTERM and own else
                      f"{r} (killed by signal {-f.exitcode})" for r, f in failed)
    return (f"rank{'s' if len(failed) > 1 else ''} {ranks} of this machine (node {node_rank}) "
            "failed; each said why above"
            + (" (with --out, rank 0 kept the partial result)" if code == 3 else "") + ".", code)


def run_cli(args: Any) -> int:
    """``costtrain torchrun``: torchrun with costtrain's rendezvous timeout and messages.

    Runs torchrun's agent in this process (``torch.distributed.run``) with its own log and
    error pages silenced; a machine that never joins, ranks that fail and signals end with one
    ``costtrain: error:`` sentence and costtrain's exit code (2 refused before training, 3 a
    rank failed after it began, 4 diverged; 143/129/130 for signals).
    """
    argv, timeout = torchrun_argv(args)
    if args.nproc_per_node > 1:  # torchrun would set it and say so in a banner; each rank
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # sets its own threads anyway
    import logging
    for name in ("torch.distributed.elastic", "torch.distributed.run",
                 "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # the agent's own C++ log (retries, stack frames) says it again in pages: read once, at
    # import, so the ranks still get the user's setting
    user_level = os.environ.get("TORCH_CPP_LOG_LEVEL")
    os.environ["TORCH_CPP_LOG_LEVEL"] = "FATAL"
    try:
        import torch  # noqa: F401
    finally:
        if user_level is None:
            os.environ.pop("TORCH_CPP_LOG_LEVEL", None)
        else:
            os.environ["TORCH_CPP_LOG_LEVEL"] = user_level
    import torch.distributed as dist
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    where = f"{args.master_addr}:{args.master_port}"
    try:
        torchrun.run(torchrun.parse_args(argv))
    except ChildFailedError as exc:
        raise TorchrunFailed(*failed_ranks(exc.failures, args.node_rank)) from None
    except SignalException as exc:
        signum = getattr(exc, "sigval", None)
        code = 128 + int(signum) if signum is not None else 143
        raise TorchrunFailed(f"torchrun was stopped by a signal ({signum!s}); it stopped "
                             "this machine's ranks", code) from None
    except (RendezvousError, dist.DistError, RuntimeError) as exc:
        raise TorchrunFailed(_never_joined(exc, args, timeout, where), 2) from None
    return 0


def _never_joined(exc: BaseException, args: Any, timeout: float, where: str) -> str:
    """The sentence for a rendezvous that did not complete within `timeout`."""
    text = (str(exc).strip().splitlines()[0] if str(exc).strip()
            else type(exc).__name__).rstrip(".")
    same = ("with the same --nnodes, --master-addr and --master-port, and check that it can "
            f"reach {where} (firewall)")
    if args.standalone or args.nnodes == 1:
        return (f"torchrun's rendezvous did not complete within {timeout:g} s ({text}); "
                "check that nothing else uses the port and re-run.")
    if args.node_rank == 0:
        joined = re.search(r"(\d+)/(\d+) clients joined", text)
        count = (f"{joined[1]} of {joined[2]} machines joined" if joined
                 else f"not all {args.nnodes} machines joined")
        others = ("node 1" if args.nnodes == 2
                  else f"some of nodes 1 .. {args.nnodes - 1}")
        return (f"{others} never started: node 0 waited {timeout:g} s (--timeout) for the "
                f"other machines' `costtrain torchrun` and {count}; start it on "
                + ("the other machine (--node-rank 1)" if args.nnodes == 2 else
                   f"every other machine (--node-rank 1 .. {args.nnodes - 1})")
                + f" within --timeout, {same}.")
    return (f"node {args.node_rank} could not reach node 0 at {where} within {timeout:g} s "
            f"(--timeout): node 0 never started, or is not reachable ({text}); start "
            f"`costtrain torchrun --node-rank 0` on node 0 within --timeout, {same}.")
