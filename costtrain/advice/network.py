"""What-if for a network: predicted time of a distributed run on N machines over a named link.

A prediction from one measured run (parameter server sync/async or local SGD), per worker step:

    predicted seconds = measured compute + bytes on the busiest link / bandwidth
                        + round trips x latency

* **compute**: the slowest worker's measured compute seconds per step (a synchronous method
  runs at its pace), plus, for the parameter server, the server's measured update per step;
* **bytes**: the measured payload (``extra['comm']['payload_bytes']``) times what each method
  moves per step for N machines: local SGD's ring all-reduce moves ``2 (N-1)/N`` payloads in
  and out of every machine once every H steps; the parameter server's machine receives a
  gradient from and sends the parameters to each of the other ``N-1`` machines every step (the
  server shares a machine with a worker, whose traffic stays local);
* **round trips**: one per step for the parameter server, ``N-1`` per average for the ring;
  ``latency`` is a link's round-trip time (what ``ping`` shows);
* **N machines**: every machine runs one worker and computes like the measured worker; the
  data is split N ways, so the work per machine falls as 1/N; the samples needed to reach an
  accuracy are the measured run's (with another N the effective batch differs: a guide);
* the parameter server in async mode: each worker steps on its own, but the server's link
  (one payload each way per step) and its update time cap the steps per second of all.

Every number made here is labelled *predicted*. :func:`measure_loopback` measures this
machine's loopback once, cheaply, so that a run here can be predicted from its own figures and
the model checked (``tests/slow/test_network_slow.py``: within 25 %).
"""
from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .. import methods
from ..measure import time_to_accuracy
from ..methods import ALLREDUCE, ASYNC_SERVER, SERVER
from ..result import RunResult
from ..utils import CosttrainError, whole

PREDICTED = "predicted"


@dataclass(frozen=True)
class Link:
    """A network link: bandwidth in bytes per second and round-trip latency in seconds."""

    name: str
    bandwidth: float  # bytes/s
    latency: float  # s, round trip

    def describe(self) -> str:
        bits = 8 * self.bandwidth
        bw = f"{bits / 1e9:g} Gbit/s" if bits >= 1e9 else f"{bits / 1e6:g} Mbit/s"
        return f"{self.name} ({bw}, {1e3 * self.latency:g} ms)"


LINKS = {"lan": Link("lan", 1e9 / 8, 0.2e-3),  # wired gigabit Ethernet
         "wifi": Link("wifi", 100e6 / 8, 3e-3),  # a good home Wi-Fi
         "wan": Link("wan", 50e6 / 8, 40e-3)}  # two homes or offices over the internet
_UNITS = {"gbit": 1e9 / 8, "mbit": 1e6 / 8, "kbit": 1e3 / 8, "s": 1.0, "ms": 1e-3, "us": 1e-6}


def get_link(link: Link | str) -> Link:
    """A :class:`Link` from a preset (``lan``, ``wifi``, ``wan``) or ``"300mbit,5ms"``."""
    if isinstance(link, Link):
        return link
    text = str(link).strip().lower()
    if text in LINKS:
        return LINKS[text]
    m = re.fullmatch(r"([\d.]+)\s*(gbit|mbit|kbit)\s*[,/]\s*([\d.]+)\s*(ms|us|s)", text)
    if not m:
        raise CosttrainError(f"link must be one of {', '.join(LINKS)} or BANDWIDTH,LATENCY such "
                             f"as '300mbit,5ms' (gbit/mbit/kbit, s/ms/us); got {link!r}.")
    bw, lat = float(m[1]) * _UNITS[m[2]], float(m[3]) * _UNITS[m[4]]
    if bw <= 0:
        raise CosttrainError(f"link bandwidth must be positive, got {link!r}.")
    return Link(text, bw, lat)


def measure_loopback(nbytes: int = 32 << 20, pings: int = 200) -> Link:
    """This machine's loopback: TCP bandwidth (one bulk transfer) and round trip (ping-pong)."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]

        def echo() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                left = nbytes
                while left > 0:
                    left -= len(conn.recv(min(left, 1 << 20)))
                conn.sendall(b"k")
                for _ in range(pings):
                    conn.sendall(conn.recv(1))
        t = threading.Thread(target=echo, daemon=True)
        t.start()
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            block = bytes(1 << 20)
            t0 = time.perf_counter()
            for i in range(0, nbytes, len(block)):
                c.sendall(block[:min(len(block), nbytes - i)])
            c.recv(1)
            bandwidth = nbytes / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(pings):
                c.sendall(b"p")
                c.recv(1)
            rtt = (time.perf_counter() - t0) / pings
        t.join(5)
    return Link("loopback", bandwidth, rtt)


# --------------------------------------------------------------------- the model
def _model(result_method: str) -> str | None:
    """The network model of a result's method (:data:`costtrain.methods.SERVER`, ...), or None."""
    row = methods.find(result_method)
    return row.network.get(result_method) if row else None


