"""Publishing one job's events: sequence numbers, batched log lines, throttled progress.

Every publisher of a job's events (a runner running it or ending it, the api cancelling
it before it started) goes through a JobEventSink that starts after the job's last event
(`open_sink`), so the seqs of one job never repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
    decode_job_event,
    encode,
    utcnow,
)
from shared.models import Progress

log = logging.getLogger("plakar_cp.events")

Publish = Callable[[str, bytes, str], Awaitable[None]]

FLUSH_LINES = 500
# A log event stays far below NATS's max payload (1 MiB by default) whatever its lines
# hold: lines are at most 8 KiB (lines.py), which JSON may escape up to six times over.
FLUSH_BYTES = 256 * 1024
FLUSH_INTERVAL_S = 0.1
PROGRESS_INTERVAL_S = 1.0
# Beyond this many lines, or bytes of lines, a job's output is cut (the count of the
# lines not kept is logged): one job's output never floods NATS and the history.
MAX_LINES = 200_000
MAX_BYTES = 64 << 20


class JobEventSink:
    def __init__(self, job_id: str, publish: Publish, first_seq: int) -> None:
        self.job_id = job_id
        self._publish = publish
        self._seq = first_seq - 1
        self._lines: list[LogLine] = []
        self._bytes = 0
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._last_progress = 0.0
        self._pending_progress: Progress | None = None
        self._stored_lines = 0
        self._stored_bytes = 0
        self._dropped_lines = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def emit(self, event: AnyJobEvent) -> None:
        """Publish a state event after the lines logged before it."""
        await self.flush()
        await self._send(event)

    async def _send(self, event: AnyJobEvent) -> None:
        await self._publish(
            subjects.job_event(self.job_id, event.__struct_config__.tag or "event"),  # type: ignore[arg-type]
            encode(event),
            event.event_id,
        )

    async def log(self, stream: Stream, line: str) -> None:
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
        if len(self._lines) >= FLUSH_LINES or self._bytes >= FLUSH_BYTES:
            await self.flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    def _append(self, stream: Stream, line: str) -> None:
        entry = LogLine(seq=self.next_seq(), ts=utcnow(), stream=stream, line=line)
        self._lines.append(entry)
        self._bytes += len(encode(entry))

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._lines:
                return
            lines, self._lines, self._bytes = self._lines, [], 0
            await self._send(JobLog(job_id=self.job_id, seq=lines[-1].seq, lines=lines))

    async def progress(self, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        await self.emit(JobProgress(job_id=self.job_id, seq=self.next_seq(), progress=progress))

    async def close(self) -> None:
        if self._flusher and not self._flusher.done():
            self._flusher.cancel()
        if self._dropped_lines:
            self._append("system", f"[{self._dropped_lines} more lines were not kept]")
        await self.flush()


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
        if raw.data:
            try:
                last = max(last, decode_job_event(raw.data).seq)
            except Exception as e:  # not one of ours: the seqs of the others stand
                log.warning("job %s: unreadable %s event: %s", job_id, kind, e)
    return last + 1
