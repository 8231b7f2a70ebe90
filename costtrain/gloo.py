"""The launcher and the process group the distributed trainers (parameter server, local SGD)
share: what a method states is its own config, rank loop and result; the rest is said here once.

* :func:`check_settings` and :func:`start` hold every check made before a process starts
  (settings, device, processes, threads, memory, an exposed ``--addr``), then load the data;
* :func:`launch` listens, runs the ranks (in the warm pool's workers: :func:`run_ranks`),
  keeps the partial result of a failed or interrupted run and turns a lost rank into the
  method's :class:`RankError`;
* :func:`listen` hosts the rendezvous store of a run launched on this machine;
* :func:`join_group` joins through that store, or through ``env://`` under torchrun;
* :func:`torchrun_env`, :func:`torchrun_rank` and :func:`torchrun_main` are the torchrun side.

Every wait has the caller's finite timeout. The transport is unauthenticated: loopback or a
trusted network only.
"""
from __future__ import annotations

import contextlib
import datetime
import inspect
import json
import os
import socket
import sys
import time
from typing import Any, Callable, Iterator

import psutil
import torch
import torch.distributed as dist
import torch.nn as nn

from . import pool, procs, shared
from .checks import (DIVERGED, check_processes, check_shareable, check_shared_memory,
                     check_threads, mark_diverged, warn_if_exposed)
from .engine import check_hparams, close_eval_curve, prepare, steady_rate
from .errors import CosttrainError, ResourceError, gist
from .result import RunResult, new_curve
from .utils import hardware_info, resolve_device, threads_per_process


class RankError(procs.WorkerError):
    """A distributed run failed; ``.result`` is the partial RunResult (status ``partial``)."""

    def __init__(self, message: str, rank: int, result: Any,
                 details: str = "", results: dict[int, Any] | None = None) -> None:
        super().__init__(message, rank, details, results)
        self.result = result


# --- the launcher on this machine ------------------------------------------------------------

def check_settings(workers: int, *, epochs: int = 1, batch_size: int = 64, lr: float = 0.01,
                   momentum: float = 0.0, eval_every: int | None = None, timeout: float = 60.0,
                   threads: int | None = None, **counts: int) -> None:
    """Raise a clear :class:`CosttrainError` for settings no distributed run can use.

    `counts` are the method's own whole numbers that must be >= 1 (e.g. ``average_every``).
    """
    for name, v in (("workers", workers), *counts.items()):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise CosttrainError(f"{name} must be an integer >= 1, got {v!r}.")
    check_hparams(epochs=epochs, batch_size=batch_size, lr=lr, eval_every=eval_every)
    if not momentum >= 0:
        raise CosttrainError(f"momentum must be >= 0, got {momentum!r}.")
    if not (timeout > 0 and timeout != float("inf")):
        raise CosttrainError(f"timeout must be a positive, finite number of seconds, got "
                             f"{timeout!r}.")
    if threads is not None and threads < 1:
        raise CosttrainError(f"threads must be >= 1, got {threads}.")


def start(what: str, net: nn.Module | str, data: Any, *, workers: int, processes: int,
          threads: int | None, device: str, addr: str, seed: int, subset: int | None,
          data_root: str | None) -> tuple[nn.Module, Any, float]:
    """The checks every distributed run makes in the parent before any process starts, then
    the model and the data: returns ``(model, dataset, t_start)``.

    `workers` processes train (they share the cores: the thread check counts them),
    `processes` are started in all (a parameter server's server is one more).
    """
    procs.check_main_guard()  # a rank re-running an unguarded script stops here
    if resolve_device(device).type != "cpu":
        raise CosttrainError(f"{what} runs on CPU processes (gloo); device {device!r} is not "
                             "supported here. Use device='cpu'.")
    if isinstance(net, nn.Module):
        check_shareable(net, "net")  # spawned ranks must be able to unpickle it
    check_processes(processes, f"{what} processes")  # cores and memory
    if threads is not None:
        check_threads(workers, threads, stacklevel=4)
    warn_if_exposed(addr)
    t_start = time.time()
    model, ds = prepare(net, data, seed=seed, subset=subset, data_root=data_root)
    if len(ds.train_y) < workers:
        raise CosttrainError(f"{workers} workers need at least {workers} training samples, "
                             f"got {len(ds.train_y)}.")
    return model, ds, t_start


