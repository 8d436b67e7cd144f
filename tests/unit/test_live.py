"""The pure parts of live output, cancel and the events document."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import pytest

from services.api import cancel, live
from services.api.asyncapi import document
from services.api.routes.streams import BadParam, parse_after, parse_batch, parse_kinds
from services.api.validation import Invalid
from shared.claims import Claim
from shared.events import (
    JobFinished,
    JobLog,
    JobProgress,
    JobStarted,
    LogLine,
    StreamLines,
    StreamLog,
    StreamProgress,
    StreamStatus,
)
from shared.lifecycle import Tracked
from shared.models import Job, Progress
from shared.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOB_ID = "6f1d2c3b-0000-4000-8000-000000000001"


def job(status: str = "queued") -> Job:
    return Job(
        id=JOB_ID,
        task_id="6f1d2c3b-0000-4000-8000-000000000002",
        trigger="manual",
        type="backup",
        status=status,  # type: ignore[arg-type]
        due_at=T0,
        queued_at=T0,
    )


def log(*seqs: int) -> JobLog:
    lines = [LogLine(seq=n, ts=T0, stream="plakar", line=f"line {n}") for n in seqs]
    return JobLog(job_id=JOB_ID, seq=seqs[-1], lines=lines)


def started(seq: int) -> JobStarted:
    return JobStarted(job_id=JOB_ID, seq=seq, ts=T0, attempt=1, runner="r1", concurrency=2)


def finished(seq: int) -> JobFinished:
    return JobFinished(job_id=JOB_ID, seq=seq, status="succeeded", attempt=1, exit_code=0)


def lines_of(messages: Sequence[object]) -> list[int]:
    return [m.seq for m in messages if isinstance(m, StreamLog)]


def test_view_skips_what_the_client_has_and_ends_on_finished() -> None:
    view = live.JobView(Tracked(job=job(), last_seq=1), after=3)
    assert view.stored_line(3, T0, "plakar", "x") is None
    assert view.stored_line(4, T0, "plakar", "x") is not None
    # The live side starts before the seam: lines 2..4 are already there.
    assert view.feed(started(2)) == []
    assert lines_of(view.feed(log(3, 4, 5, 6))) == [5, 6]
    (progress,) = view.feed(JobProgress(job_id=JOB_ID, seq=7, progress=Progress(files=3)))
    assert isinstance(progress, StreamProgress) and progress.seq == 7
    assert view.job.progress.files == 3
    end = view.feed(finished(8))
    assert len(end) == 1 and isinstance(end[0], StreamStatus)
    assert end[0].job.status == "succeeded" and end[0].job.exit_code == 0
    assert view.finished and view.feed(log(9)) == []


def test_view_reports_the_end_even_when_after_is_beyond_it() -> None:
    view = live.JobView(Tracked(job=job("running"), last_seq=2), after=10_000)
    assert view.feed(log(5)) == []
    end = view.feed(finished(6))
    assert isinstance(end[0], StreamStatus) and end[0].job.status == "succeeded"


def test_started_becomes_a_status_message() -> None:
    view = live.JobView(Tracked(job=job(), last_seq=1), after=1)
    (status,) = view.feed(started(2))
    assert isinstance(status, StreamStatus)
    assert status.job.status == "running" and status.job.runner == "r1"
    assert status.job.started_at == T0


def test_a_started_event_the_job_already_has_is_no_news() -> None:
    view = live.JobView(Tracked(job=job("running"), last_seq=2), after=1)
    assert view.feed(started(2)) == []


def marker(d: live.Dropped) -> bytes:
    return f"dropped {d.count} {d.first_seq}-{d.last_seq}".encode()


async def test_outbox_drops_oldest_and_says_which() -> None:
    box = live.Outbox(marker, max_bytes=30)
    for seq in range(1, 11):
        box.put(b"0123456789", seq)  # 10 bytes each: three fit
    box.close()
    got = []
    while (item := await box.get()) is not None:
        got.append(item)
    assert got == [b"dropped 7 1-7", b"0123456789", b"0123456789", b"0123456789"]


async def test_outbox_counts_the_lines_of_dropped_batches() -> None:
    box = live.Outbox(marker, max_bytes=30)
    box.put(b"0123456789", 4, first_seq=1, count=4)
    box.put(b"0123456789", 5)
    for seq in (9, 12):
        box.put(b"0123456789", seq, first_seq=seq - 2, count=3)
    box.close()
    assert await box.get() == b"dropped 4 1-4"


def test_runs_of_lines_become_one_message() -> None:
    view = live.JobView(Tracked(job=job("running"), last_seq=2), after=2)
    progress = JobProgress(job_id=JOB_ID, seq=6, ts=T0, progress=Progress(percent=5))
    messages = [*view.feed(log(3, 4, 5)), *view.feed(progress), *view.feed(log(7))]
    shaped = live.batched(messages)
    assert [type(m) for m in shaped] == [StreamLines, StreamProgress, StreamLines]
    first = shaped[0]
    assert isinstance(first, StreamLines)
    assert [(ln.seq, ln.line) for ln in first.lines] == [
        (3, "line 3"),
        (4, "line 4"),
        (5, "line 5"),
    ]
    assert live.batched([]) == []


async def test_outbox_get_waits_for_put() -> None:
    box = live.Outbox(marker)
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    box.put(b"a")
    assert await waiting == b"a"
    box.close()
    box.put(b"ignored after close")
    assert await box.get() is None


def test_waiting_batches_of_lines_go_as_one_message() -> None:
    encode = msgspec.json.encode
    batches = [
        [LogLine(seq=n, ts=T0, stream="plakar", line=f"l{n}") for n in seqs]
        for seqs in ([1, 2], [3], [4, 5])
    ]
    parts = [encode(StreamLines(lines=b)) for b in batches]
    assert live.join_lines(parts) == encode(StreamLines(lines=[ln for b in batches for ln in b]))
    assert live.join_lines(parts[:1]) == parts[0]


async def test_outbox_joins_what_waits_together_and_counts_it_when_dropped() -> None:
    box = live.Outbox(marker, max_bytes=64, join=lambda parts: b"+".join(parts))
    box.put(b"a", 1, joinable=True)
    box.put(b"b", 3, first_seq=2, count=2, joinable=True)
    box.put(b"status")  # not joinable: what comes after it is another message
    box.put(b"c", 4, joinable=True)
    box.put(b"d" * 10, 5, joinable=True)
    box.put(b"e" * 10, 6, joinable=True)  # a message holds at most a quarter of the box
    assert [await box.get() for _ in range(4)] == [b"a+b", b"status", b"c+" + b"d" * 10, b"e" * 10]
    for seq in (7, 8, 9, 10):
        box.put(b"f" * 8, seq, joinable=True)  # two by two
    for seq in (11, 12, 13):
        box.put(b"g" * 16, seq)
    box.close()
    assert await box.get() == b"dropped 2 7-8"  # the joined lines 7 and 8 went together
    assert await box.get() == b"f" * 8 + b"+" + b"f" * 8


def test_cancel_plan() -> None:
    running = Claim(state="running", attempt=1, runner="r1")
    assert isinstance(cancel.plan("queued", None), cancel.EndQueued)
    assert isinstance(cancel.plan("queued", running), cancel.StopRunning)
    assert isinstance(cancel.plan("running", running), cancel.StopRunning)
    for status in ("succeeded", "failed", "cancelled", "skipped"):
        refused = cancel.plan(status, None)
        assert isinstance(refused, cancel.Refuse) and status in refused.reason
    assert isinstance(cancel.plan("running", Claim(state="done", attempt=1)), cancel.Refuse)
    again = cancel.plan(
        "running", Claim(state="cancelled", attempt=1, cancel_by="ann", cancel_at=T0)
    )
    assert isinstance(again, cancel.Refuse) and "ann" in again.reason


def test_who_cancels() -> None:
    assert cancel.who(None, "ops token") == "ops token"
    assert cancel.who("  ann ", "ops token") == "ann"
    for wrong in ("", "   ", "a\nb", "x" * 65):
        with pytest.raises(Invalid) as e:
            cancel.who(wrong, "ops token")
        assert e.value.field == "by"


def test_query_parameters() -> None:
    assert parse_after(None) == 0 and parse_after("42") == 42
    for wrong in ("-1", "x", "1.5"):
        with pytest.raises(BadParam):
            parse_after(wrong)
    assert parse_kinds(None) == ["plakar.events.>"]
    assert parse_kinds("queued,fired") == [
        "plakar.events.job.*.queued",
        "plakar.events.schedule.*.fired",
    ]
    with pytest.raises(BadParam, match="kinds"):
        parse_kinds("queued,nope")
    assert parse_batch(None) is False and parse_batch("0") is False and parse_batch("1") is True
    with pytest.raises(BadParam, match="batch"):
        parse_batch("yes")


def test_asyncapi_document_has_every_payload() -> None:
    settings = Settings(events_nats_url="nats://events:pw-5519@10.0.0.1:4222")
    doc = json.loads(msgspec.json.encode(document(settings, "cp.example:8470")))
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["nats"]["host"] == "10.0.0.1:4222"
    assert "pw-5519" not in json.dumps(doc)
    schemas = doc["components"]["schemas"]
    for name in (
        "JobQueued",
        "JobLog",
        "JobFinished",
        "ScheduleFired",
        "StreamLog",
        "StreamLines",
        "JobFailedNotice",
        "JobRecoveredNotice",
    ):
        assert name in schemas
    for channel in doc["channels"].values():
        for ref in channel["messages"].values():
            name = ref["$ref"].rsplit("/", 1)[1]
            assert doc["components"]["messages"][name]["payload"]["$ref"].endswith(name)
    kinds = doc["channels"]["jobEvents"]["parameters"]["kind"]["enum"]
    assert set(kinds) == {"queued", "skipped", "started", "progress", "log", "finished"}
