"""The guards: checks made before any worker process starts, and the rules every method applies.

This is the one place for them; every method calls these functions rather than its own copy:

* **worker counts and memory** (:func:`check_processes`): at most 4 processes per core, and no
  more than the free memory carries, where "free" is the host's available memory or, in a
  container or CI runner, what the memory cgroup's limit leaves (:func:`cgroup_memory`: v2
  ``memory.max``, v1 ``memory.limit_in_bytes``), named in the refusal;
* **shared memory** (:func:`check_shared_memory`): torch shares a model's parameters with the
  workers through ``/dev/shm`` (64 MB in a default Docker container); the data goes elsewhere
  (:mod:`costtrain.run.shared`);
* **threads** (:func:`check_threads`) and **plans** (:func:`check_plan`);
* **exposure and reach**: a rendezvous address beyond loopback is warned
  (:func:`warn_if_exposed`), one this machine cannot talk over is refused
  (:func:`check_reachable`);
* **divergence**, three rules, the same for every method: a loss that is not a finite number
  (:func:`diverged`) or a logged mean loss more than 10x its start (:func:`loss_exploded`)
  stops a run; a run that ends at chance accuracy after 2,000 samples (:func:`judge`) is
  diverged too; its status is then ``diverged`` (:func:`mark_diverged`);
* **spawn safety** (:func:`check_shareable`, :func:`check_optimizer`, :func:`check_device`) and
  the one-batch dry run every trainer makes through :func:`costtrain.train.engine.prepare`
  (:func:`check_data_and_model`).

Importing this module does not import torch: the command line checks memory before it starts
anything.
"""
from __future__ import annotations

import io
import ipaddress
import math
import os
import pickle
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import psutil

from ..errors import ResourceError
from ..utils import CosttrainError, num_cores, resolve_device, threads_per_process, whole

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from ..result import RunResult

MAX_PROCESSES_PER_CORE = 4
MEMORY_SHARE = 0.8  # plan worker processes to use at most this share of the free memory
UNLIMITED = 2 ** 60  # cgroup v1 writes "no limit" as a huge number (9223372036854771712)
SHM = Path("/dev/shm")  # where torch shares tensors (POSIX shared memory) on Linux
SHM_RESERVE = 2 ** 20  # semaphores, multiprocessing's small shared values, page rounding
DIVERGED = "diverged"  # RunResult.status of a run that diverged (the three rules below)
DIVERGENCE_FACTOR = 10  # a logged mean loss more than this x its start: diverged
CHANCE_AFTER = 2_000  # samples trained before accuracy at chance counts as diverged
CHANCE_MARGIN = 0.02  # "at chance": test accuracy within this of 1 / classes


class CosttrainWarning(UserWarning):
    """A setting that works but costs time (e.g. more threads than cores)."""


def warn(message: str, stacklevel: int = 3) -> None:
    """Warn the user (the CLI prints these as one line, without a line of source code)."""
    warnings.warn(message, CosttrainWarning, stacklevel=stacklevel)


def check_thread_count(processes: int, threads: int) -> None:
    """Refuse more than :data:`MAX_PROCESSES_PER_CORE` threads per core in one process: they
    only thrash (measured: 64 threads on 2 cores trained 200x slower than 2). The command line
    calls this before it imports torch."""
    cores = num_cores()
    if threads > MAX_PROCESSES_PER_CORE * cores:
        raise CosttrainError(
            f"threads={threads} on {cores} core(s): more than {MAX_PROCESSES_PER_CORE} threads "
            "per core only makes them wait for each other (a run can slow down by orders of "
            f"magnitude); use threads <= {threads_per_process(processes, cores)} (the default "
            "for this run).")