Assemble = Callable[[dict[int, Any], "str | None", "list[int] | None"], Any]


def launch(what: str, run_rank: Callable[..., dict], cfg: Any, ds: Any, model: nn.Module,
           net: nn.Module | str, *, processes: int, addr: str, port: int | None,
           timeout: float, limits: procs.Limits, bar: Any,
           on_message: Callable[[int, str, Any], None], assemble: Assemble,
           error: type[RankError], rank0: str = "worker 0") -> Any:
    """Run ``run_rank(rank, cfg, ds, model, addr, port)`` in `processes` spawned ranks of a
    group whose store listens on addr:port (its own waits: `timeout`), supervised with the
    method's `limits`; return ``assemble(outs, None, None)``.

    ``assemble(results_by_rank, error, lost_ranks)`` builds the RunResult, also of a failed
    run (status ``partial``): an interrupt re-raises :class:`procs.Interrupted` with it in
    ``.result``; a lost rank, or a run whose result is not ``ok``, raises `error` with it in
    ``.result`` and the lost rank in ``.rank``. A user's `net` receives rank 0's parameters.
    `rank0` names rank 0 in errors (``the server``); `bar` is closed at the end.
    """
    tail = "What was measured so far is in .result (status 'partial')."
    startup: dict = {}
    try:
        share_with_ranks(model, ds)
        with listen(addr, port, timeout) as port_:
            outs = run_ranks(run_rank, (cfg, ds, model, addr, port_), processes, limits,
                             on_message, startup, {type(m) for m in model.modules()})
    except procs.Interrupted as exc:  # still a KeyboardInterrupt, now with the partial run
        exc.result = with_startup(assemble(exc.results, str(exc), None), startup)
        raise
    except procs.WorkerError as exc:
        reason = str(exc).split("\n")[0]
        partial = with_startup(
            assemble(exc.results, reason, [exc.rank] if exc.rank >= 0 else None), startup)
        role = rank0 if exc.rank == 0 else f"worker {exc.rank}"
        reason = reason.removeprefix(f"rank {exc.rank} ")
        if exc.details.strip():  # the exception it raised, e.g. "CosttrainError: ..."
            reason += f" [{exc.details.strip().splitlines()[-1]}]"
        raise error(f"{what} run failed: {role} (rank {exc.rank}) {reason} {tail}", exc.rank,
                    partial, exc.details, exc.results) from None
    finally:
        bar.close()
    results = dict(enumerate(outs))
    result = with_startup(assemble(results, None, None), startup)
    if isinstance(net, nn.Module):
        net.load_state_dict({k: torch.from_numpy(v) for k, v in outs[0]["state"].items()})
    if result.status not in ("ok", DIVERGED):
        lost = min(map(int, result.extra.get("lost") or []), default=-1)
        raise error(f"{what} run failed: {result.error}. {tail}", lost, result, results=results)
    return result


def run_ranks(run_rank: Callable[..., dict], args: tuple, processes: int, limits: procs.Limits,
              on_message: Callable[[int, str, Any], None], startup: dict,
              classes: set[type]) -> list[dict]:
    """``run_rank(rank, *args)`` in `processes` ranks: the warm pool's workers (a re-run starts
    in a fraction of a second), or fresh processes while another thread's job holds the pool.

    `classes` are the model's module classes (the pool is replaced when one was redefined);
    `startup` receives the pool's figures (what a one-off run would have paid:
    :mod:`costtrain.measure`); a fresh start leaves it empty (cold, paid in full).
    """
    watch = dict(name="rank", deadline=limits.deadline, grace=limits.grace,
                 stall_timeout=limits.stall_timeout, on_message=on_message)
    with pool.lease(processes, classes, busy_ok=True) as workers:
        if workers is None:
            return procs.run_workers(run_rank, [args] * processes, **watch)
        try:
            return workers.run(pooled_rank, [(run_rank, *args)] * processes, classes=classes,
                               **watch)
        finally:
            startup.update(workers.startup)


