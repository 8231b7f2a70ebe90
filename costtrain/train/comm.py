"""Communication counters: bytes, messages, round trips and seconds per rank, one schema.

Every distributed trainer (parameter server sync/async, local SGD) fills one
:class:`CommCounter` per rank and stores :func:`comm_record` in ``result.extra['comm']``:

* ``per_rank``: ``{rank: {bytes_sent, bytes_received, messages, round_trips, seconds}}``;
* ``bytes_sent``, ``bytes_received``, ``messages``: totals over the ranks;
* ``seconds``: the mean over the workers of the seconds spent communicating (waits for a
  turn or for the other workers included, waits for an evaluation left out);
* ``bytes_sent_per_sample``: total bytes sent / training samples;
* ``payload_bytes``: bytes of one model (or gradient) as sent; ``worker_steps``: the most
  optimizer steps one worker took; ``round_trips``: the most latency-bound exchanges one
  worker waited for (the latency term of :mod:`costtrain.advice.network`);
* ``counted``: a sentence saying what was counted and how.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class CommCounter:
    """What one rank sent and received (tensor payloads), and the seconds it spent doing so."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages: int = 0  # point-to-point messages or collectives this rank took part in
    round_trips: int = 0  # exchanges whose latency this rank waited for
    seconds: float = 0.0

    def add(self, sent: int = 0, received: int = 0, messages: int = 1,
            round_trips: int = 0) -> None:
        """Count one message or collective."""
        self.bytes_sent += int(sent)
        self.bytes_received += int(received)
        self.messages += messages
        self.round_trips += round_trips

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def comm_record(per_rank: dict[int, dict[str, Any]], *, samples: int, payload_bytes: int,
                worker_steps: int, counted: str, workers: list[int] | None = None) -> dict:
    """The ``extra['comm']`` record of a run from each rank's counter (as a dict)."""
    workers = [r for r in per_rank if r in workers] if workers is not None else list(per_rank)
    sent = sum(c["bytes_sent"] for c in per_rank.values())
    return dict(
        per_rank={str(r): dict(c) for r, c in sorted(per_rank.items())},
        bytes_sent=sent, bytes_received=sum(c["bytes_received"] for c in per_rank.values()),
        messages=sum(c["messages"] for c in per_rank.values()),
        seconds=(sum(per_rank[r]["seconds"] for r in workers) / len(workers)) if workers else 0.0,
        bytes_sent_per_sample=sent / samples if samples else 0.0,
        payload_bytes=int(payload_bytes), worker_steps=int(worker_steps),
        round_trips=max((per_rank[r]["round_trips"] for r in workers), default=0),
        counted=counted)


def describe(comm: dict[str, Any]) -> str:
    """One line for summaries: bytes per sample, totals, collectives/messages, seconds."""
    return (f"{comm['bytes_sent_per_sample']:,.0f} B sent per sample; "
            f"{comm['bytes_sent'] / 1e6:,.1f} MB sent, {comm['bytes_received'] / 1e6:,.1f} MB "
            f"received by all ranks in {comm['messages']:,} messages/collectives; "
            f"{comm['seconds']:.2f} s per worker communicating")
