"""WebSockets: one job's output and state as they happen, and the feed of all events.

Bad input closes the socket, once accepted, with 4404 (no such job) or 4422 (a bad
query parameter; the reason names it), so browsers see why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, get_args

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from nats.aio.msg import Msg

from services.api import live, store
from services.api.auth import Caller
from services.api.deps import Deps, parse_id
from services.api.errors import ApiError
from services.api.runner_groups import with_waiting
from shared.events import (
    JOB_EVENT_KINDS,
    AnyFreshnessEvent,
    AnyJobEvent,
    AnyScheduleEvent,
    EventsDropped,
    JobFinished,
    StreamDropped,
    StreamLines,
    StreamLog,
    StreamMessage,
    StreamProgress,
    StreamStatus,
)
from shared.lifecycle import TERMINAL, Tracked
from shared.models import Job
from shared.subjects import EVENTS_ALL, freshness_event, job_event, job_events, schedule_event

# Lines read from PostgreSQL per query while a client catches up.
PAGE = 2000
# How long the final status waits for the history to record the job, so that a GET
# right after it returns the same; past that the job as the events tell is sent.
RECORDED_WAIT_S = 5.0

# A client that asks for batches gets, unless it is behind, at most one message per this
# many seconds (about one frame of a screen): what comes meanwhile waits and goes as one
# `lines` message, so that a browser spends one task per frame however the runner
# batched the lines. The first message after a quiet time goes at once.
BATCH_PACE_S = 0.016

SCHEDULE_KINDS = tuple(t.__struct_config__.tag for t in get_args(AnyScheduleEvent))
FRESHNESS_KINDS = tuple(str(t.__struct_config__.tag) for t in get_args(AnyFreshnessEvent))

_encode = msgspec.json.Encoder().encode

Socket = WebSocket[Any, Any, Any]
# What sending to or reading from a client that went away raises.
GONE = (WebSocketDisconnect, OSError)


# The highest seq a job can have (PostgreSQL bigint).
MAX_SEQ = 2**63 - 1


class BadParam(Exception):
    pass


# A WebSocket close frame carries at most this many bytes of reason.
MAX_REASON = 123


def close_reason(text: str) -> str:
    """`text`, cut to what a close frame carries (at a character's end)."""
    return text.encode()[:MAX_REASON].decode(errors="ignore")


def parse_after(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or int(value) > MAX_SEQ:
        raise BadParam("after must be a non-negative integer (the last seq received)")
    return int(value)


def parse_batch(value: str | None) -> bool:
    """`?batch=1`: lines come in `lines` messages rather than one `log` message each."""
    if value in (None, "", "0"):
        return False
    if value == "1":
        return True
    raise BadParam("batch must be 0 or 1")


def parse_kinds(value: str | None) -> list[str]:
    """The subjects to subscribe to for `?kinds=a,b` (every event when absent)."""
    if not value:
        return [EVENTS_ALL]
    subjects = []
    for kind in value.split(","):
        if kind in JOB_EVENT_KINDS:
            subjects.append(job_event("*", kind))
        elif kind in SCHEDULE_KINDS:
            subjects.append(schedule_event("*", kind))
        elif kind in FRESHNESS_KINDS:
            subjects.append(freshness_event("*", "*", kind))
        else:
            # The kinds are listed by the AsyncAPI document: a close frame cannot hold them.
            raise BadParam(f"kinds: {kind[:32]!r} is not an event kind (GET /api/v1/asyncapi.json)")
    return list(dict.fromkeys(subjects))


async def _pump(socket: Socket, outbox: live.Outbox, pace_s: float = 0.0) -> None:
    """Send what the outbox gets until it is closed or the client goes away. With
    `pace_s`, a message that leaves the outbox empty is followed by that long a pause
    (what comes meanwhile waits, joined); a backlog goes without pause."""

    async def send() -> None:
        while (data := await outbox.get()) is not None:
            await socket.send_text(data)
            if pace_s and not outbox:
                await asyncio.sleep(pace_s)

    async def until_gone() -> None:
        while True:
            await socket.receive_data("text")  # clients have nothing to say: ignored

    sending = asyncio.create_task(send())
    listening = asyncio.create_task(until_gone())
    try:
        await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        listening.cancel()
        sending.cancel()
        for task in (sending, listening):
            with contextlib.suppress(asyncio.CancelledError, *GONE):
                await task
    if sending.done() and not sending.cancelled() and sending.exception() is None:
        await socket.close()


def _dropped_lines(d: live.Dropped) -> bytes:
    return _encode(StreamDropped(count=d.count, first_seq=d.first_seq, last_seq=d.last_seq))


def _dropped_events(d: live.Dropped) -> bytes:
    return _encode(EventsDropped(count=d.count))


async def _recorded(deps: Deps, job: Job) -> Job:
    def ended(j: Job) -> bool:
        return j.status in TERMINAL

    recorded = await store.wait_for_job(deps.pool, job.id, RECORDED_WAIT_S, until=ended)
    return recorded if recorded is not None and ended(recorded) else job


def _seqs(message: StreamMessage) -> tuple[int, int, int]:
    """A message's first and last seq (0: none) and its line count (1 unless lines)."""
    if isinstance(message, StreamLines):
        return message.lines[0].seq, message.lines[-1].seq, len(message.lines)
    seq = message.seq if isinstance(message, StreamLog | StreamProgress) else 0
    return seq, seq, 1


class JobStream:
    def __init__(self, deps: Deps, socket: Socket, job: Tracked, after: int, batch: bool) -> None:
        self.deps = deps
        self.socket = socket
        self.view = live.JobView(job, after)
        self.outbox = live.Outbox(_dropped_lines, join=live.join_lines if batch else None)
        self.batch = batch

    def shaped(self, messages: list[StreamMessage]) -> list[StreamMessage]:
        return live.batched(messages) if self.batch else messages

    async def send(self, message: StreamMessage) -> None:
        await self.socket.send_text(_encode(message))

    async def run(self) -> None:
        job = self.view.job
        if not self.view.finished:
            [waiting] = await with_waiting(self.deps, [job])
            await self.send(StreamStatus(job=waiting))
        await self.send_stored()
        if self.view.finished:
            await self.send(StreamStatus(job=job))
            await self.socket.close()
            return
        # The events after what the client has now were stored after its last line.
        seen_at = await store.line_time(self.deps.pool, job.id, self.view.last_seq)
        start = None
        if seen_at is not None:
            since = seen_at - live.CLOCK_MARGIN
            start = await live.first_seq_since(self.deps.nc, job_events(job.id), since)
        sub = await live.follow_job(self.deps.js, job.id, start, self.on_event)
        try:
            await _pump(self.socket, self.outbox, BATCH_PACE_S if self.batch else 0.0)
        finally:
            await sub.unsubscribe()

    async def send_stored(self) -> None:
        """Send the stored lines after the client's seq, a page at a time."""
        while True:
            rows = await store.job_output(
                self.deps.pool, self.view.job.id, self.view.last_seq, limit=PAGE
            )
            lines = [self.view.stored_line(seq, ts, stream, ln) for seq, ts, stream, ln in rows]
            for message in self.shaped([m for m in lines if m is not None]):
                await self.send(message)
            if len(rows) < PAGE:
                return

    async def on_event(self, ev: AnyJobEvent) -> None:
        for message in self.shaped(self.view.feed(ev)):
            if isinstance(message, StreamStatus) and isinstance(ev, JobFinished):
                # Everything before the final status is queued already; it waits
                # for the history so that the job's GETs agree with it.
                final = await _recorded(self.deps, message.job)
                self.outbox.put(_encode(StreamStatus(job=final)))
                self.outbox.close()
                return
            first, last, count = _seqs(message)
            joinable = isinstance(message, StreamLines)
            self.outbox.put(_encode(message), last, first_seq=first, count=count, joinable=joinable)


SLOTS = live.Slots()


@asynccontextmanager
async def opened(socket: Socket) -> AsyncIterator[bool]:
    """Accept the socket and hold one of its caller's slots; False (and closed with
    4429) when the caller already holds them all."""
    await socket.accept()
    caller: Caller = socket.user
    with SLOTS.take(caller.key) as ok:
        if not ok:
            await socket.close(4429, f"too many live streams at once (at most {SLOTS.limit})")
        yield ok


@websocket("/api/v1/jobs/{job_id:str}/stream")
async def job_stream(socket: Socket, job_id: str) -> None:
    """The job's output after `?after=SEQ` (stored, then live) and its state; closes
    after the final status. `?batch=1` sends lines in batches."""
    async with opened(socket) as ok:
        if ok:
            await _job_stream(socket, job_id)


async def _job_stream(socket: Socket, job_id: str) -> None:
    deps: Deps = socket.app.state.deps
    try:
        after = parse_after(socket.query_params.get("after"))
        batch = parse_batch(socket.query_params.get("batch"))
    except BadParam as e:
        await socket.close(4422, close_reason(str(e)))
        return
    try:
        job = await store.get_tracked(deps.pool, parse_id(job_id, "job"))
    except ApiError:
        job = None
    if job is None:
        await socket.close(4404, "job not found")
        return
    with contextlib.suppress(*GONE):
        await JobStream(deps, socket, job, after, batch).run()


@websocket("/api/v1/events")
async def events(socket: Socket) -> None:
    """Every event as published on NATS (JSON, one per message), live from now;
    `?kinds=queued,finished` keeps only those kinds."""
    async with opened(socket) as ok:
        if ok:
            await _events(socket)


async def _events(socket: Socket) -> None:
    deps: Deps = socket.app.state.deps
    try:
        subjects = parse_kinds(socket.query_params.get("kinds"))
    except BadParam as e:
        await socket.close(4422, close_reason(str(e)))
        return
    outbox = live.Outbox(_dropped_events)

    async def forward(msg: Msg) -> None:
        outbox.put(msg.data)

    subs = [await deps.nc.subscribe(subject, cb=forward) for subject in subjects]
    try:
        with contextlib.suppress(*GONE):
            await _pump(socket, outbox)
    finally:
        for sub in subs:
            await sub.unsubscribe()
