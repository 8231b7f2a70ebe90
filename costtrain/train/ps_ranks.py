"""What each process of the parameter server does: rank 0 serves, ranks 1..K compute gradients.

Everything travels point to point over ``torch.distributed`` (gloo) as plain float32 tensors,
never as pickles:

* worker -> server: ``[n, version, loss_sum | gradient (P) | float buffers (B)]``; ``n = -1``
  means "done", followed by the worker's report as JSON bytes.
* server -> worker: ``[version, go, evaluating | parameters (P)]``; ``go = 0`` asks the worker
  to stop; ``evaluating`` is the seconds the server spent evaluating the test set while this
  worker's gradient waited for its answer (:meth:`Server.send`).

**sync**: the server waits for one gradient from every active worker, averages them weighted
by batch size (= the gradient of the mean loss over the concatenated batch), steps its
optimizer once and sends the new parameters to all of them: large-batch SGD.
**async**: the server steps on each gradient as it arrives and answers that worker only; the
staleness of a gradient is the number of updates made since the worker's copy was sent.

The server has one receiving thread per worker, so it notices a lost worker at once (its
connection closes) and can name it; every wait has the group's finite timeout.

A worker's communication time is the time it spends in ``send``/``recv`` (its message on the
wire, and waiting for its turn and for the other workers), less the server's evaluations it
waited through: the server evaluates between two answers, and that wait is reported apart
(``eval_wait_seconds``) and kept out of the worker's training clock, as the server keeps it out
of its own.
"""
from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn

from ..data.datasets import Dataset
from ..errors import ResourceError
from ..run import procs
from ..run.group import first_line, join_group, recv_json, send_json
from ..utils import Stopwatch
from .comm import CommCounter
from .engine import Evaluator, LossLog, batches, evaluate, failure, loss_fn, shard_indices

MODES = ("sync", "async")
HEADER = 3  # n, version, loss_sum
REPLY = 3  # version, go, seconds the server evaluated while the worker waited
DONE = -1.0
DIVERGED = "the training diverged"  # the server's reason to stop (engine.LossLog.diverged)


@dataclass
class PSConfig:
    """Hyper-parameters every rank needs (sent to each process)."""

    mode: str = "sync"
    workers: int = 2
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.0
    seed: int = 42
    log_every: int = 10
    eval_every: int | None = None
    timeout: float = 60.0
    threads: int = 1  # per worker
    server_threads: int = 1
    max_staleness: int | None = None
    classes: int | None = None  # of the dataset (the divergence rules)


Batch = tuple[torch.Tensor, torch.Tensor]


def limits(timeout: float) -> procs.Limits:
    """What a parameter-server run's ``timeout`` means (the failure table of docs/command-line.md).

    ``stall_timeout`` = timeout: a rank silent that long is stuck (the launcher's rule, and the
    server's for its workers; gloo's own waits use the same timeout); no ``deadline``;
    ``grace`` = min(timeout, 15) s to hand in after a failure, of which the server answers
    stopping workers for at most :func:`stop_window`.
    """
    return procs.Limits(stall_timeout=timeout, grace=min(timeout, 15.0))


def stop_window(timeout: float) -> float:
    """Seconds the server keeps answering workers after it decided to stop: part of the
    grace, leaving the rest for its final evaluation and hand-in."""
    return min(limits(timeout).grace, 10.0)


def worker_batches(ds: Dataset, rank: int, cfg: PSConfig) -> Iterator[Batch]:
    """Worker ``rank``'s mini-batches for all its epochs, in order (its own seeded shuffle)."""
    shard = shard_indices(len(ds.train_y), rank - 1, cfg.workers, cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + rank)
    for _ in range(cfg.epochs):
        yield from batches(ds.train_x, ds.train_y, cfg.batch_size, gen, indices=shard)


# --- joining the group -------------------------------------------------------------------

def run_rank(rank: int, cfg: PSConfig, ds: Dataset, net: nn.Module, addr: str | None = None,
             port: int | None = None) -> dict[str, Any]:
    """One process of the run: join the group, then serve (rank 0) or work (ranks 1..K)."""
    torch.set_num_threads(cfg.server_threads if rank == 0 else cfg.threads)
    server = Server(cfg, ds, net) if rank == 0 else None  # its optimizer imports for seconds
    join_group(rank, cfg.workers + 1, cfg.timeout, addr, port)
    try:
        return serve(server) if server is not None else work(rank, cfg, ds, net)
    finally:
        dist.destroy_process_group()


