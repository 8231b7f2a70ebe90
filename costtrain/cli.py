"""Command line: ``costtrain run``, ``costtrain compare`` (the main job) and friends.

Nothing here imports torch before the arguments are parsed and the output paths checked, so a
mistyped option is answered at once. Exit codes (:data:`EXIT_CODES`): 0 ok, 2 bad input or
setting (momentum >= 1 included), or the system refused the resources a run needs (refused
before training), 3 a worker failed or got stuck, or memory ran out after training began
(partial result kept), 4 the run diverged, 5 an output could not be written (results saved to
a fallback file), 129 SIGHUP, 130 Ctrl-C, 143 SIGTERM. Results are saved before anything about
them is printed: a closed or full stdout loses nothing (:class:`Stdout`).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

from . import HELD_SIGNALS, methods
from .args import (LEVER_OPTIONS, METHOD_NAMES, add_data_args, add_optim_args, add_output_args,
                   add_repeats_arg, add_run_args, positive_float, positive_int)
from .errors import CosttrainError, ResourceError
from .result import RunResult, check_folder_writable, check_writable, save_results
from .run import forkserver, pool
from .run.guards import (MAX_PROCESSES_PER_CORE, MEMORY_SHARE, available_memory, check_reachable,
                         check_thread_count)
from .run.procs import Interrupted, WorkerError

# Nothing above imports torch: `costtrain run` starts the fork server first (for the methods
# with workers), so that its imports overlap the parent's own import of torch and the data.

METHODS = METHOD_NAMES
# How the trainers' keyword arguments appear on the command line where the names differ.
API_TO_CLI = {"net": "model", "data": "dataset", "data_root": "data_dir",
              "progress": "no_progress"}
NOT_ON_CLI: tuple[str, ...] = ("on_progress",)  # callbacks: Python only (the notebooks' live plot)
SUBCOMMANDS = (  # name, help: each module has add_arguments(parser) and run_cli(args)
    ("advise", "recommend the fastest/cheapest method for this machine from short probes"),
    ("notebooks", "run the notebooks headless (papermill); --reference: the committed copies"),
    ("class", "a class's results: 'collect DIR' merges the files students hand in into one "
              "table and figure"),
    ("student", "write the students' copies of the notebooks (no outputs) into a folder; "
                "copies a student edited are kept unless --force"),
    ("torchrun", "start this machine's ranks of a parameter-server or local-SGD run across "
                 "machines (torchrun, with --timeout as its rendezvous timeout and one-sentence "
                 "errors)"),
)
EXIT_OK, EXIT_INPUT, EXIT_FAILED, EXIT_DIVERGED, EXIT_UNWRITABLE = 0, 2, 3, 4, 5
EXIT_HUNG_UP, EXIT_INTERRUPTED, EXIT_TERMINATED = 129, 130, 143
EXIT_CODES = {EXIT_OK: "ok", EXIT_INPUT: "bad input or setting, or the system refused the "
                                         "resources (files, processes, memory) a run needs; "
                                         "refused before training",
              EXIT_FAILED: "a worker failed or got stuck, or memory ran out after training "
                           "began; partial result kept",
              EXIT_DIVERGED: "the run diverged (the loss became nan/inf or rose above 10x its "
                             "start, or the accuracy stayed at chance)", EXIT_UNWRITABLE:
              "an output could not be written; results in a fallback file",
              EXIT_HUNG_UP: "hung up (SIGHUP)", EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
              EXIT_TERMINATED: "terminated (SIGTERM)"}
STOP_SIGNALS = tuple(getattr(signal, s) for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s))
PRESTART_BYTES = 512 * 2**20  # a process that imported torch, for the early start's memory check


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, turned into an exception so that every worker hands in and is reaped.

    ``timeout``, systemd and Slurm send SIGTERM, a closed terminal SIGHUP, to the whole process
    group; the workers ignore both and wait for this process to ask them.
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.signum = signum
        self.what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "hung up (SIGHUP)"

    @property
    def code(self) -> int:
        return 128 + self.signum


class RunFailed(Exception):
    """A failure after training began; carries what was measured and the exit code."""

    def __init__(self, message: str, results: list[RunResult], code: int) -> None:
        super().__init__(message)
        self.results, self.code = results, code


class Stdout:
    """What the CLI prints for the user on stdout: a closed pipe (``| head -1``), a full disk
    (``> /dev/full``) or a terminal that went away is noted once, never fatal: the results are
    saved before they are printed, and the run ends with its own exit code (5 when the results
    had nowhere else to go: they are then in a fallback file the message names)."""

    lost: str | None = None  # why stdout could not be written, once it could not

    @classmethod
    def say(cls, *parts: object, flush: bool = True) -> None:
        if cls.lost is not None:
            return
        try:
            print(*parts, flush=flush)
        except OSError as exc:  # EPIPE, ENOSPC, EIO
            cls.lost = exc.strerror or str(exc) or type(exc).__name__
            with contextlib.suppress(OSError, ValueError):  # no second error at exit either
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)


def _say(*parts: object) -> None:
    Stdout.say(*parts)


def _tell(line: str) -> None:
    """One line for the user on stderr (never an error of its own if stderr is gone)."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _subcommand(name: str):
    """The module of subcommand `name`, imported only when it is used (``advise`` loads torch)."""
    if name == "advise":
        from .advice import advise
        return advise
    if name == "class":
        from .course import classroom
        return classroom
    if name == "student":
        from .course import student
        return student
    if name == "torchrun":
        from . import torchrun
        return torchrun
    from .course import notebooks
    return notebooks


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the subcommand named there gets its module imported."""
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
    cmp_.add_argument("--figures", default="results/figures",
                      help="folder for the figures: compare_losses.png, "
                           "compare_accuracy_vs_time.png, compare_cost.png (default: "
                           "%(default)s; '' for none)")
    cmp_.add_argument("--target-accuracy", type=positive_float, default=None,
                      help="report time and cost to this test accuracy (percent, e.g. 75, or a "
                           "fraction); turns on periodic evaluation")
    add_repeats_arg(cmp_)
    add_data_args(cmp_)
    add_optim_args(cmp_, full=False)
    add_output_args(cmp_)

    for name, text in SUBCOMMANDS:
        sp = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        if argv is None or name in argv:
            module = _subcommand(name)
            module.add_arguments(sp)
            sp.set_defaults(handler=module.run_cli)
    return parser


def _load(args):
    from .data.datasets import SPARSE, load_dataset
    from .utils import CosttrainError
    sparse = dict(features=args.sparse_features, k=args.sparse_k)
    if args.dataset != SPARSE:
        given = [f"--sparse-{k}" for k, v in sparse.items() if v is not None]
        if given:
            raise CosttrainError(f"{', '.join(given)}: only for --dataset {SPARSE}.")
        sparse = {}
    ds = load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed,
                      download=args.download, **sparse)
    what = "samples" if ds.features is not None else "images"
    _say(f"data: {ds.name}, {len(ds.train_y):,} training / {len(ds.test_y):,} test {what} "
         f"from {ds.source}")
    if args.data_dir and not Path(ds.source).resolve().is_relative_to(Path(args.data_dir).resolve()):
        _warn(f"no {ds.name} files in --data-dir {args.data_dir}; used the copy in {ds.source}")
    return ds


def _optimizer(args: argparse.Namespace):
    """None for SGD (the trainer picks lr and momentum for the model), else the factory."""
    from .train.engine import make_optimizer
    from .utils import CosttrainError
    if args.optimizer == "sgd":
        return None
    if args.model == "sparse-linear":
        raise CosttrainError(f"--optimizer {args.optimizer}: sparse-linear has sparse gradients; "
                             "train it with --optimizer sgd (momentum 0).")
    return make_optimizer(args.optimizer, 0.01 if args.lr is None else args.lr, 0.0)


def run_kwargs(args: argparse.Namespace) -> dict:
    """The trainer keyword arguments of ``costtrain run`` for ``args.method``."""
    from .utils import CosttrainError
    common = dict(batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                  seed=args.seed, device=args.device, eval_every=args.eval_every,
                  log_every=args.log_every, progress=not args.no_progress, threads=args.threads)
    row = methods.get(args.method)
    own = row.cli_kwargs(args)
    if args.threads:  # refused before torch is imported (the trainers check it again)
        check_thread_count(own.get("processes") or own.get("workers", 0)
                           + bool(row.also_starts) or 1, args.threads)
    if own.get("addr"):  # the ranks' rendezvous: no usable loopback is one sentence, at once
        check_reachable(own["addr"])
    if args.optimizer != "sgd" and row.sgd_only:
        raise CosttrainError(f"--optimizer {args.optimizer}: --method {args.method} steps with "
                             "SGD (--lr, --momentum); use --optimizer sgd.")
    levers = {k: getattr(args, k) for k in LEVER_OPTIONS}
    if row.levers:
        return dict(common, **row.cli_kwargs(args), optimizer=_optimizer(args), **levers)
    given = [f"--{k.replace('_', '-')}" for k, v in levers.items() if v]
    if given:
        with_levers = " and ".join(m.name for m in methods.METHODS.values() if m.levers)
        raise CosttrainError(
            f"{', '.join(given)}: the levers apply to --method {with_levers}. The "
            f"{row.title.removeprefix('the ')} ranks run without "
            "them (the parameter server scales its lr by the workers with --scale-lr); measure "
            "the levers on one process first (notebook 01b).")
    kw = dict(common, **row.cli_kwargs(args))
    if not row.sgd_only:
        kw["optimizer"] = _optimizer(args)
    return kw


def cmd_run(args) -> list[RunResult]:
    kwargs = run_kwargs(args)
    ds = _load(args)
    return [methods.get(args.method).load()(args.model, ds, **kwargs)]


def _compare_labels(args) -> None:
    """Refuse ``--only`` patterns that match no configuration (before loading anything)."""
    from .advice.compare import comparison_plan
    labels = [label for label, _, _ in comparison_plan(args.total_epochs)]
    if args.only and not any(label.startswith(o) for o in args.only for label in labels):
        raise CosttrainError(f"--only {' '.join(map(repr, args.only))} matches no "
                             f"configuration; the labels are: {', '.join(labels)}.")


def cmd_compare(args, done: list[RunResult]) -> tuple[list[RunResult], Callable[[], None]]:
    """``costtrain compare``: the results and what prints them (after they are saved). Each
    finished run is appended to `done` as it comes, saved to ``--out`` with the runs before it
    (so a run killed later keeps them) and summed up on stdout."""
    from .advice.compare import run_comparison
    from .advice.report import summary
    _compare_labels(args)
    ds = _load(args)
    eval_every = args.eval_every
    if args.target_accuracy and not eval_every:
        eval_every = max(1000, len(ds.train_y) // 4)  # four evaluations per epoch of work

    def on_result(r: RunResult) -> None:
        done.append(r)
        if args.out:  # saved before it is printed; the final save reports any problem
            with contextlib.suppress(OSError, CosttrainError):
                save_results(done, args.out)
        _say(summary(r))
    results = run_comparison(ds, model=args.model, total_epochs=args.total_epochs,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             eval_every=eval_every, progress=not args.no_progress,
                             only=args.only, target_accuracy=args.target_accuracy,
                             on_result=on_result, repeats=args.repeats)

    def report() -> None:
        from .advice.compare import verdicts
        from .advice.cost import as_fraction, cost_table
        from .advice.report import repeats_table
        _say()
        _say(cost_table(results))
        if args.repeats > 1:
            _say()
            _say(repeats_table(results))
        for line in verdicts(results, target=bool(args.target_accuracy)):
            _say(line)
        if args.figures:
            from .advice.plots import plot_accuracy_vs_time, plot_cost_to_target, plot_losses
            folder = Path(args.figures)
            try:
                paths = [plot_losses(results, folder / "compare_losses.png", x="samples",
                                     title=f"Training loss, {ds.name}, same total work"),
                         plot_accuracy_vs_time(results, folder / "compare_accuracy_vs_time.png",
                                               target=as_fraction(args.target_accuracy))]
                if args.target_accuracy:
                    paths.append(plot_cost_to_target(results, folder / "compare_cost.png"))
            except OSError as exc:
                raise RunFailed(f"--figures {args.figures}: cannot write the figures "
                                f"({exc.strerror or exc})", results, EXIT_UNWRITABLE) from None
            _say("figures: " + ", ".join(str(p) for p in paths))
        from .advice.report import results_table
        _say()
        _say(results_table(results))
    return results, report


def start_workers_early(argv: Sequence[str]) -> None:
    """``run`` with a method whose row asks to ``prestart`` its processes (Hogwild! on the
    CPU, the parameter server, local SGD): start the fork server now (no torch needed) and its
    workers as soon as it is ready, so that they start while this process imports torch and
    loads the data; where workers are spawned, spawn them now instead (one per core at most).
    ``compare``: start the fork server now (its configurations start their own workers)."""
    if not argv or argv[0] not in ("run", "compare") or "-h" in argv or "--help" in argv:
        return
    try:
        forked = forkserver.start_method() == "forkserver"
    except CosttrainError:
        return  # the trainer says what is wrong with the setting
    if argv[0] == "compare":
        if forked and available_memory()[0] * MEMORY_SHARE >= PRESTART_BYTES:
            pool.start_server()
        return
    p = _QuietParser(add_help=False)
    add_run_args(p)
    try:
        args, _ = p.parse_known_args(argv[1:])
    except argparse.ArgumentError:
        return  # the real parser reports it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = methods.get(args.method).prestart(args)
    if n > MAX_PROCESSES_PER_CORE * (cores or 1) or not _processes_to_spare(n + 2):
        return  # refused by the trainer, or a tight process limit it explains: start nothing
    starting = 1 if forked else n  # the fork server alone, or every worker
    # more than one worker per core, or too little memory (a container's limit): the trainer
    # checks first and explains
    if 0 < n and (forked or n <= (cores or 1)) \
            and available_memory()[0] * MEMORY_SHARE >= starting * PRESTART_BYTES:
        pool.prestart(n)


def _processes_to_spare(needed: int, margin: int = 64) -> bool:
    """Whether the process limit (``ulimit -u``) leaves room for `needed` more processes with a
    wide margin (the limit counts every process of the user; True where unknown)."""
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    except (ImportError, AttributeError, ValueError, OSError):
        return True
    return soft == resource.RLIM_INFINITY or soft >= needed + margin


class _QuietParser(argparse.ArgumentParser):
    """A parser that raises instead of printing usage and exiting."""

    def error(self, message: str):
        raise argparse.ArgumentError(None, message)



def check_outputs(args) -> None:
    """Before any work: ``--out`` is (or can become) a regular file, ``--figures`` a folder."""
    if getattr(args, "out", None):
        check_writable(args.out, "--out")
    if getattr(args, "figures", None):
        check_folder_writable(args.figures, "--figures")


def _stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def fallback_path() -> Path:
    """A new file for results when ``--out`` cannot be written (or was not given after a failure).

    ``costtrain-results-<time>.json`` in the working directory (else the temporary folder),
    ``-2``, ``-3``, ... when taken: the name is reserved by creating the file (``O_EXCL``), so
    two failures in the same second never write the same file.
    """
    stamp = _stamp()
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        for n in range(1, 1000):
            path = folder / f"costtrain-results-{stamp}{f'-{n}' if n > 1 else ''}.json"
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                return path
            except FileExistsError:
                continue
            except OSError:
                break  # not writable: the next folder
    return Path(tempfile.gettempdir()) / f"costtrain-results-{stamp}-{os.getpid()}.json"


def save(results: list[RunResult], out: str | None, *, failed: bool) -> tuple[Path | None, str]:
    """Save to `out`, else (after a failure, or if `out` fails) to a fallback file.

    Returns the path written (None if nothing was) and a note for the message.
    """
    if not results or (not out and not failed):
        return None, ""
    problem = ""
    if out:
        try:
            return save_results(results, out), ""
        except (OSError, CosttrainError) as exc:
            problem = f"--out {out} could not be written ({getattr(exc, 'strerror', None) or exc})"
    path = fallback_path()
    try:
        save_results(results, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:
                path.unlink()  # the empty file that reserved the name
        return None, f"{problem}; nor could {path} ({exc.strerror}): nothing was saved".lstrip("; ")
    return path, problem


def _warn(message: str) -> None:
    _tell(f"costtrain: warning: {message}")


def _one_line_warnings() -> None:
    """Show warnings as ``costtrain: warning: ...`` without the line of source code."""
    def show(message, category, filename, lineno, file=None, line=None):
        _warn(str(message))
    warnings.showwarning = show


def _on_stop_signal(signum, frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while the block runs; raise the first one after it.

    For imports whose interruption corrupts the process: torch's C initialisation imports
    numpy and swallows any exception raised inside that import (the signal is lost, or numpy
    is left half imported and fails later with a traceback); and a Ctrl-C that lands while
    torch's C++ initialisation runs Python code ends the process with C++'s ``terminate``
    (SIGABRT), or leaves CPython set to kill it with SIGINT at exit (status -2, not 130).
    numpy, then torch, are imported here whole (a second or two; the signal is answered
    right after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    sigs = (signal.SIGINT, *STOP_SIGNALS)
    old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if pending:
        raise _early_signal(pending[0])


def _interrupt_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return exc.code if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def _hold_signals() -> None:
    """While the results are saved and the message printed: no more interrupts."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, *STOP_SIGNALS):
            signal.signal(sig, signal.SIG_IGN)


