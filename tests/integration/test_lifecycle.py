"""The job lifecycle has one owner: random event histories (new attempts after lost
runners, cancels before or after the start, duplicates and replays delivered late, any
batching) end in the same job through `lifecycle.apply` and through the history's real
projection into PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api.store import get_tracked
from services.history import store
from services.history.projection import plan
from shared import db, lifecycle
from shared.events import (
    AnyJobEvent,
    JobFinished,
    JobLog,
    JobProgress,
    JobQueued,
    JobSkipped,
    JobStarted,
    LogLine,
)
from shared.models import Progress
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)
TASK = "6f1d2c3b-0000-4000-8000-0000000000aa"


class History:
    """Builds a job's events in stream order, each with the next seq."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.seq = 0
        self.events: list[AnyJobEvent] = []

    def add(self, make: type[AnyJobEvent], **fields: object) -> None:
        self.seq += 1
        ts = T0 + timedelta(seconds=self.seq)
        self.events.append(make(job_id=self.job_id, seq=self.seq, ts=ts, **fields))  # type: ignore[arg-type]


@st.composite
def histories(draw: st.DrawFn) -> list[AnyJobEvent]:
    h = History(str(uuid.uuid4()))
    common = {"task_id": TASK, "trigger": "schedule", "type": "backup", "due_at": T0}
    if draw(st.booleans()) and draw(st.booleans()):
        h.add(JobSkipped, **common, reason="overlap")
        return h.events
    h.add(JobQueued, **common, connector_ids=[TASK])
    if draw(st.booleans()) and draw(st.booleans()):  # cancelled before it started
        h.add(JobFinished, status="cancelled", attempt=0, error="cancelled by ann")
    for attempt in range(1, draw(st.integers(1, 3)) + 1):  # runners lost between attempts
        h.add(JobStarted, attempt=attempt, runner=f"r{attempt}", concurrency=attempt)
        for files in range(draw(st.integers(0, 3))):
            h.add(JobProgress, progress=Progress(files=files, bytes=files * 10))
            seq = h.seq + 1
            h.add(JobLog, lines=[LogLine(seq=seq, ts=T0, stream="plakar", line=f"l{seq}")])
    if draw(st.booleans()):
        status = draw(st.sampled_from(["succeeded", "failed", "cancelled"]))
        final = Progress(percent=100.0, files=9) if draw(st.booleans()) else None
        h.add(
            JobFinished,
            status=status,
            attempt=attempt,
            exit_code=0,
            snapshot_id="ab" * 32,
            progress=final,
        )
    if draw(st.booleans()):  # a cancel that comes after the end changes nothing
        h.add(JobFinished, status="cancelled", attempt=0, error="late")
    return h.events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[AnyJobEvent], list[int]]:
    """A history, delivered with duplicates and replays arriving late, in batches."""
    events = draw(histories())
    delivered = list(events)
    for _ in range(draw(st.integers(0, 4))):
        late = draw(st.sampled_from(events))
        delivered.insert(draw(st.integers(delivered.index(late) + 1, len(delivered))), late)
    cuts = sorted(draw(st.sets(st.integers(1, len(delivered)), max_size=4)) | {len(delivered)})
    return delivered, cuts


@pytest.fixture(scope="module")
def scratch(stack: Stack) -> str:
    return asyncio.run(stack.scratch_database())


def test_apply_and_the_projection_agree(scratch: str) -> None:
    async def both(events: list[AnyJobEvent], cuts: list[int]) -> None:
        expected: lifecycle.Tracked | None = None
        for ev in events:
            expected = lifecycle.apply(expected, ev)
        pool = await db.create_pool(scratch, max_size=1)
        try:
            start = 0
            for cut in cuts:
                async with pool.acquire() as conn, conn.transaction():
                    await store.apply(conn, plan(events[start:cut]))
                start = cut
            got = await get_tracked(pool, events[0].job_id)
        finally:
            await pool.close()
        assert expected is not None and got is not None
        # The link to browse a snapshot is the api's, from the store: not the lifecycle's.
        got = msgspec.structs.replace(got, job=msgspec.structs.replace(got.job, snapshot_url=None))
        assert got == expected

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(deliveries())
    def check(delivery: tuple[list[AnyJobEvent], list[int]]) -> None:
        asyncio.run(both(*delivery))

    check()