def check_threads(processes: int, threads: int, *, also: str = "", stacklevel: int = 3) -> None:
    """Warn when `processes` x `threads` intra-op threads oversubscribe the cores, with the
    fix that applies (fewer processes when each already has one thread); refuse a thread
    count more than :data:`MAX_PROCESSES_PER_CORE` x the cores, which only thrashes.

    `processes` counts every process the method starts (`also` says what besides the
    workers, e.g. "the server", one process), each running `threads` threads. Where only that
    one process is too many, the warning says the workers fit and that a measurement decides."""
    cores = num_cores()
    check_thread_count(processes, threads)
    if processes * threads <= cores:
        return
    who = (f"{processes} processes ({also} included)" if also else f"{processes} processes")
    what = (f"{threads} thread(s)" if processes == 1
            else f"{who} x {threads} thread(s) = {processes * threads} threads")
    if threads > threads_per_process(processes, cores):
        fix = (f"use threads <= {threads_per_process(processes, cores)} (the default for "
               f"{processes} process{'es' if processes > 1 else ''})")
    elif also and (processes - 1) * threads <= cores:  # the workers alone fit the cores
        fix = (f"the workers alone fit the cores; {also} works only while it answers them, so "
               "whether it slows them is a measurement, not a rule (notebook 02 compares worker "
               f"counts on this machine): if it does, use {processes - 2} worker(s)")
    else:  # one thread each already: the processes outnumber the cores
        fix = (f"each already has 1 thread, so it is the processes that outnumber the "
               f"cores: use at most {cores} processes in all"
               + (f" ({also} included)" if also else ""))
    warn(f"{what} on {cores} core(s): they take turns on the cores, and training slows down "
         f"(how much on this machine: notebook 03's oversubscription section); {fix}.",
         stacklevel=stacklevel + 1)


def worker_footprint() -> int:
    """Bytes one worker process will need, measured as this process's own memory (USS).

    This process holds what a worker holds (torch, the model, the data), so it is an upper
    bound: the data itself is shared with the workers.
    """
    proc = psutil.Process()
    try:
        return int(proc.memory_full_info().uss)
    except (psutil.AccessDenied, AttributeError):
        return int(proc.memory_info().rss)


@dataclass(frozen=True)
class MemoryLimit:
    """A memory cgroup's limit on this process: bytes allowed, bytes still free, and its file."""

    limit: int
    free: int
    source: str


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # v2 writes "max" for no limit


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except (OSError, UnicodeDecodeError):
        pass
    return 0


def _cgroup_folders(root: Path, proc_cgroup: Path) -> list[tuple[Path, bool]]:
    """(folder, is v2) of this process's memory cgroup and its ancestors, plus the mount roots.

    A container usually sees its own cgroup at the mount root; on a host (or a container
    sharing the host's cgroup namespace) ``/proc/self/cgroup`` names the path below it.
    """
    found: list[tuple[Path, bool]] = [(root, True), (root / "memory", False)]
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        v2 = controllers == ""
        if not v2 and "memory" not in controllers.split(","):
            continue
        base = root if v2 else root / "memory"
        folder = base / path.strip("/")
        while folder != base and base in folder.parents:
            found.append((folder, v2))
            folder = folder.parent
    return list(dict.fromkeys(found))


def cgroup_memory(root: str | Path = "/sys/fs/cgroup",
                  proc_cgroup: str | Path = "/proc/self/cgroup") -> MemoryLimit | None:
    """The memory cgroup limit that binds this process (a container, a CI runner), or None.

    Reads cgroup v2 (``memory.max``, ``memory.current``) and v1 (``memory.limit_in_bytes``,
    ``memory.usage_in_bytes``) under `root`, for this process's cgroup and its ancestors, and
    returns the one with the least free memory. Free = limit - usage + the inactive page cache
    (``inactive_file``), which the kernel reclaims before it kills anything.
    """
    root, limits = Path(root), []
    for folder, v2 in _cgroup_folders(root, Path(proc_cgroup)):
        name = "memory.max" if v2 else "memory.limit_in_bytes"
        limit = _read_int(folder / name)
        if limit is None or limit >= UNLIMITED:
            continue
        usage = _read_int(folder / ("memory.current" if v2 else "memory.usage_in_bytes")) or 0
        cache = _stat(folder / "memory.stat", "inactive_file" if v2 else "total_inactive_file")
        limits.append(MemoryLimit(limit, max(0, limit - usage + cache), str(folder / name)))
    return min(limits, key=lambda m: m.free, default=None)