def _status_code(results: list[RunResult]) -> tuple[int, str]:
    """Exit code and message for results that finished but did not end well."""
    from .train.engine import DIVERGED
    bad = [r for r in results if r.status == DIVERGED]
    if bad:
        return EXIT_DIVERGED, f"{bad[0].label}: {bad[0].error}"
    return EXIT_OK, ""


def _execute(args, done: list[RunResult]) -> tuple[list[RunResult], Callable[[], None]]:
    """Run ``run`` or ``compare``: the results, and what prints them (called after they are
    saved); raise :class:`RunFailed` for failures after training began."""
    try:
        with _signals_deferred():  # each whole: numpy before torch's C initialisation
            import numpy  # noqa: F401
            import torch  # noqa: F401
        if args.command == "run":
            results = cmd_run(args)
            done.extend(results)  # a signal from now on still saves the finished run

            def report() -> None:
                from .advice.report import results_table, summary
                for r in results:
                    _say(summary(r))
                _say()
                _say(results_table(results))
            return results, report
        return cmd_compare(args, done)
    except (WorkerError, Interrupted) as exc:  # failed, stuck or Ctrl-C: keep what was measured
        kept = done + ([exc.result] if exc.result is not None else [])
        code = (EXIT_FAILED if isinstance(exc, WorkerError) else _interrupt_code(exc.cause))
        message = str(exc).split("\n")[0].rstrip(".")
        raised = (getattr(exc, "details", "") or "").strip().splitlines()
        if raised and raised[-1] not in message:  # the worker's exception, in one line
            message += f" ({raised[-1]})"
        raise RunFailed(message, kept, code) from None


