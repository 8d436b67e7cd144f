"""The job history's facts and filters: bytes added, the date range of GET /jobs, how a
batch of events is written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.store import ZERO_ID, _page_bound
from services.api.validation import Invalid, check_instant, check_period
from services.history.projection import plan
from services.runner.plakar_output import OutputState
from services.runner.progress import ProgressTracker
from shared.events import JobFinished, JobLog, JobQueued, JobSkipped, JobStarted, LogLine
from shared.lifecycle import apply
from tests.unit import plakar_lines as real

JOB = "0b1c5a52-65f7-4f5e-9d43-6f0a1a3d2b10"


def tracked_bytes(text: str) -> int | None:
    out, tracker = OutputState(), ProgressTracker()
    for line in text.splitlines():
        out.feed(line)
        tracker.feed(out)
    return tracker.bytes_added


def test_bytes_added_are_what_plakar_wrote_to_the_store() -> None:
    assert tracked_bytes(real.BACKUP) == int(1.2 * 1024 * 1024)
    assert tracked_bytes(real.CHECK) == 0
    # No result line (restore, sync, a failed run): not known.
    assert tracked_bytes(real.SYNC) is None
    assert tracked_bytes(real.OPEN_FAILED) is None


def test_the_job_keeps_the_bytes_its_finished_event_tells() -> None:
    at = datetime(2025, 1, 31, tzinfo=UTC)
    queued = JobQueued(job_id=JOB, seq=1, task_id=JOB, trigger="manual", type="backup", due_at=at)
    done = JobFinished(job_id=JOB, seq=2, status="succeeded", attempt=1, bytes_added=4096)
    tracked = apply(apply(None, queued), done)
    assert tracked is not None and tracked.job.bytes_added == 4096


def test_started_events_that_come_after_the_end_still_tell_the_start_and_runner() -> None:
    at = datetime(2025, 1, 31, tzinfo=UTC)
    queued = JobQueued(job_id=JOB, seq=1, task_id=JOB, trigger="manual", type="backup", due_at=at)
    first = JobStarted(job_id=JOB, seq=2, ts=at, attempt=1, runner="r1", concurrency=1)
    second = JobStarted(
        job_id=JOB, seq=5, ts=at.replace(hour=1), attempt=2, runner="r2", concurrency=2
    )
    done = JobFinished(job_id=JOB, seq=8, status="succeeded", attempt=2)
    in_order = last_first = None
    for ev in (queued, first, second, done):
        in_order = apply(in_order, ev)
    for ev in (queued, done, second, first):
        last_first = apply(last_first, ev)
    assert in_order is not None and last_first == in_order
    assert (in_order.job.started_at, in_order.job.runner, in_order.job.concurrency) == (at, "r2", 2)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2025-01-31T00:00:00Z", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31t01:30:00.5+01:30", datetime(2025, 1, 31, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2025-01-30T23:00:00-01:00", datetime(2025, 1, 31, tzinfo=UTC)),
    ],
)
def test_instants_are_rfc_3339(text: str, instant: datetime) -> None:
    assert check_instant(text, "since") == instant


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-31",  # a date alone
        "2025-01-31T00:00:00",  # no offset: which zone?
        "2025-01-31 00:00:00Z",
        "2025-02-30T00:00:00Z",  # no such day
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "yesterday",
    ],
)
def test_other_instants_are_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(Invalid) as e:
        check_instant(text, "until")
    assert e.value.field == "until"


def test_a_period_ends_after_it_starts() -> None:
    assert check_period(None, None) == (None, None)
    start, end = check_period("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")
    assert start is not None and end is not None and start < end
    with pytest.raises(Invalid) as e:
        check_period("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
    assert e.value.field == "until"


def test_a_page_starts_below_the_cursor_and_until() -> None:
    early, late = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    cursor = (late, JOB)
    assert _page_bound(None, None) is None
    assert _page_bound(cursor, None) == cursor
    assert _page_bound(None, late) == (late, ZERO_ID)
    # The lower of the two: a cursor past `until` cannot bring back later jobs.
    assert _page_bound(cursor, early) == (early, ZERO_ID)
    assert _page_bound((early, JOB), late) == (early, JOB)
    assert _page_bound(cursor, late) == (late, ZERO_ID)


def test_a_batch_writes_its_queued_events_together_before_the_others() -> None:
    """A job's queued event is its first: the batch's queued (and skipped) events are
    written together, first, and every other state event keeps its order."""
    other = "9e0c5a52-65f7-4f5e-9d43-6f0a1a3d2b11"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    queued = [
        JobQueued(job_id=job, seq=1, task_id=job, trigger="manual", type="check", due_at=at)
        for job in (JOB, other)
    ]
    skipped = JobSkipped(
        job_id=ZERO_ID, seq=1, task_id=JOB, trigger="schedule", type="check", due_at=at, reason="x"
    )
    started = JobStarted(job_id=JOB, seq=2, attempt=1, runner="r", concurrency=1)
    lines = JobLog(job_id=JOB, seq=3, lines=[LogLine(seq=1, ts=at, stream="plakar", line="a")])
    finished = JobFinished(job_id=JOB, seq=4, status="succeeded", attempt=1)
    batch = plan([queued[0], started, lines, queued[1], skipped, finished])
    assert batch.queued == [queued[0], queued[1], skipped]
    assert batch.state == [started, finished]
    assert batch.lines == [(JOB, lines.lines[0])]