def pooled_rank(rank: int, run_rank: Callable[..., dict], *args: Any) -> dict:
    """In a pool worker: one rank of one run (the pool's start event and counter, the last two
    arguments, are Hogwild!'s)."""
    return run_rank(rank, *args[:-2])


def with_startup(result: RunResult, startup: dict) -> RunResult:
    """`result` with the pool's start-up figures of its run (none for fresh processes)."""
    if startup:
        result.extra["startup"] = dict(startup)
    return result


def run_result(method: str, cfg: Any, config: dict, record: dict, *, t_start: float,
               train_start: float | None, train: float, samples: int, loss_curve: dict,
               curves: dict, extra: dict, error: str | None, diverged: bool,
               label: str = "") -> RunResult:
    """The RunResult of a distributed run from rank 0's `record` (its evaluation and test
    figures) and the figures the method gathered from every rank."""
    result = RunResult(
        method=method, config=config, device="cpu", threads=cfg.threads,
        setup_seconds=max(0.0, train_start - t_start) if train_start else 0.0,
        train_seconds=train, eval_seconds=record.get("eval_seconds", 0.0), samples=samples,
        samples_per_second=samples / train if train > 0 else 0.0,
        steady_samples_per_second=steady_rate(loss_curve),
        test_loss=record.get("test_loss", float("nan")),
        test_accuracy=record.get("test_accuracy", float("nan")), loss_curve=loss_curve,
        worker_curves=curves,
        eval_curve=record.get("eval_curve") or new_curve("samples", "seconds", "accuracy", "loss"),
        extra=extra, hardware=hardware_info(), status="partial" if error else "ok", error=error,
        label=label)
    close_eval_curve(result)
    if diverged:
        mark_diverged(result, config.get("lr"))
    return result


@contextlib.contextmanager
def listen(addr: str, port: int | None, timeout: float) -> Iterator[int]:
    """Host the group's rendezvous store on addr:port (0/None = a free port); yield the port.

    The socket is bound here, before any process starts, so a busy port or a foreign
    address fails at once, and two runs can never pick the same free port.
    """
    if port is not None and not 0 <= port <= 65535:
        raise CosttrainError(f"port must be 0..65535 or None, got {port}.")
    try:
        sock = socket.create_server((addr, port or 0), backlog=128)
    except socket.gaierror as exc:
        raise CosttrainError(f"cannot resolve address {addr!r}: {exc.strerror}.") from None
    except OSError as exc:
        if port:
            raise CosttrainError(
                f"cannot listen on {addr}:{port}: {exc.strerror}. Is another run using that "
                "port? Pick another one or leave port=None to get a free one.") from None
        raise CosttrainError(f"cannot listen on {addr!r}: {exc.strerror}; give an address of "
                             "this machine (default 127.0.0.1).") from None
    port = sock.getsockname()[1]
    # The store now owns the socket. Its own client connects to it at once; give that at least
    # a few seconds on a busy machine (the ranks' waits keep the user's timeout).
    with procs.resource_errors("starting the rendezvous store"):  # it starts a thread
        store = dist.TCPStore(addr, port, None, is_master=True,
                              timeout=datetime.timedelta(seconds=max(timeout, 10.0)),
                              wait_for_workers=False, master_listen_fd=sock.detach())
    try:
        yield port
    finally:
        del store


def share_with_ranks(model: Any, ds: Any) -> None:
    """Before spawning the ranks of a run on this machine: check that the model fits in
    ``/dev/shm`` (torch shares it with them there) and move the data outside it."""
    check_shared_memory(model, data_bytes=0 if shared.AVAILABLE else ds.nbytes)
    with procs.resource_errors("sharing the data with the worker processes"):
        ds.share_memory_()


