"""When a job's lines are published: at once when output is sparse, batched while a
publish waits for its ack, never out of seq order (driven step by step: the test
acknowledges each publish itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec
import pytest

from shared import subjects
from shared.events import (
    AnyJobEvent,
    JobLog,
    JobProgress,
    LogLine,
    MisplacedEvent,
    encode,
    read_job_event,
)
from shared.job_events import FLUSH_LINES, JobEventSink, LineBatch
from shared.models import Progress

JOB = "6f1d2c3b-0000-4000-8000-000000000002"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Nats:
    """Publishes that wait until the test acknowledges them, one by one."""

    def __init__(self) -> None:
        self.sent: list[AnyJobEvent] = []
        self._acks: list[asyncio.Future[None]] = []

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> None:
        self.sent.append(read_job_event(subject, payload))  # each under its own subject
        ack = asyncio.get_running_loop().create_future()
        self._acks.append(ack)
        await ack

    @property
    def in_flight(self) -> int:
        return sum(not a.done() for a in self._acks)

    def ack(self, error: Exception | None = None) -> None:
        [ack] = [a for a in self._acks if not a.done()]
        if error is None:
            ack.set_result(None)
        else:
            ack.set_exception(error)

    def lines(self) -> list[list[str]]:
        return [[ln.line for ln in e.lines] for e in self.sent if isinstance(e, JobLog)]


async def settled() -> None:
    """Let every task run until all wait on something the test controls (nothing here
    waits on time or I/O, so a few turns of the loop are enough)."""
    for _ in range(10):
        await asyncio.sleep(0)


def driven(test: Callable[[Nats, JobEventSink], Awaitable[None]], pace_s: float = 0.0) -> None:
    """Run the test's steps on a sink (without pace unless given: the steps set when
    acks come, never how long anything takes)."""

    async def run() -> None:
        nats = Nats()
        await test(nats, JobEventSink(JOB, nats.publish, 1, pace_s=pace_s))

    asyncio.run(asyncio.wait_for(run(), 10))


def test_a_lone_line_is_published_at_once() -> None:
    async def steps(nats: Nats, sink: JobEventSink) -> None:
        await sink.log("plakar", "one")
        await settled()
        assert nats.lines() == [["one"]]  # no timer: it went before any other line came
        nats.ack()
        await settled()
        await sink.log("plakar", "two")
        await settled()
        assert nats.lines() == [["one"], ["two"]]
        nats.ack()
        await sink.close()

    driven(steps)


def test_lines_logged_while_a_publish_waits_go_together_after_its_ack() -> None:
    async def steps(nats: Nats, sink: JobEventSink) -> None:
        await sink.log("plakar", "a")
        await settled()
        for line in "bcd":
            await sink.log("plakar", line)
        await settled()
        assert nats.lines() == [["a"]] and nats.in_flight == 1  # one publish at a time
        nats.ack()
        await settled()
        assert nats.lines() == [["a"], ["b", "c", "d"]]
        nats.ack()
        await settled()
        assert nats.in_flight == 0
        await sink.close()
        assert len(nats.sent) == 2

    driven(steps)


def test_a_logger_faster_than_the_acks_waits_with_at_most_one_event_of_lines() -> None:
    async def steps(nats: Nats, sink: JobEventSink) -> None:
        await sink.log("plakar", "0")
        await settled()
        logger = asyncio.create_task(many(sink, 1, 2 * FLUSH_LINES))
        await settled()
        assert not logger.done()  # a whole event waits behind the one in flight
        assert nats.lines() == [["0"]]
        nats.ack()
        await settled()
        assert nats.lines()[1] == [str(i) for i in range(1, FLUSH_LINES + 1)]
        while not logger.done():
            nats.ack()
            await settled()
        while nats.in_flight:
            nats.ack()
            await settled()
        sent = [int(line) for batch in nats.lines() for line in batch]
        assert sent == list(range(2 * FLUSH_LINES + 1))
        assert max(len(batch) for batch in nats.lines()) == FLUSH_LINES
        await sink.close()

    driven(steps)


def test_lines_that_keep_coming_wait_for_the_pace_unless_flushed() -> None:
    async def steps(nats: Nats, sink: JobEventSink) -> None:
        await sink.log("plakar", "a")
        await settled()
        await sink.log("plakar", "b")
        nats.ack()
        await settled()
        assert nats.lines() == [["a"]]  # b came during the publish: it waits for the pace
        flushing = asyncio.create_task(sink.flush())
        await settled()
        assert nats.lines() == [["a"], ["b"]]  # a flush (a state event, the end) waits not
        nats.ack()
        await flushing
        await sink.close()

    driven(steps, pace_s=3600)


async def many(sink: JobEventSink, first: int, count: int) -> None:
    for i in range(first, first + count):
        await sink.log("plakar", str(i))


def test_a_state_event_waits_for_the_lines_logged_before_it() -> None:
    async def steps(nats: Nats, sink: JobEventSink) -> None:
        await sink.log("plakar", "a")
        await settled()
        await sink.log("plakar", "b")
        progress = asyncio.create_task(sink.progress(Progress(percent=50), force=True))
        await settled()
        assert nats.lines() == [["a"]]
        while not progress.done():
            nats.ack()
            await settled()
        await sink.log("plakar", "c")
        await settled()
        nats.ack()
        await sink.close()
        assert [type(e) for e in nats.sent] == [JobLog, JobLog, JobProgress, JobLog]
        assert [e.seq for e in nats.sent] == [1, 2, 3, 4]

    driven(steps)


def test_a_failed_publish_is_raised_to_the_job_and_later_lines_still_go() -> None:
    async def steps(nats: Nats, sink: JobEventSink) -> None:
        await sink.log("plakar", "lost")
        await settled()
        nats.ack(ConnectionError("NATS away too long"))
        await settled()
        with pytest.raises(ConnectionError):
            await sink.flush()
        await sink.log("system", "job failed")
        await settled()
        nats.ack()
        await sink.close()
        assert nats.lines() == [["lost"], ["job failed"]]

    driven(steps)


def line(seq: int, text: str = "x") -> LogLine:
    return LogLine(seq=seq, ts=T0, stream="plakar", line=text)


def test_a_batch_is_cut_at_its_line_and_byte_limits() -> None:
    batch = LineBatch(max_lines=3, max_bytes=100)
    for seq in range(1, 5):
        batch.add(line(seq), 10)
    assert batch.full
    assert [ln.seq for ln in batch.take()] == [1, 2, 3]
    assert not batch.full and len(batch) == 1
    batch.add(line(5), 85)
    batch.add(line(6), 10)
    assert batch.full  # 105 bytes wait
    assert [ln.seq for ln in batch.take()] == [4, 5]  # 95 bytes: the next would pass 100
    assert [ln.seq for ln in batch.take()] == [6]
    assert batch.take() == [] and not batch.full


def test_a_line_larger_than_the_byte_limit_goes_alone() -> None:
    batch = LineBatch(max_lines=10, max_bytes=100)
    batch.add(line(1), 150)
    batch.add(line(2), 10)
    assert [ln.seq for ln in batch.take()] == [1]
    assert [ln.seq for ln in batch.take()] == [2]


def test_an_event_is_read_only_under_its_own_subject() -> None:
    progress = JobProgress(job_id=JOB, seq=3, progress=Progress(files=1))
    raw = encode(progress)
    assert read_job_event(subjects.job_event(JOB, "progress"), raw) == progress
    other_job = "6f1d2c3b-0000-4000-8000-000000000003"
    for subject in (subjects.job_event(JOB, "finished"), subjects.job_event(other_job, "progress")):
        with pytest.raises(MisplacedEvent, match=f"a progress event of job {JOB}"):
            read_job_event(subject, raw)
    with pytest.raises(msgspec.ValidationError):
        read_job_event(subjects.job_event(JOB, "log"), b'{"kind": "lines"}')