@dataclass
class StepCosts:
    """What a measured run says one worker step costs (the inputs of a prediction)."""

    method: str  # a result method with a network model: ps-sync | ps-async | local-sgd
    workers: int  # as measured
    batch_size: int
    compute: float  # s per step, the slowest worker
    server_update: float  # s per server step (parameter server), else 0
    payload_bytes: int  # one model or gradient as sent
    average_every: int  # H (local SGD), else 1
    worker_steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def step_costs(result: RunResult) -> StepCosts:
    """The per-step compute and payload a distributed run measured."""
    comm = result.extra.get("comm")
    if not comm or _model(result.method) is None:
        raise CosttrainError(f"a {result.method!r} run has no communication figures; predict "
                             "from a parameter-server or local-SGD run.")
    steps = max(1, comm["worker_steps"])
    per = result.extra.get("per_worker", {})
    compute = max((w["compute_seconds"] for w in per.values()),
                  default=result.extra.get("compute_seconds", 0.0))
    server = result.extra.get("server", {})
    update = server.get("update_seconds", 0.0) / max(1, result.extra.get("steps", 0) or 1)
    return StepCosts(method=result.method, workers=int(result.config["workers"]),
                     batch_size=int(result.config["batch_size"]), compute=compute / steps,
                     server_update=update if _model(result.method) in (SERVER, ASYNC_SERVER) else 0.0,
                     payload_bytes=int(comm["payload_bytes"]),
                     average_every=int(result.config.get("average_every", 1)),
                     worker_steps=steps)


@dataclass
class Prediction:
    """A *predicted* time per step and to target for one run's method on N machines."""

    label: str
    method: str
    machines: int
    link: str
    seconds_per_step: float  # each worker taking one step
    compute_seconds: float  # its parts, per step
    transfer_seconds: float
    latency_seconds: float
    samples_per_second: float
    bytes_per_step: float  # on the busiest machine's link, each direction
    seconds_to_target: float | None = None
    samples_to_target: int | None = None
    kind: str = PREDICTED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict_step(costs: StepCosts, link: Link, machines: int | None = None,
                 remote: int | None = None) -> Prediction:
    """Predicted seconds per worker step of `costs`' method on `machines` over `link`.

    ``machines=None`` predicts the measured set-up itself: its workers, each one (and, for the
    parameter server, the server too) on its own end of the link; else N machines, one worker
    each, the server sharing the first (``remote`` = machines whose traffic crosses a link).
    """
    n = costs.workers if machines is None else machines
    whole(n, "machines")
    P, c = costs.payload_bytes, costs.compute + costs.server_update
    model = _model(costs.method)
    if model == ALLREDUCE:  # full duplex: each machine sends and receives at once
        moved = 2 * (n - 1) / n * P / costs.average_every
        transfer, lat = moved / link.bandwidth, (n - 1) / costs.average_every * link.latency
    else:  # the server's link: gradients in, then the parameters out
        remote = (n if machines is None else n - 1) if remote is None else remote
        moved = remote * P
        transfer, lat = 2 * moved / link.bandwidth, (link.latency if remote else 0.0)
    step = c + transfer + lat
    if model == ASYNC_SERVER:  # each worker alone, capped by the server's link and update
        transfer, lat = (2 * P / link.bandwidth, link.latency) if remote else (0.0, 0.0)
        caps = [n / (c + transfer + lat)]
        if remote:
            caps.append(link.bandwidth / P)  # one payload each way per step
        if costs.server_update > 0:
            caps.append(1 / costs.server_update)
        step = n / min(caps)  # all workers together take min(caps) steps per second
        transfer = max(0.0, step - c - lat)  # sending, and queueing at a saturated server
    method = costs.method + (f" H={costs.average_every}" if model == ALLREDUCE else "")
    name = f"{method} on {n} machine{'s' if n > 1 else ''}, {link.name}"
    return Prediction(label=f"{name} ({PREDICTED})", method=costs.method, machines=n,
                      link=link.describe(), seconds_per_step=step, compute_seconds=c,
                      transfer_seconds=transfer, latency_seconds=lat,
                      samples_per_second=n * costs.batch_size / step, bytes_per_step=moved)


def predict(result: RunResult, link: Link | str, machines: int | None = None,
            target_accuracy: float | None = None) -> Prediction:
    """Predicted time per step (and to `target_accuracy`) of `result`'s method on a network."""
    p = predict_step(step_costs(result), get_link(link), machines)
    if target_accuracy is not None:
        _, samples = time_to_accuracy(result.eval_curve, target_accuracy)
        if samples is not None:
            p.samples_to_target = samples
            p.seconds_to_target = samples / p.samples_per_second
    return p


def measured_seconds_per_step(result: RunResult) -> float:
    """The measured training seconds per worker step of a distributed run (evaluation excluded)."""
    return result.train_seconds / max(1, result.extra["comm"]["worker_steps"])