def available_memory() -> tuple[int, MemoryLimit | None]:
    """Bytes free for new processes, and the cgroup limit when that is what binds."""
    host = psutil.virtual_memory().available
    limit = cgroup_memory()
    if limit is not None and limit.free < host:
        return limit.free, limit
    return host, None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_processes(processes: int, what: str = "processes", *,
                    footprint: int | None = None) -> None:
    """Refuse more worker processes than the cores (x4) or the free memory can carry.

    Free memory is the host's, or what a memory cgroup's limit leaves (a container, a CI
    runner), whichever is less; the refusal names the cgroup's limit and file.
    """
    cores = num_cores()
    if processes > MAX_PROCESSES_PER_CORE * cores:
        raise CosttrainError(
            f"{processes} {what} on {cores} core(s) is more than is sensible: each process "
            f"only adds start-up time and memory; use at most {MAX_PROCESSES_PER_CORE * cores} "
            f"(ideally <= {cores}).")
    footprint = worker_footprint() if footprint is None else footprint
    free, limit = available_memory()
    fit = int(free * MEMORY_SHARE // max(1, footprint))
    if processes > fit:
        where = (f"{_gib(free)} is free" if limit is None else
                 f"this process's memory cgroup (a container or CI limit) allows "
                 f"{_gib(limit.limit)} ({limit.source}), of which {_gib(free)} is free")
        more = "" if limit is None else " or raise the limit (e.g. docker run --memory=4g)"
        raise CosttrainError(
            f"{processes} {what} would need about {_gib(processes * footprint)} "
            f"({footprint / 2**20:.0f} MiB each, measured on this process) but {where}: at "
            f"most {fit} fit; use fewer{more}.")


def shared_memory_free(path: str | Path = SHM) -> int | None:
    """Bytes free in the shared-memory folder (None where there is none, e.g. macOS)."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def check_shared_memory(model: nn.Module, *, data_bytes: int = 0, path: str | Path = SHM,
                        free: int | None = None) -> None:
    """Refuse before spawning when the model (and `data_bytes` of data torch would share)
    does not fit in ``/dev/shm``, where torch shares tensors with the worker processes."""
    free = shared_memory_free(path) if free is None else free
    if free is None:
        return
    page = 4096
    need = SHM_RESERVE + data_bytes + sum(-(-t.numel() * t.element_size() // page) * page
                                          for t in (*model.parameters(), *model.buffers()))
    if need > free:
        raise CosttrainError(
            f"the worker processes share the model through {path}, which needs "
            f"{need / 2**20:.0f} MB but only {free / 2**20:.0f} MB is free there (Docker gives a "
            "container 64 MB unless told otherwise): start the container with "
            "--shm-size=1g (docker run) or shm_size: 1gb (compose), or free space in "
            f"{path}; a smaller model{' or --subset' if data_bytes else ''} needs less.")


def is_loopback(addr: str) -> bool:
    """True when `addr` (an address or a host name) is this machine's loopback."""
    try:
        return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback
                   for info in socket.getaddrinfo(addr, None))
    except (socket.gaierror, ValueError):
        return False


def check_reachable(addr: str, timeout: float = 2.0) -> None:
    """Refuse, in a second, an address the ranks of a run on this machine could not talk over:
    listen on a free port of `addr` and connect to it. Without a usable loopback (a container
    started with ``--network none``, ``unshare -n``) binding still works, but every connection
    fails, and torch would retry for its whole timeout before a traceback."""
    try:
        server = socket.create_server((addr, 0))
    except socket.gaierror as exc:
        raise CosttrainError(f"cannot resolve address {addr!r}: {exc.strerror}.") from None
    except OSError as exc:  # not an address of this machine
        raise CosttrainError(f"cannot listen on {addr!r}: {exc.strerror}; give an address of "
                             "this machine (default 127.0.0.1).") from None
    try:
        with server:
            port = server.getsockname()[1]
            target = "127.0.0.1" if addr in ("0.0.0.0", "") else "::1" if addr == "::" else addr
            with socket.create_connection((target, port), timeout=timeout):
                pass
    except OSError as exc:
        what = "the loopback interface" if is_loopback(addr) else f"the interface of {addr}"
        raise CosttrainError(
            f"{addr} is not reachable on this machine ({exc.strerror or exc}): the parameter "
            f"server and local SGD talk between their processes over {what}, which is down or "
            "missing (a container started with --network none, `unshare -n`). Bring it up "
            "(`ip link set lo up`), run the container with a network, or use --method baseline "
            "or hogwild, which need none.") from None


def warn_if_exposed(addr: str) -> None:
    """Binding beyond loopback is a decision: say what it exposes."""
    if not is_loopback(addr):
        warn(f"--addr {addr} is not a loopback address: the rendezvous store and the gloo "
             "connections (model parameters, gradients, control messages) are "
             "unauthenticated and unencrypted and reachable by anyone who can reach this "
             "machine on that network; anyone there can read the model, join the run, feed "
             "it made-up gradients or parameters, or stop it (see docs/parameter-server.md, "
             "Security). Use it only on a private network or behind a firewall that admits only "
             "your machines.", stacklevel=4)


