"""Live job events for WebSocket clients.

A job's stream is its stored output (PostgreSQL) followed by its events read from
the replayable events stream with an ordered consumer, which never skips a message;
`JobView` drops what the client already has, so the seam has no gap and no
duplicate. Each client has its own bounded `Outbox`: a client that reads too slowly
loses its oldest messages (and is told which), never the job's pace or the api's
memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from shared import lifecycle
from shared import subjects as s
from shared.events import (
    UNREADABLE_EVENT,
    AnyJobEvent,
    JobLog,
    JobProgress,
    JobStarted,
    LogLine,
    Stream,
    StreamLines,
    StreamLog,
    StreamMessage,
    StreamProgress,
    StreamStatus,
    read_job_event,
)
from shared.models import Job

log = logging.getLogger("plakar_cp.api")

# What one client may have waiting before its oldest messages are dropped.
OUTBOX_BYTES = int(os.environ.get("PLAKAR_CP_WS_OUTBOX_BYTES", str(4 << 20)))
# Events of a job are looked for from this long before the last stored line, so
# clocks of runners and NATS that disagree by less than this lose nothing.
CLOCK_MARGIN = timedelta(seconds=60)


# Live streams (WebSockets) one caller (a session, the token) may hold open at once.
STREAMS_PER_CALLER = int(os.environ.get("PLAKAR_CP_WS_PER_CALLER", "16"))


class Slots:
    """At most `limit` live streams per caller at once, in this api process."""

    def __init__(self, limit: int = STREAMS_PER_CALLER) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    @contextmanager
    def take(self, caller: str) -> Iterator[bool]:
        """Yields whether the caller got a slot; gives it back after."""
        if self._open[caller] >= self.limit:
            yield False
            return
        self._open[caller] += 1
        try:
            yield True
        finally:
            self._open[caller] -= 1
            if not self._open[caller]:
                del self._open[caller]


@dataclass
class Dropped:
    count: int = 0
    first_seq: int = 0
    last_seq: int = 0

    def add(self, first_seq: int, last_seq: int, count: int) -> None:
        """Count a dropped message (`count`: the lines it had, or 1); those with seqs
        (0: none) widen the range."""
        self.count += count
        if last_seq:
            self.first_seq = self.first_seq or first_seq
            self.last_seq = last_seq


# A `lines` message made of several waiting ones holds at most this many bytes (and a
# quarter of the outbox): a browser parses each message at once.
JOIN_MAX_BYTES = 256 * 1024


@dataclass
class _Item:
    parts: list[bytes]  # one message, or `lines` messages to be sent as one
    size: int
    first_seq: int
    last_seq: int
    count: int
    joinable: bool


class Outbox:
    """Messages waiting to be sent to one client, at most `max_bytes` of them: beyond
    that the oldest are dropped, and the next message the client gets is the marker
    made from what was dropped. With `join`, consecutive joinable messages that wait
    together are sent as the one message `join` makes of them."""

    def __init__(
        self,
        marker: Callable[[Dropped], bytes],
        max_bytes: int = OUTBOX_BYTES,
        join: Callable[[list[bytes]], bytes] | None = None,
    ) -> None:
        self._marker = marker
        self._max_bytes = max_bytes
        self._join = join
        self._join_max = min(JOIN_MAX_BYTES, max_bytes // 4)
        self._items: deque[_Item] = deque()
        self._bytes = 0
        self._dropped = Dropped()
        self._ready = asyncio.Event()
        self._closed = False

    def put(
        self,
        data: bytes,
        seq: int = 0,
        *,
        first_seq: int = 0,
        count: int = 1,
        joinable: bool = False,
    ) -> None:
        """A message with its seq (0: none), or a batch of `count` lines from
        `first_seq` to `seq` (`joinable`: to the batch waiting before it)."""
        if self._closed:
            return
        self._bytes += len(data)
        tail = self._items[-1] if self._items else None
        joinable = joinable and self._join is not None
        if joinable and tail and tail.joinable and tail.size + len(data) <= self._join_max:
            tail.parts.append(data)
            tail.size += len(data)
            tail.last_seq, tail.count = seq, tail.count + count
        else:
            self._items.append(_Item([data], len(data), first_seq or seq, seq, count, joinable))
        while self._bytes > self._max_bytes and len(self._items) > 1:
            old = self._items.popleft()
            self._bytes -= old.size
            self._dropped.add(old.first_seq, old.last_seq, old.count)
        self._ready.set()

    def __len__(self) -> int:
        """How many messages wait."""
        return len(self._items)

    def close(self) -> None:
        """Nothing more will come; `get` answers None once the rest is taken."""
        self._closed = True
        self._ready.set()

    async def get(self) -> bytes | None:
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self._dropped.count:
            dropped, self._dropped = self._dropped, Dropped()
            return self._marker(dropped)
        item = self._items.popleft()
        self._bytes -= item.size
        if self._join is None or len(item.parts) == 1:
            return item.parts[0]
        return self._join(item.parts)


class JobView:
    """What one client has of a job (pure): the job as it stands (with the seqs of the
    events that made it so) and the highest seq sent. `feed` applies the job's next event
    (shared/lifecycle.py) and turns it into the messages the client lacks."""

    def __init__(self, tracked: lifecycle.Tracked, after: int) -> None:
        self.tracked = tracked
        self.last_seq = after

    @property
    def job(self) -> Job:
        return self.tracked.job

    @property
    def finished(self) -> bool:
        return self.job.status in lifecycle.TERMINAL

    def stored_line(self, seq: int, ts: datetime, stream: str, line: str) -> StreamLog | None:
        if seq <= self.last_seq:
            return None
        self.last_seq = seq
        return StreamLog(seq=seq, ts=ts, stream=cast("Stream", stream), line=line)

    def feed(self, ev: AnyJobEvent) -> list[StreamMessage]:
        if self.finished:
            return []
        if isinstance(ev, JobLog):
            lines = [self.stored_line(ln.seq, ln.ts, ln.stream, ln.line) for ln in ev.lines]
            return [m for m in lines if m is not None]
        fresh = ev.seq > self.last_seq
        self.last_seq = max(self.last_seq, ev.seq)
        before = self.tracked
        self.tracked = lifecycle.apply(before, ev) or before
        if self.finished:
            # Whatever `after` said, the client must learn that the job ended.
            return [StreamStatus(job=self.job)]
        if not fresh or self.tracked is before:
            return []
        if isinstance(ev, JobProgress):
            return [StreamProgress(seq=ev.seq, ts=ev.ts, progress=ev.progress)]
        if isinstance(ev, JobStarted):
            return [StreamStatus(job=self.job)]
        return []


def batched(messages: list[StreamMessage]) -> list[StreamMessage]:
    """The messages with each run of consecutive lines made one `lines` message, for
    clients that asked for batches: one message per runner batch rather than one per
    line is what lets a browser keep up with a job that prints thousands a second."""
    out: list[StreamMessage] = []
    run: StreamLines | None = None
    for m in messages:
        if not isinstance(m, StreamLog):
            run = None
            out.append(m)
            continue
        if run is None:
            run = StreamLines(lines=[])
            out.append(run)
        run.lines.append(LogLine(seq=m.seq, ts=m.ts, stream=m.stream, line=m.line))
    return out


# How `lines` messages are encoded around their lines: the tag first, then the list.
_NO_LINES = msgspec.json.encode(StreamLines(lines=[]))
_LINES_HEAD, _LINES_TAIL = _NO_LINES[:-2], _NO_LINES[-2:]


def join_lines(parts: list[bytes]) -> bytes:
    """Encoded `lines` messages made one, their lines in order (without decoding them:
    this runs for every message a batching client gets)."""
    head, tail = len(_LINES_HEAD), len(_LINES_TAIL)
    return _LINES_HEAD + b",".join(p[head:-tail] for p in parts) + _LINES_TAIL


async def first_seq_since(nc: Client, subject: str, since: datetime) -> int | None:
    """The stream sequence of the first event on `subject` (wildcards allowed) stored
    at or after `since`. Consumers then start there by sequence: nats-py restarts an
    ordered consumer by sequence and would keep a start time alongside, which the
    server refuses."""
    request = {"start_time": since.isoformat(), "next_by_subj": subject}
    reply = await nc.request(
        f"$JS.API.DIRECT.GET.{s.EVENTS_STREAM}", json.dumps(request).encode(), timeout=5
    )
    seq = (reply.headers or {}).get("Nats-Sequence")
    return int(seq) if seq else None


async def follow_job(
    js: JetStreamContext,
    job_id: str,
    start_seq: int | None,
    on_event: Callable[[AnyJobEvent], Awaitable[None]],
) -> JetStreamContext.PushSubscription:
    """Deliver the job's events in stream order from `start_seq` (from its first event
    when None) to `on_event`, until unsubscribed."""

    async def on_msg(msg: Msg) -> None:
        try:
            event = read_job_event(msg.subject, msg.data)
        except UNREADABLE_EVENT as e:
            log.error("skipping event %s: %s", msg.subject, e)
            return
        await on_event(event)

    config = js_api.ConsumerConfig()
    policy = js_api.DeliverPolicy.ALL
    if start_seq is not None:
        policy = js_api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = start_seq
    return await js.subscribe(
        s.job_events(job_id),
        stream=s.EVENTS_STREAM,
        ordered_consumer=True,
        deliver_policy=policy,
        config=config,
        cb=on_msg,
    )