def interface_for(addr: str) -> str | None:
    """Name of the local network interface that talks to ``addr`` (e.g. ``lo``, ``eth0``)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                           socket.SOCK_DGRAM) as s:
            s.connect((addr, 9))  # UDP: chooses a route, sends nothing
            local = s.getsockname()[0]
    except OSError:
        return None
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.address.split("%")[0] == local for a in addrs):
            return name
    return None


def join_group(rank: int, world_size: int, timeout: float, addr: str | None = None,
               port: int | None = None, what: str = "parameter server") -> None:
    """Join the gloo group: through the launcher's store at addr:port, else ``env://`` (torchrun).

    Every rank first announces itself in the store and waits at most `timeout` seconds for
    the others (:func:`wait_for_ranks`): a rank, or a whole machine, that never joins is named
    in a :class:`CosttrainError`. Gloo's own sockets use ``$GLOO_SOCKET_IFNAME`` when set, else
    the interface that reaches the master address (so a loopback run stays on loopback).
    `what` names the run in errors.
    """
    master = addr or os.environ.get("MASTER_ADDR", "127.0.0.1")
    t = datetime.timedelta(seconds=timeout)
    where = f"{master}:{port or os.environ.get('MASTER_PORT', '?')}"
    advice = ("Check that rank 0 runs, the address and port are right and reachable "
              "(firewall), and every rank uses the same world size.")
    try:
        if port is None:  # env://: torchrun's agent hosts the store, else rank 0 does
            port = int(os.environ.get("MASTER_PORT", "0"))
            host = (rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True")
            store = dist.TCPStore(master, port, world_size, is_master=host, timeout=t,
                                  wait_for_workers=False)
        else:
            store = dist.TCPStore(master, port, world_size, is_master=False, timeout=t)
        store = dist.PrefixStore(
            f"costtrain/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
        wait_for_ranks(store, rank, world_size, timeout, f"the {what} group at {where}")
        with socket_interface(master):
            dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                    timeout=t)
    except CosttrainError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:  # DistError is a RuntimeError
        exhausted = ResourceError.describe(exc, f"rank {rank} joined the {what} group")
        if exhausted is not None:
            raise exhausted from None
        raise CosttrainError(
            f"rank {rank} could not join the {what} group at {where} within "
            f"{timeout:g} s: {first_line(exc)}. {advice}") from None


@contextlib.contextmanager
def socket_interface(master: str) -> Iterator[None]:
    """Gloo's sockets on ``$GLOO_SOCKET_IFNAME`` when the user set it, else, while the group is
    created, on the interface that reaches `master` (unset again after: a warm pool worker's
    next run may talk to another address)."""
    ifname = None if "GLOO_SOCKET_IFNAME" in os.environ else interface_for(master)
    if ifname:
        os.environ["GLOO_SOCKET_IFNAME"] = ifname
    try:
        yield
    finally:
        if ifname:
            os.environ.pop("GLOO_SOCKET_IFNAME", None)


def wait_for_ranks(store: Any, rank: int, world_size: int, timeout: float, group: str) -> None:
    """Announce `rank` in `store` and wait until all `world_size` ranks have; name the missing.

    Under torchrun a rank's machine is its ``--node-rank``: ranks are numbered node by node,
    ``LOCAL_WORLD_SIZE`` per node.
    """
    store.set(f"joined/{rank}", socket.gethostname())
    try:
        store.wait([f"joined/{r}" for r in range(world_size)],
                   datetime.timedelta(seconds=timeout))
        return
    except RuntimeError:  # DistStoreError: "wait timeout"
        missing = [r for r in range(world_size) if not store.check([f"joined/{r}"])]
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "0") or 0)
    who = f"rank{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}"
    if per_node and "GROUP_RANK" in os.environ:  # torchrun: name the machines
        nodes = sorted({r // per_node for r in missing})
        who += (f" (node{'s' if len(nodes) > 1 else ''} {', '.join(map(str, nodes))}: the "
                f"torchrun started with --node-rank {' / '.join(map(str, nodes))})")
    raise CosttrainError(
        f"{who} did not join {group} within {timeout:g} s: never started, or failed before "
        "joining (its own output says why). Start every machine's command within the "
        "timeout (or pass a larger --timeout), with the same --nnodes, --nproc-per-node, "
        "--master-addr and --master-port, and check that it can reach the master.")


MAX_JSON_BYTES = 2**30  # a report larger than this from a peer is refused, not allocated


def send_json(obj: Any, dst: int) -> None:
    """Send `obj` to rank `dst` as JSON text in a byte tensor (never a pickle: a peer's
    message cannot make the receiver run code)."""
    data = torch.frombuffer(bytearray(json.dumps(obj).encode()), dtype=torch.uint8)
    dist.send(torch.tensor([len(data)], dtype=torch.int64), dst)
    dist.send(data, dst)


def recv_json(src: int) -> Any:
    """Receive what :func:`send_json` sent from rank `src`."""
    n = torch.zeros(1, dtype=torch.int64)
    dist.recv(n, src)
    if not 0 < int(n) <= MAX_JSON_BYTES:
        raise RuntimeError(f"rank {src} announced a report of {int(n):,} bytes; refused")
    data = torch.empty(int(n), dtype=torch.uint8)
    dist.recv(data, src)
    return json.loads(bytes(data.numpy()))


def first_line(exc: BaseException) -> str:
    """The gist of an error message (gloo's first line, without its boilerplate advice)."""
    return gist(exc, None).split(" This is typically")[0].rstrip(".") or type(exc).__name__


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise CosttrainError(f"${name} is not set: start this module with torchrun (which sets "
                             "RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or set them yourself.")
    return value


def _env_int(name: str) -> int:
    value = _env(name)
    try:
        return int(value)
    except ValueError:
        raise CosttrainError(f"${name} must be a whole number, got {value!r}.") from None


def torchrun_env() -> tuple[int, int, str]:
    """(RANK, WORLD_SIZE, "MASTER_ADDR:MASTER_PORT") from the environment, checked."""
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    return rank, world, f"{_env('MASTER_ADDR')}:{_env_int('MASTER_PORT')}"


def torchrun_threads(threads: int | None) -> int:
    """Threads per rank under torchrun: `threads`, else the cores shared by this machine's
    ranks (``LOCAL_WORLD_SIZE``)."""
    return threads or threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def torchrun_rank(run_rank: Callable[..., dict], rank: int, cfg: Any, ds: Any,
                  model: nn.Module) -> dict | None:
    """Run this process's rank of a torchrun launch: rank 0's record; None on the others,
    whose failure is raised here. The run's start is this process's start."""
    out = run_rank(rank, cfg, ds, model)
    if rank != 0:
        if out.get("error"):
            raise CosttrainError(out["error"])
        return None
    return out


def process_start() -> float:
    """When this process started (the set-up time of a torchrun rank counts from there)."""
    return psutil.Process().create_time()


def torchrun_main(args: Any, what: str, run: Callable[..., Any]) -> int:
    """The body of a torchrun entry (``python -m costtrain.parameter_server|local_sgd``).

    Checks the options every gloo method shares, loads the data, runs this rank with
    ``run(args.model, dataset, **options)`` (every keyword of `run` read from `args`); rank 0
    (the one that gets a RunResult back) prints the summary and writes ``--out``. Returns the
    process's exit code.
    """
    options = [p for p in inspect.signature(run).parameters.values()
               if p.kind == p.KEYWORD_ONLY]
    from .data import load_dataset
    rank = os.environ.get("RANK", "?")
    try:
        if args.device != "cpu":
            raise CosttrainError(f"{what} runs on CPU (gloo); use --device cpu.")
        if args.optimizer != "sgd":
            raise CosttrainError(f"{what} steps with SGD (--lr, --momentum); use --optimizer sgd.")
        torchrun_env()  # fail before loading data
        ds = load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed,
                          download=args.download)
        result = run(args.model, ds, **{p.name: getattr(args, p.name) for p in options})
    except CosttrainError as exc:
        print(f"costtrain: rank {rank}: error: {exc}", file=sys.stderr)
        return 2
    if result is None:
        return 0
    from .report import summary
    print(summary(result), flush=True)
    if args.out:
        print(f"result: {result.save(args.out)}")
    return 0 if result.status == "ok" else 4 if result.status == DIVERGED else 3