def check_data_and_model(model: nn.Module, ds: Any) -> None:
    """Before any training: samples exist, labels lie in [0, classes), and a one-batch dry run
    of `model` (in the parent, no gradient, train/eval mode restored) gives one score per class.
    """
    import torch
    if len(ds.train_y) == 0:
        raise CosttrainError(f"dataset {ds.name!r} has no training samples: nothing to train "
                             "on. Check the data folder and --subset.")
    k = ds.num_classes
    for split, y in (("training", ds.train_y), ("test", ds.test_y)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
            raise CosttrainError(
                f"{split} labels of {ds.name!r} lie in [{int(y.min())}, {int(y.max())}] but the "
                f"dataset has {k} classes: labels must be 0..{k - 1}. Fix the labels or the "
                "class list.")
    param = next(model.parameters(), None)
    x = ds.train_x[:2].to(param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:  # a shape mismatch raises one of many types
        exhausted = ResourceError.describe(exc, "the one-batch dry run of the model")
        if exhausted is not None:  # out of memory is not a mismatch: name the limit
            raise exhausted from None
        raise CosttrainError(
            f"{type(model).__name__} cannot take a batch of {ds.name!r} inputs of shape "
            f"{tuple(x.shape[1:])}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
    if not (isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] == k):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CosttrainError(
            f"{type(model).__name__} outputs {shape} for a batch of {len(x)}, but {ds.name!r} "
            f"has {k} classes: the last layer must give ({len(x)}, {k}), one score per class.")


def diverged(value: float | torch.Tensor) -> bool:
    """The first divergence rule: a loss (or any entry of a tensor) that is not a finite
    number. Training loops check it after each step and stop (see :func:`loss_exploded` and
    :func:`judge` for the other two)."""
    import torch
    if isinstance(value, torch.Tensor):
        return not bool(torch.isfinite(value).all())
    return not math.isfinite(value)


def loss_floor(classes: int | None) -> float:
    """The loss of a net that knows nothing, ln(classes) (1.0 when the classes are unknown):
    the smallest start :func:`loss_exploded` measures a rise from."""
    return math.log(classes) if classes and classes > 1 else 1.0


def loss_exploded(loss: float, first: float | None, classes: int | None = None) -> bool:
    """The second rule, on each logged mean loss (every ``log_every`` batches, never a single
    noisy batch): not a finite number, or more than :data:`DIVERGENCE_FACTOR` times its start,
    ``max(first logged mean, ln(classes))``. Healthy runs measured never rose above their first
    logged mean; diverging ones (momentum 1.5, local SGD at lr 3) rose 30x to 10^13x."""
    if not math.isfinite(loss):
        return True
    return first is not None and loss > DIVERGENCE_FACTOR * max(first, loss_floor(classes))


def at_chance(accuracy: float, samples: int, classes: int | None,
              last_loss: float | None) -> bool:
    """The third rule, after the final evaluation: trained on at least :data:`CHANCE_AFTER`
    samples, the test accuracy is within :data:`CHANCE_MARGIN` of guessing (1 / classes) and
    the last logged loss is still that of a net that knows nothing (>= 0.9 ln(classes)): the
    run blew up and came back stuck (e.g. local SGD at lr 3 ends at 10.00 %, loss 2.37)."""
    if not classes or classes < 2 or samples < CHANCE_AFTER or not math.isfinite(accuracy):
        return False
    return (accuracy <= 1 / classes + CHANCE_MARGIN and last_loss is not None
            and last_loss >= 0.9 * math.log(classes))


def diverged_message(samples: int, lr: float | None = None, reason: str | None = None,
                     early: bool = True) -> str:
    """What to tell the user when a run diverged: `reason` (which rule, with its numbers),
    else the loss became nan/inf; `early`: the run was stopped before the end."""
    hint = f" (e.g. --lr {lr / 10:g})" if lr else ""
    what = reason or f"the training loss became nan/inf after {samples:,} samples"
    return (f"{what}: the run diverged{' and was stopped early' if early else ''}; try a "
            f"smaller learning rate{hint} or less momentum.")


def mark_diverged(result: RunResult, lr: float | None = None,
                  samples: int | None = None, reason: str | None = None,
                  early: bool = True) -> RunResult:
    """Set ``status='diverged'`` and the advice on `result` (the same words for every method)."""
    result.status = DIVERGED
    result.error = diverged_message(result.samples if samples is None else samples, lr, reason,
                                    early)
    return result


def judge(result: RunResult, classes: int | None, lr: float | None = None) -> RunResult:
    """After the final evaluation, every method: a run that ended ``ok`` but sits at chance
    (:func:`at_chance`) is ``diverged``."""
    losses = result.loss_curve.get("loss") or []
    if result.status == "ok" and at_chance(result.test_accuracy, result.samples, classes,
                                           losses[-1] if losses else None):
        mark_diverged(result, lr, reason=(
            f"the test accuracy is {100 * result.test_accuracy:.2f} %, chance for {classes} "
            f"classes, after {result.samples:,} samples (the last training loss "
            f"{losses[-1]:.3g}, about ln {classes} = {math.log(classes):.3g}: the net predicts "
            "nothing)"), early=False)
    return result


def check_plan(processes: int, epochs: int, threads: int | None, *, stacklevel: int = 3) -> int:
    """Validate processes/epochs/threads; return threads per process; warn on oversubscription."""
    whole(processes, "processes")
    whole(epochs, "epochs per process")
    check_processes(processes)
    threads = threads_per_process(processes, threads=threads)
    check_threads(processes, threads, stacklevel=stacklevel + 1)
    return threads


def check_device(device: str | torch.device) -> torch.device:
    """A device whose tensors can be shared between processes, or a clear error."""
    import torch
    dev = torch.device(device) if str(device).startswith("mps") else resolve_device(device)
    if dev.type == "mps":
        raise CosttrainError(
            "Hogwild! cannot run on Apple MPS: MPS tensors cannot be shared between processes "
            "(torch raises '_share_filename_: only available on CPU'), and Hogwild! needs every "
            "process to write into the same parameters. Use device='cpu' (Hogwild! on the "
            "CPU cores) or train on MPS in one process with costtrain.train_baseline(device='mps').")
    if dev.type == "cuda" and sys.platform == "win32":
        raise CosttrainError("Hogwild! on CUDA needs CUDA IPC, which PyTorch does not support on "
                             "Windows; use device='cpu' or Linux.")
    return dev


class _NoTensorPickler(pickle.Pickler):
    """Pickles everything but tensors: a cheap probe of what spawn will have to send."""

    def reducer_override(self, obj: Any) -> Any:
        import torch
        return (type(None), ()) if isinstance(obj, torch.Tensor) else NotImplemented


def _main_is_importable() -> bool:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)  # '<stdin>' for `python -`: not importable by spawn
    return bool(path and os.path.isfile(path)) or getattr(main, "__spec__", None) is not None


def check_shareable(model: nn.Module, what: str = "model") -> None:
    """Raise a clear error if `model` cannot be shared with spawned worker processes."""
    import torch
    import torch.nn as nn
    if not isinstance(model, nn.Module):
        raise CosttrainError(f"{what} must be a torch.nn.Module or a model name, "
                             f"got {type(model).__name__}.")
    if not any(p.requires_grad for p in model.parameters()):
        raise CosttrainError(f"{what} {type(model).__name__} has no trainable parameters.")
    for name, mod in model.named_modules():
        if type(mod).__module__ == "__main__" and not _main_is_importable():
            raise CosttrainError(
                f"{what} class {type(mod).__name__} is defined in this notebook or interactive "
                "session; worker processes start fresh (forked from the package's fork server, or "
                "spawned) and cannot import it. Move "
                "the class into a .py file next to the notebook and import it from there, or "
                "use a built-in model name ('simple', 'mlp', 'cnn').")
        for attr, val in vars(mod).items():
            if isinstance(val, torch.Tensor) and val.requires_grad and not val.is_leaf:
                where = f"{name}.{attr}" if name else attr
                raise CosttrainError(
                    f"{what} attribute {where!r} is a tensor computed with autograd (non-leaf, "
                    "requires_grad); it cannot be sent to worker processes. Compute it in "
                    "forward(), or register it with .detach() as a buffer.")
    try:
        _NoTensorPickler(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(model)
    except Exception as exc:  # pickling raises many types
        raise CosttrainError(
            f"{what} {type(model).__name__} cannot be sent to worker processes (spawn pickles "
            f"it): {exc}. Remove unpicklable state such as lambdas, hooks, open files or "
            "locks, and define the class at module level in an importable .py file.") from exc


def check_optimizer(factory: Callable, model: nn.Module) -> None:
    """The factory must be picklable and build an Optimizer from the model's parameters."""
    import torch
    try:
        pickle.dumps(factory)
    except Exception as exc:
        raise CosttrainError(
            f"the optimizer factory cannot be sent to worker processes ({exc}); use a "
            "module-level function or functools.partial(torch.optim.SGD, lr=0.01, momentum=0.5) "
            "instead of a lambda or a function defined in a notebook.") from exc
    opt = factory(list(model.parameters()))
    if not isinstance(opt, torch.optim.Optimizer):
        raise CosttrainError("optimizer must be a factory params -> torch.optim.Optimizer, "
                             f"but it returned {type(opt).__name__}.")