# --- flat vectors ----------------------------------------------------------------------------

def float_buffers(net: nn.Module) -> list[torch.Tensor]:
    """Floating-point buffers (e.g. BatchNorm running statistics) that the server mirrors."""
    return [b for b in net.buffers() if b.is_floating_point()]


def flatten(tensors: list[torch.Tensor], grads: bool = False) -> torch.Tensor:
    """All tensors (or their gradients, zeros where absent) as one flat vector.

    Sparse gradients (``EmbeddingBag(sparse=True)``) are made dense: the message carries every
    row, so a sparse model pays the full size of its table per step here, unlike Hogwild!.
    """
    if grads:
        tensors = [torch.zeros_like(t) if t.grad is None
                   else t.grad.to_dense() if t.grad.is_sparse else t.grad for t in tensors]
    return torch.cat([t.detach().reshape(-1) for t in tensors]) if tensors else torch.zeros(0)


@torch.no_grad()
def unflatten_into(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    """Copy a flat vector back into the tensors it was made from."""
    i = 0
    for t in tensors:
        t.copy_(flat[i:i + t.numel()].view_as(t))
        i += t.numel()


def nbytes(t: torch.Tensor) -> int:
    """Bytes of a tensor's payload as sent (header-free)."""
    return t.numel() * t.element_size()


# --- worker ----------------------------------------------------------------------------------

def work(rank: int, cfg: PSConfig, ds: Dataset, net: nn.Module) -> dict[str, Any]:
    """Worker loop: gradient of my next batch -> server, latest parameters <- server."""
    torch.manual_seed(cfg.seed + rank)
    net = copy.deepcopy(net).train()  # a private copy: never share storage with the server
    params, bufs = list(net.parameters()), float_buffers(net)
    n_params = sum(p.numel() for p in params)
    msg = torch.zeros(HEADER + n_params + sum(b.numel() for b in bufs))
    reply = torch.zeros(REPLY + n_params)
    log, compute, comm = LossLog(cfg.log_every, ds.num_classes), Stopwatch(), Stopwatch()
    evaluating = 0.0  # of the time in `comm`: the server evaluating the test set meanwhile
    cc = CommCounter()
    error, lost, t0 = None, False, time.perf_counter()
    try:
        dist.recv(reply, 0)  # the initial parameters (set-up, not communication time)
        cc.add(received=nbytes(reply))
        unflatten_into(reply[REPLY:], params)
        t0 = time.perf_counter()
        for xb, yb in worker_batches(ds, rank, cfg):
            if reply[1] == 0 or procs.should_stop():
                break
            try:
                with compute:
                    net.zero_grad(set_to_none=True)
                    loss = loss_fn(net(xb), yb)
                    loss.backward()
                    lv = loss.item()
                    msg[0], msg[1], msg[2] = len(yb), reply[0], lv * len(yb)
                    msg[HEADER:HEADER + n_params] = flatten(params, grads=True)
                    msg[HEADER + n_params:] = flatten(bufs)
            except (RuntimeError, MemoryError) as exc:  # my own failure (e.g. out of memory)
                error = failure(exc, f"worker {rank}", "computing a gradient")
                break  # the connection is fine: hand in and say so
            with comm:
                dist.send(msg, 0)
                dist.recv(reply, 0)
            evaluating += float(reply[2])  # waiting for an evaluation is not communication
            cc.add(sent=nbytes(msg), received=nbytes(reply), messages=2, round_trips=1)
            unflatten_into(reply[REPLY:], params)
            log.add(lv, len(yb), time.perf_counter() - t0 - evaluating)
    except RuntimeError as exc:  # the server or the connection went away
        error, lost = f"worker {rank} lost the server: {first_line(exc)}", True
    train_seconds = time.perf_counter() - t0 - evaluating  # the server's clock does the same
    log.flush(train_seconds)
    cc.seconds = comm.seconds - evaluating
    report = dict(rank=rank, curve=log.curve, samples=log.samples, train_seconds=train_seconds,
                  compute_seconds=compute.seconds, comm_seconds=cc.seconds,
                  eval_wait_seconds=evaluating, error=error,
                  steps=cc.round_trips, comm=cc.to_dict(), payload_bytes=nbytes(msg))
    if not lost:
        try:
            msg.zero_()[0] = DONE
            dist.send(msg, 0)  # (the report itself is not counted: it is not training traffic)
            send_json(report, 0)
        except RuntimeError as exc:
            report["error"] = f"worker {rank} could not hand in its report: {first_line(exc)}"
    return report


# --- server ----------------------------------------------------------------------------------

def _receive(rank: int, size: int, inbox: queue.Queue) -> None:
    """Thread: forward every message of worker ``rank`` to the server's inbox, a gradient
    with the moment it arrived (from then on its worker waits for the answer)."""
    try:
        while True:
            msg = torch.empty(size)
            dist.recv(msg, rank)
            if msg[0] == DONE:
                inbox.put(("done", rank, recv_json(rank)))
                return
            inbox.put(("grad", rank, (msg, time.perf_counter())))
    except Exception as exc:  # connection closed by a dead worker, or a timeout
        inbox.put(("lost", rank, first_line(exc)))


class Server:
    """The parameters, the optimizer and the bookkeeping of rank 0."""

    def __init__(self, cfg: PSConfig, ds: Dataset, net: nn.Module) -> None:
        self.cfg, self.net = cfg, copy.deepcopy(net)
        self.params, self.bufs = list(self.net.parameters()), float_buffers(self.net)
        self.n_params = sum(p.numel() for p in self.params)
        self.opt = torch.optim.SGD(self.params, lr=cfg.lr, momentum=cfg.momentum)
        self.version, self.samples, self.dropped, self.dropped_samples = 0, 0, 0, 0
        self.staleness: Counter[int] = Counter()
        self.log = LossLog(cfg.log_every, ds.num_classes)
        self.test = (ds.test_x, ds.test_y)  # the final evaluation's: the whole test set
        self.evaluator = Evaluator(ds.test_x, ds.test_y, cfg.eval_every)  # on its slice
        self.update, self.reply_time, self.wait = Stopwatch(), Stopwatch(), Stopwatch()
        self.comm = CommCounter()
        self.arrived: dict[int, float] = {}  # rank -> when its unanswered gradient arrived
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0 - self.evaluator.seconds

    def apply(self, msgs: list[torch.Tensor]) -> None:
        """One optimizer step on the batch-size-weighted mean of the gradients in ``msgs``."""
        with self.update:
            n = sum(float(m[0]) for m in msgs)
            stale = [self.version - int(m[1]) for m in msgs]
            self.staleness.update(stale)
            p = self.n_params
            if self.cfg.max_staleness is not None and max(stale) > self.cfg.max_staleness:
                self.dropped += len(msgs)  # too old: answer with fresh parameters only
                self.dropped_samples += int(n)
            else:
                grad = sum(m[0] * m[HEADER:HEADER + p] for m in msgs) / n
                for param, g in zip(self.params, grad.split([q.numel() for q in self.params])):
                    param.grad = g.view_as(param)
                self.opt.step()
                self.version += 1
                if self.bufs:
                    unflatten_into(sum(m[HEADER + p:] for m in msgs) / len(msgs), self.bufs)
        if self.cfg.max_staleness is not None and max(stale) > self.cfg.max_staleness:
            procs.report("dropped", int(n))  # not trained: not counted, not logged
            return
        self.samples += int(n)
        loss = sum(float(m[2]) for m in msgs) / n
        self.log.add(loss, int(n), self.elapsed())
        procs.report("progress", (int(n), loss))
        if self.evaluator.due(self.samples):
            self.evaluator(self.net, self.samples, self.elapsed())

    def send(self, ranks: list[int], go: bool = True) -> None:
        """Send the current version and parameters (or a stop) to each of ``ranks``, with the
        seconds this server evaluated since that rank's gradient arrived (the rank waited
        through them: not communication)."""
        with self.reply_time:
            params = flatten(self.params)
            replies = [torch.cat([torch.tensor([float(self.version), float(go), self.evaluator
                                                .seconds_since(self.arrived.pop(r, math.inf))]),
                                  params]) for r in ranks]
            for work in [dist.isend(reply, r) for reply, r in zip(replies, ranks)]:
                work.wait()
        self.comm.add(sent=sum(nbytes(reply) for reply in replies), messages=len(ranks))


def serve(srv: Server) -> dict[str, Any]:
    """Server loop: receive gradients, step, answer; until every worker is done."""
    cfg = srv.cfg
    inbox: queue.Queue = queue.Queue()
    size = HEADER + srv.n_params + sum(b.numel() for b in srv.bufs)
    for r in range(1, cfg.workers + 1):
        threading.Thread(target=_receive, args=(r, size, inbox), daemon=True).start()
    active, pending = set(range(1, cfg.workers + 1)), {}
    reports, lost = {}, {}
    stop, stop_deadline = None, float("inf")
    srv.send(sorted(active))  # the initial parameters (part of the set-up)
    train_start, srv.t0 = time.time(), time.perf_counter()
    last_heard = time.monotonic()
    while active and time.monotonic() < stop_deadline:
        if stop is None and procs.should_stop():
            stop = "stopped early: the launcher asked every process to stop"
        try:
            with srv.wait:
                kind, r, payload = inbox.get(timeout=0.2)
            last_heard = time.monotonic()
        except queue.Empty:
            if procs.stalled(last_heard, limits(cfg.timeout).stall_timeout, time.monotonic()) \
                    and stop is None:
                stop = f"no message from workers {sorted(active)} for {cfg.timeout:g} s"
                break
            continue
        if kind == "grad":
            payload, srv.arrived[r] = payload  # the gradient, and when it arrived
            srv.comm.add(received=nbytes(payload))
        try:
            if kind == "lost":
                active.discard(r)
                pending.pop(r, None)
                lost[r] = payload
                stop = stop or f"lost worker {r} (rank {r}): {payload}"
            elif kind == "done":
                active.discard(r)
                reports[r] = payload
                if payload.get("error"):  # its own failure, e.g. out of memory: the run's
                    stop = stop or f"worker {r} (rank {r}): {payload['error']}"
            elif stop is not None:
                srv.send([r], go=False)
            elif cfg.mode == "async":
                srv.apply([payload])
                stop = DIVERGED if srv.log.diverged else None
                srv.send([r], go=stop is None)
            else:
                pending[r] = payload
            if cfg.mode == "sync" and pending and (stop or set(pending) >= active):
                if stop is None:
                    srv.apply(list(pending.values()))
                    stop = DIVERGED if srv.log.diverged else None
                srv.send(sorted(pending), go=stop is None)
                pending.clear()
        except (RuntimeError, MemoryError) as exc:  # a send to a worker that just died
            stop = stop or (failure(exc, "the server", "applying a gradient")
                            if ResourceError.describe(exc, "") else
                            f"lost a worker while answering rank {r}: {first_line(exc)}")
        if stop is not None and stop_deadline == float("inf"):
            stop_deadline = time.monotonic() + stop_window(cfg.timeout)
    train_seconds = srv.elapsed()
    srv.log.flush(train_seconds)
    procs.report("evaluating", len(srv.test[1]))
    t = time.perf_counter()
    test_loss, test_acc = evaluate(srv.net, *srv.test)
    final_eval = time.perf_counter() - t
    return dict(
        loss_curve=srv.log.curve, eval_curve=srv.evaluator.curve, samples=srv.samples,
        steps=srv.version, train_start=train_start, train_seconds=train_seconds,
        eval_seconds=final_eval + srv.evaluator.seconds, test_loss=test_loss,
        test_accuracy=test_acc, test_samples=len(srv.test[1]),
        staleness={str(k): v for k, v in sorted(srv.staleness.items())},
        dropped=srv.dropped, dropped_samples=srv.dropped_samples, update_seconds=srv.update.seconds,
        reply_seconds=srv.reply_time.seconds, wait_seconds=srv.wait.seconds,
        comm=dict(srv.comm.to_dict(), seconds=srv.reply_time.seconds),
        reports=reports, lost=lost, error=stop, diverged=stop == DIVERGED,
        diverged_reason=srv.log.reason,
        # numpy, not tensors: a tensor returned from a process that exits cannot be fetched
        state={k: v.detach().numpy().copy() for k, v in srv.net.state_dict().items()})