def _saved(note: str, path: Path | None, problem: str) -> str:
    """The end of a failure message: where the results are (or why nowhere)."""
    if path is None:
        return f"; {problem}" if problem else ""
    return f"; {problem}; {note} saved to {path} instead" if problem else f"; {note} saved to {path}"


def _finish(args, results: list[RunResult], report: Callable[[], None]) -> int:
    """Save finished results (to --out, else after a failure a fallback file), then print
    them, and pick the exit code. Nothing computed is lost to the terminal: a closed or full
    stdout leaves the results in --out (a warning), or in a fallback file (exit 5)."""
    code, message = _status_code(results)
    path, problem = save(results, getattr(args, "out", None), failed=False)
    if problem:
        where = f"; the results were saved to {path} instead" if path is not None else ""
        _tell(f"costtrain: error: {problem}{where}")
        code, message = EXIT_UNWRITABLE, ""
    report()
    if path is not None:
        _say(f"results: {path}")
    if Stdout.lost is not None:
        lost = f"stdout could not be written ({Stdout.lost}), so the summary was not shown"
        if path is None:  # nowhere else: a fallback file, and the exit code says so
            path, trouble = save(results, None, failed=True)
            _tell(f"costtrain: error: {lost}{_saved('the results were', path, trouble)}")
            return EXIT_UNWRITABLE
        if not problem:
            _tell(f"costtrain: warning: {lost}; the results are in {path}")
    if message:
        _tell(f"costtrain: error: {message}")
    return code


