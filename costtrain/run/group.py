"""Joining a ``torch.distributed`` (gloo) group and talking over it: the transport the
distributed trainers (parameter server, local SGD) share.

* :func:`listen` hosts the rendezvous store of a run launched on this machine;
* :func:`join_group` joins through that store, or through ``env://`` under torchrun, and
  names the ranks (and torchrun nodes) that never joined;
* :func:`send_json` and :func:`recv_json` carry reports as JSON text, never pickles.

Every wait has the caller's finite timeout. The transport is unauthenticated: loopback or a
trusted network only.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from typing import Any, Iterator

import psutil
import torch
import torch.distributed as dist

from ..errors import CosttrainError, ResourceError, gist
from . import procs


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
    try:
        with procs.resource_errors("starting the rendezvous store"):  # it starts a thread
            store = dist.TCPStore(addr, port, None, is_master=True,
                                  timeout=datetime.timedelta(seconds=max(timeout, 10.0)),
                                  wait_for_workers=False, master_listen_fd=sock.detach())
    except RuntimeError as exc:  # DistNetworkError: its own client could not connect
        raise CosttrainError(f"the rendezvous store on {addr}:{port} cannot be reached from "
                             f"this machine ({first_line(exc)}); check that the address is "
                             "up (`ip -br addr`; loopback: `ip link set lo up`).") from None
    try:
        yield port
    finally:
        del store


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
