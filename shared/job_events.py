"""Publishing one job's events: sequence numbers, batched log lines, throttled progress.

Every publisher of a job's events (a runner running it or ending it, the api cancelling
it before it started) goes through a JobEventSink that starts after the job's last event
(`open_sink`), so the seqs of one job never repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared import bus, subjects
from shared.events import (
    JOB_EVENT_KINDS,
    AnyJobEvent,
    JobLog,
    JobProgress,
    LogLine,
    Stream,
    encode,
    job_event_subject,
    read_job_event,
    utcnow,
)
from shared.models import Progress

log = logging.getLogger("plakar_cp.events")

Publish = Callable[[str, bytes, str], Awaitable[None]]

FLUSH_LINES = 500
# A log event stays far below NATS's max payload (1 MiB by default) whatever its lines
# hold: lines are at most 8 KiB (lines.py), which JSON may escape up to six times over.
FLUSH_BYTES = 256 * 1024
PROGRESS_INTERVAL_S = 1.0
# Lines that keep coming go at most every this many seconds (after the previous log
# event was acknowledged): a job printing a few thousand lines a second then makes tens
# of events a second, not one per NATS round trip, for NATS, the history and the api.
LOG_PACE_S = 0.01
# Beyond this many lines, or bytes of lines, a job's output is cut (the count of the
# lines not kept is logged): one job's output never floods NATS and the history.
MAX_LINES = 200_000
MAX_BYTES = 64 << 20


class LineBatch:
    """The lines waiting to be published, cut into log events of at most `max_lines`
    lines and `max_bytes` bytes of lines (pure)."""

    def __init__(self, max_lines: int = FLUSH_LINES, max_bytes: int = FLUSH_BYTES) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._waiting: deque[tuple[LogLine, int]] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, line: LogLine, size: int) -> None:
        self._waiting.append((line, size))
        self._bytes += size

    @property
    def full(self) -> bool:
        """Whether a whole event waits."""
        return len(self._waiting) >= self.max_lines or self._bytes >= self.max_bytes

    def take(self) -> list[LogLine]:
        """The next event's lines, oldest first (a line alone may exceed `max_bytes`)."""
        taken: list[LogLine] = []
        size = 0
        while self._waiting and len(taken) < self.max_lines:
            line, n = self._waiting[0]
            if taken and size + n > self.max_bytes:
                break
            self._waiting.popleft()
            taken.append(line)
            size += n
        self._bytes -= size
        return taken


class JobEventSink:
    """One publish at a time, each acknowledged before the next, so the job's events
    are stored in seq order even when one is published again after NATS was away.

    Lines go at once when nothing is being published (sparse output waits for no
    timer); lines logged while a publish waits for its ack, or within `pace_s` after
    it, go together next, so under load events grow up to the limits of `LineBatch` by
    themselves. When a whole event waits, the logger publishes it at once and waits for
    its ack: a job holds at most two events of lines."""

    def __init__(
        self, job_id: str, publish: Publish, first_seq: int, pace_s: float = LOG_PACE_S
    ) -> None:
        self.job_id = job_id
        self._publish = publish
        self._pace_s = pace_s
        self._seq = first_seq - 1
        self._batch = LineBatch()
        self._lock = asyncio.Lock()
        self._drainer: asyncio.Task[None] | None = None
        self._failure: Exception | None = None
        self._last_progress = 0.0
        self._stored_lines = 0
        self._stored_bytes = 0
        self._dropped_lines = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def emit(self, event: AnyJobEvent) -> None:
        """Publish a state event after the lines logged before it."""
        async with self._lock:
            await self._publish_waiting()
            await self._send(event)

    async def _send(self, event: AnyJobEvent) -> None:
        await self._publish(
            job_event_subject(event),
            encode(event),
            event.event_id,
        )

    async def log(self, stream: Stream, line: str) -> None:
        await self.log_lines(stream, [line])

    async def log_lines(self, stream: Stream, lines: list[str]) -> None:
        for line in lines:
            self._keep(stream, line)
            if self._batch.full:
                # Output faster than NATS acknowledges it: the job's output waits for
                # its lines to be stored, so the runner keeps the pace of NATS and
                # leaves the other processes of its host their share of time.
                await self.flush()

    def _keep(self, stream: Stream, line: str) -> None:
        size = len(line.encode())
        if self._stored_lines >= MAX_LINES or self._stored_bytes + size > MAX_BYTES:
            if not self._dropped_lines:
                self._append(
                    "system",
                    f"[output cut after {self._stored_lines} lines: a job keeps at most "
                    f"{MAX_LINES} lines and {MAX_BYTES >> 20} MiB]",
                )
            self._dropped_lines += 1
            return
        self._stored_lines += 1
        self._stored_bytes += size
        self._append(stream, line)

    def _append(self, stream: Stream, line: str) -> None:
        entry = LogLine(seq=self.next_seq(), ts=utcnow(), stream=stream, line=line)
        self._batch.add(entry, len(encode(entry)))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        """Publish the waiting lines as soon as the publisher is free, then those that
        came meanwhile `pace_s` later, until none wait; a failure is raised by the job's
        next flush, emit or close."""
        try:
            while self._batch:
                async with self._lock:
                    self._raise_failure()
                    if lines := self._batch.take():
                        await self._send_lines(lines)
                if self._batch:
                    await asyncio.sleep(self._pace_s)
        except Exception as e:
            self._failure = e

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    async def flush(self) -> None:
        """Publish the lines logged so far; returns once NATS has acknowledged them."""
        async with self._lock:
            await self._publish_waiting()

    async def _publish_waiting(self) -> None:
        self._raise_failure()
        while lines := self._batch.take():
            await self._send_lines(lines)

    async def _send_lines(self, lines: list[LogLine]) -> None:
        await self._send(JobLog(job_id=self.job_id, seq=lines[-1].seq, lines=lines))

    async def progress(self, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        await self.emit(JobProgress(job_id=self.job_id, seq=self.next_seq(), progress=progress))

    async def close(self) -> None:
        if self._dropped_lines:
            self._append("system", f"[{self._dropped_lines} more lines were not kept]")
        await self.flush()
        if self._drainer is not None:
            # Nothing is left for it (the flush held the publisher): no task outlives
            # the job.
            self._drainer.cancel()


async def open_sink(js: JetStreamContext, job_id: str, patience: float) -> JobEventSink:
    """A sink for the job's next events; each is published again while NATS is away, for
    up to `patience` seconds."""
    publish = partial(bus.publish, js, patience=patience)
    return JobEventSink(job_id, publish, await next_seq(js, job_id, patience))


async def next_seq(js: JetStreamContext, job_id: str, patience: float = 0.0) -> int:
    """The seq after the last event of the job, so its output goes on where it was."""
    last = 0
    for kind in JOB_EVENT_KINDS:
        try:
            raw = await bus.patiently(
                partial(js.get_last_msg, subjects.EVENTS_STREAM, subjects.job_event(job_id, kind)),
                patience,
                f"reading the last {kind} event of job {job_id}",
            )
        except NotFoundError:
            continue
        if raw.data and raw.subject:
            try:
                last = max(last, read_job_event(raw.subject, raw.data).seq)
            except Exception as e:  # not one of ours: the seqs of the others stand
                log.warning("job %s: unreadable %s event: %s", job_id, kind, e)
    return last + 1