def _early_signal(signum: int) -> BaseException:
    """The exception a signal received before the command began stands for."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def main(argv: Sequence[str] | None = None, held: Sequence[int] | None = None) -> int:
    """``costtrain ...``: returns the exit code (:data:`EXIT_CODES`). `held`: stop signals
    that arrived before this was called (default: :data:`costtrain.HELD_SIGNALS`, where the
    command line holds them while it imports), answered as if they came now."""
    argv = sys.argv[1:] if argv is None else list(argv)
    done: list[RunResult] = []
    args = None
    Stdout.lost = None
    old_show = warnings.showwarning
    old_handlers = {}
    _one_line_warnings()
    if threading.current_thread() is threading.main_thread():  # first: a signal at any moment
        old_handlers = {sig: signal.signal(sig, _on_stop_signal) for sig in STOP_SIGNALS}
        old_handlers[signal.SIGINT] = signal.getsignal(signal.SIGINT)
        if old_handlers[signal.SIGINT] is not signal.SIG_IGN:  # (a background job's stays)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if held is None:  # what the command line held while it started: answered once, here
        held, HELD_SIGNALS[:] = list(HELD_SIGNALS), []
    try:
        if held:
            raise _early_signal(held[0])
        start_workers_early(argv)
        with _signals_deferred():  # a subcommand's module may import torch (advise does)
            parser = build_parser(argv)
        args = parser.parse_args(argv)
        check_outputs(args)
        if args.command not in ("run", "compare"):
            try:
                code = args.handler(args)
            except BrokenPipeError:  # `| head`: what it wrote to files is written first
                Stdout.say()  # notes it, and points stdout at /dev/null for the exit
                code = EXIT_OK
            return code if isinstance(code, int) else EXIT_OK
        results, report = _execute(args, done)
        _hold_signals()
        return _finish(args, results, report)
    except CosttrainError as exc:
        _hold_signals()
        _tell(f"costtrain: error: {exc}")
        return getattr(exc, "code", EXIT_INPUT)  # costtrain torchrun: its ranks' code
    except RunFailed as exc:
        _hold_signals()
        path, problem = save(exc.results, getattr(args, "out", None), failed=True)
        note = ("the results so far were" if exc.code not in (EXIT_DIVERGED, EXIT_UNWRITABLE)
                else "the results were")
        _tell(f"costtrain: error: {exc}{_saved(note, path, problem)}")
        return exc.code
    except KeyboardInterrupt as exc:  # outside any training loop: keep the finished runs
        _hold_signals()
        path, problem = save(done, getattr(args, "out", None), failed=True)
        what = exc.what if isinstance(exc, Terminated) else "interrupted"
        _tell(f"costtrain: {what}; every worker was stopped"
              f"{_saved('the finished runs were', path, problem)}")
        return _interrupt_code(exc)
    except (OSError, MemoryError, ImportError, RuntimeError) as exc:  # the system ran out
        doing = f"costtrain {args.command} was running" if args else "costtrain was starting"
        error = ResourceError.describe(exc, doing)
        if error is None:
            raise
        _hold_signals()
        path, problem = save(done, getattr(args, "out", None), failed=True)
        _tell(f"costtrain: error: {error}{_saved('the finished runs were', path, problem)}")
        return EXIT_INPUT
    finally:
        warnings.showwarning = old_show
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
