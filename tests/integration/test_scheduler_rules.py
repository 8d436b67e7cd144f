"""The scheduler's rules, in-process against a fake clock (in seconds, not minutes): start
times, overlaps, restarts of the control plane (a journalised schedule catches up once, a
non-journalised one starts afresh), failovers, re-enabling, publishing again what could
not be published. The active scheduler is the real one, on a real PostgreSQL (a database
of each test's own); what it publishes is recorded instead of sent.
(test_schedules.py fires a real schedule on a real minute, end to end.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from services.api import schedules_store
from services.api.validation import ScheduleSpec
from services.scheduler.active import READ_AHEAD, RECONCILE, RETRY_PUBLISH, Active
from services.scheduler.clock import FakeClock
from services.scheduler.freshness_watch import LOOK_EVERY
from services.scheduler.retrying import AGAIN_AFTER
from shared import db
from shared.dispatch import Message
from shared.events import FreshnessLost, FreshnessRestored, JobDue, JobQueued, JobSkipped
from shared.retries import retry_job_id
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 6, 1, 10, 0, 30, tzinfo=UTC)


class Recorder:
    """Stands for NATS: keeps what the scheduler publishes; can fail on demand."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.fail = 0

    async def publish(self, messages: Sequence[Message]) -> None:
        if self.fail:
            self.fail -= 1
            raise TimeoutError("NATS away")
        self.messages.extend(messages)

    def jobs(self) -> list[JobQueued]:
        """The jobs queued or skipped, in order."""
        found = []
        for m in self.messages:
            if m.subject.endswith((".queued", ".skipped")):
                found.append(msgspec.json.decode(m.payload, type=JobQueued | JobSkipped))
        return found


class Rig:
    """A scheduler database with one task, the fake clock, and an active scheduler."""

    def __init__(self, pool: db.Pool, clock: FakeClock, recorder: Recorder) -> None:
        self.pool = pool
        self.clock = clock
        self.recorder = recorder
        self.active: Active | None = None
        self._running: asyncio.Task[None] | None = None

    async def task(self) -> str:
        source, store, task = (str(uuid.uuid4()) for _ in range(3))
        await self.pool.executemany(
            "INSERT INTO connectors (id, name, role, location) VALUES ($1, $2, $3, $4)",
            [(source, source, "source", "/src"), (store, store, "store", "/store")],
        )
        await self.pool.execute(
            "INSERT INTO tasks (id, type, source_id, store_id) VALUES ($1, 'backup', $2, $3)",
            task,
            source,
            store,
        )
        return task

    async def schedule(
        self,
        task: str,
        every: timedelta = MINUTE,
        start: datetime | None = None,
        journalised: bool = True,
    ) -> str:
        spec = ScheduleSpec(
            recurrence="custom",
            interval_minutes=int(every / MINUTE),
            start_at=start,
            journalised=journalised,
            enabled=True,
        )
        (schedule_id,) = await schedules_store.insert(self.pool, task, [spec])
        if self.active:
            self.active.changed(schedule_id)
        return schedule_id

    async def start(self, session_started: datetime | None = None) -> None:
        started = session_started or self.clock.now().replace(microsecond=0)
        self.active = Active(self.pool, self.clock, self.recorder.publish, started)
        self._running = asyncio.create_task(self.active.run())
        await self.settle()

    async def stop(self) -> None:
        assert self._running is not None
        self._running.cancel()
        await asyncio.gather(self._running, return_exceptions=True)
        self.active = None

    async def settle(self) -> None:
        """Until the scheduler waits again with nothing left to do."""
        assert self._running is not None
        quiet = 0
        for _ in range(2000):
            await asyncio.sleep(0.002)
            if self._running.done():
                self._running.result()  # raises what it raised
            idle = self.clock.parked and self.active is not None and self.active.inbox.empty()
            quiet = quiet + 1 if idle else 0
            if quiet >= 3:
                return
        raise AssertionError("the scheduler did not settle")

    async def at(self, when: datetime) -> None:
        """Move the clock to `when` (in steps no longer than a minute), settling after each."""
        while self.clock.now() < when:
            self.clock.advance(min(MINUTE, when - self.clock.now()))
            await self.settle()

    async def next_run(self, schedule_id: str) -> datetime | None:
        at: datetime | None = await self.pool.fetchval(
            "SELECT next_run_at FROM schedule_journal WHERE schedule_id = $1", schedule_id
        )
        return at


@pytest.fixture
async def rig(stack: Stack) -> AsyncIterator[Rig]:
    pool = await db.create_pool(await stack.scratch_database(), max_size=4)
    try:
        rig = Rig(pool, FakeClock(T0), Recorder())
        yield rig
        if rig.active:
            await rig.stop()
    finally:
        await pool.close()


def due(jobs: Sequence[JobQueued]) -> list[datetime]:
    return [j.due_at for j in jobs]


async def test_a_start_time_is_kept_to_the_second_and_disabling_stops_it(rig: Rig) -> None:
    task = await rig.task()
    start = datetime(2026, 6, 1, 10, 2, tzinfo=UTC)
    await rig.start()
    schedule = await rig.schedule(task, start=start)
    await rig.settle()
    assert await rig.next_run(schedule) == start
    await rig.at(start - timedelta(seconds=1))
    assert rig.recorder.jobs() == []
    await rig.at(start)
    (first,) = rig.recorder.jobs()
    assert first.due_at == start and isinstance(first, JobQueued) and first.schedule_id == schedule
    assert await rig.next_run(schedule) == start + MINUTE
    await rig.at(start + MINUTE)
    assert due(rig.recorder.jobs()) == [start, start + MINUTE]

    await rig.pool.execute(
        "UPDATE schedules SET enabled = false, revision = revision + 1 WHERE id = $1", schedule
    )
    assert rig.active is not None
    rig.active.changed(schedule)
    await rig.settle()
    await rig.at(start + 5 * MINUTE)
    assert len(rig.recorder.jobs()) == 2


async def test_firings_that_overlap_a_job_of_the_task_are_skipped(rig: Rig) -> None:
    task = await rig.task()
    start = datetime(2026, 6, 1, 10, 1, tzinfo=UTC)
    await rig.start()
    a = await rig.schedule(task, start=start)
    b = await rig.schedule(task, start=start)
    await rig.at(start)
    ran, skipped = sorted(rig.recorder.jobs(), key=lambda j: isinstance(j, JobSkipped))
    assert isinstance(skipped, JobSkipped) and not isinstance(ran, JobSkipped)
    assert {ran.schedule_id, skipped.schedule_id} == {a, b}
    assert skipped.reason == f"job {ran.job_id} of this task is still queued"

    # The history says the job runs: the next firings overlap it too.
    await rig.pool.execute(
        """INSERT INTO jobs (id, task_id, trigger, type, status, due_at, queued_at)
           VALUES ($1, $2, 'schedule', 'backup', 'running', $3, $3)""",
        ran.job_id,
        task,
        start,
    )
    await rig.at(start + MINUTE)
    later = rig.recorder.jobs()[2:]
    assert len(later) == 2 and all(isinstance(j, JobSkipped) for j in later)
    reasons = {j.reason for j in later if isinstance(j, JobSkipped)}
    assert reasons == {f"job {ran.job_id} of this task is still running"}


async def test_a_restart_catches_up_once_or_starts_afresh(rig: Rig) -> None:
    """Three minutes down: the journalised schedule fires once at once (for the first run
    missed) then goes on from there; the non-journalised one first fires one interval
    after the restart."""
    kept, reset = await rig.task(), await rig.task()
    await rig.start()
    journalised = await rig.schedule(kept, journalised=True)
    fresh = await rig.schedule(reset, journalised=False)
    await rig.settle()
    assert due(rig.recorder.jobs()) == [T0.replace(microsecond=0)] * 2  # both start at once
    missed = await rig.next_run(journalised)
    await rig.stop()

    rig.clock.advance(3 * MINUTE + timedelta(seconds=7))  # down: three runs fall in here
    restart = rig.clock.now()
    await rig.start(session_started=restart)
    jobs = rig.recorder.jobs()[2:]
    assert [(j.task_id, j.due_at) for j in jobs] == [(kept, missed)]  # one catch-up, no burst
    assert await rig.next_run(journalised) == restart + MINUTE
    assert await rig.next_run(fresh) == restart + MINUTE

    await rig.at(restart + MINUTE)
    jobs = rig.recorder.jobs()[3:]
    assert sorted((j.task_id, j.due_at) for j in jobs) == sorted(
        [(kept, restart + MINUTE), (reset, restart + MINUTE)]
    )


async def test_a_failover_keeps_the_timing(rig: Rig) -> None:
    task = await rig.task()
    session = T0.replace(microsecond=0)
    await rig.start(session_started=session)
    schedule = await rig.schedule(task, every=10 * MINUTE, journalised=False)
    await rig.settle()
    planned = await rig.next_run(schedule)
    await rig.stop()
    rig.clock.advance(timedelta(seconds=12))  # the standby takes over: the same session
    await rig.start(session_started=session)
    assert await rig.next_run(schedule) == planned
    assert len(rig.recorder.jobs()) == 1


async def test_re_enabling_catches_up_at_most_once(rig: Rig) -> None:
    task = await rig.task()
    await rig.start()
    schedule = await rig.schedule(task)
    await rig.settle()
    await rig.pool.execute(
        "UPDATE schedules SET enabled = false, revision = revision + 1 WHERE id = $1", schedule
    )
    assert rig.active is not None
    rig.active.changed(schedule)
    await rig.at(T0 + 5 * MINUTE)
    await rig.pool.execute(
        "UPDATE schedules SET enabled = true, revision = revision + 1 WHERE id = $1", schedule
    )
    rig.active.changed(schedule)
    await rig.settle()
    await rig.at(T0 + 5 * MINUTE + timedelta(seconds=1))
    assert len(rig.recorder.jobs()) == 2  # the first run, then one catch-up


async def test_firings_not_published_are_published_again_with_the_same_ids(rig: Rig) -> None:
    task = await rig.task()
    start = datetime(2026, 6, 1, 10, 1, tzinfo=UTC)
    await rig.start()
    await rig.schedule(task, start=start)
    rig.recorder.fail = 1
    await rig.at(start)
    assert rig.recorder.jobs() == []
    await rig.at(start + RETRY_PUBLISH)
    (job,) = rig.recorder.jobs()
    assert job.due_at == start
    unpublished = await rig.pool.fetchval(
        "SELECT count(*) FROM schedule_journal WHERE NOT published"
    )
    assert unpublished == 0


async def test_a_burst_is_armed_and_fired_together_every_job_stored_before_its_due(
    rig: Rig,
) -> None:
    """Schedules of many tasks changed at once (a bulk edit) and due at one instant: one
    job each; every queued event is published before its job-due and fired event (in a
    chunk of firings: all queued events first)."""
    tasks = [await rig.task() for _ in range(30)]
    start = datetime(2026, 6, 1, 10, 2, tzinfo=UTC)
    await rig.start()
    schedules = [await rig.schedule(task, start=start) for task in tasks]
    await rig.settle()
    assert {await rig.next_run(s) for s in schedules} == {start}
    await rig.at(start)
    assert sorted(j.task_id for j in rig.recorder.jobs()) == sorted(tasks)
    sent = [m.subject for m in rig.recorder.messages]
    queued = [i for i, s in enumerate(sent) if s.endswith(".queued")]
    later = [i for i, s in enumerate(sent) if s.endswith(".fired") or ".jobs.due." in s]
    assert len(queued) == len(tasks) and len(later) == 2 * len(tasks)
    assert max(queued) < min(later)


async def test_what_changed_after_it_was_read_ahead_fires_as_the_database_says(
    rig: Rig,
) -> None:
    """The schedules due next are read ahead of their instant, with their tasks. A task
    changed and a schedule disabled after that, the scheduler told of neither (their
    events lost), fire as the database says at the instant: the job carries the task as
    changed, the disabled schedule does not fire."""
    edited, other = await rig.task(), await rig.task()
    start = datetime(2026, 6, 1, 10, 2, tzinfo=UTC)
    await rig.start()
    kept = await rig.schedule(edited, start=start)
    disabled = await rig.schedule(other, start=start)
    await rig.at(start - READ_AHEAD / 2)
    assert rig.active is not None and rig.active._ahead is not None
    assert set(rig.active._ahead.entries) == {kept, disabled}
    assert len(rig.active._ahead.dues) == 2  # their job-dues made ahead, of the tasks as read

    await rig.pool.execute(
        "UPDATE tasks SET labels = '{edited}', updated_at = now() WHERE id = $1", edited
    )
    await rig.pool.execute(
        "UPDATE schedules SET enabled = false, revision = revision + 1 WHERE id = $1", disabled
    )
    await rig.at(start)
    (job,) = rig.recorder.jobs()
    assert job.schedule_id == kept
    (due_message,) = [m for m in rig.recorder.messages if ".jobs.due." in m.subject]
    assert msgspec.json.decode(due_message.payload, type=JobDue).task.labels == ["edited"]
    # Fired as the scheduler decided it, not when it was published.
    assert job.ts == start
    await rig.at(start + 3 * MINUTE)
    assert {j.schedule_id for j in rig.recorder.jobs()} == {kept}


async def test_a_change_never_announced_is_armed_by_the_reconciliation(rig: Rig) -> None:
    task = await rig.task()
    await rig.start()
    spec = ScheduleSpec(
        recurrence="custom", interval_minutes=1, start_at=None, journalised=True, enabled=True
    )
    (schedule,) = await schedules_store.insert(rig.pool, task, [spec])  # no change event
    await rig.settle()
    assert await rig.next_run(schedule) is None
    await rig.at(T0 + RECONCILE)
    assert await rig.next_run(schedule) is not None
    assert [j.schedule_id for j in rig.recorder.jobs()] == [schedule]


async def test_a_failed_job_is_retried_after_its_delay_as_often_as_its_task_says(
    rig: Rig,
) -> None:
    """The history is played by hand: each job the scheduler queues is inserted as the
    history would, then ended as the test says."""
    task = await rig.task()
    await rig.pool.execute(
        "UPDATE tasks SET retry_attempts = 2, retry_delay_s = 300 WHERE id = $1", task
    )

    async def ended(job_id: str, status: str, at: datetime, left: int, of: str | None) -> None:
        await rig.pool.execute(
            """INSERT INTO jobs (id, task_id, trigger, type, status, due_at, queued_at,
                                 finished_at, retries_left, retry_of)
               VALUES ($1, $2, 'manual', 'backup', $3, $4, $4, $5, $6, $7)""",
            job_id,
            task,
            status,
            at - MINUTE,
            at,
            left,
            of,
        )

    await rig.start()
    first = str(uuid.uuid4())
    await ended(first, "failed", T0, 2, None)
    await rig.at(T0 + 5 * MINUTE - timedelta(seconds=1))
    assert rig.recorder.jobs() == []
    await rig.at(T0 + 5 * MINUTE)
    (retry,) = rig.recorder.jobs()
    assert (retry.job_id, retry.trigger, retry.retry_of) == (retry_job_id(first), "retry", first)
    assert (retry.due_at, retry.retries_left, retry.task_id) == (T0 + 5 * MINUTE, 1, task)
    # Its queued event is stored before its job-due, as every job's.
    subjects = [m.subject for m in rig.recorder.messages]
    assert subjects[0].endswith(".queued") and subjects[1].startswith("plakar.jobs.due."), subjects

    # Not published again while the history has not recorded it.
    await rig.at(T0 + 7 * MINUTE)
    assert len(rig.recorder.jobs()) == 1

    # It fails too: retried once more, whose failure has no retry left.
    await ended(retry.job_id, "failed", T0 + 8 * MINUTE, 1, first)
    rig.recorder.fail = 1  # NATS away at first: tried again shortly
    await rig.at(T0 + 13 * MINUTE)
    assert len(rig.recorder.jobs()) == 1
    await rig.at(T0 + 13 * MINUTE + AGAIN_AFTER)
    second = rig.recorder.jobs()[1]
    assert (second.retry_of, second.retries_left) == (retry.job_id, 0)
    await ended(second.job_id, "failed", T0 + 14 * MINUTE, 0, retry.job_id)
    await rig.at(T0 + 30 * MINUTE)
    assert len(rig.recorder.jobs()) == 2


async def test_only_the_last_failed_run_of_a_task_with_a_policy_is_retried(rig: Rig) -> None:
    """Cancelled runs are not retried, a failure a later run superseded is not, nor one of
    a task whose policy was removed."""
    with_policy, without = await rig.task(), await rig.task()
    await rig.pool.execute(
        "UPDATE tasks SET retry_attempts = 3, retry_delay_s = 60 WHERE id = $1", with_policy
    )
    rows = [
        (with_policy, "failed", T0),  # superseded by the cancelled run after it
        (with_policy, "cancelled", T0 + MINUTE),
        (without, "failed", T0),  # its policy was removed after it was queued
    ]
    await rig.pool.executemany(
        """INSERT INTO jobs (id, task_id, trigger, type, status, due_at, queued_at,
                             finished_at, retries_left)
           VALUES ($1, $2, 'schedule', 'backup', $3, $4, $4, $4, 3)""",
        [(str(uuid.uuid4()), task, status, at) for task, status, at in rows],
    )
    await rig.start()
    await rig.at(T0 + 10 * MINUTE)
    assert rig.recorder.jobs() == []


def freshness_told(recorder: Recorder) -> list[tuple[str, str]]:
    """The freshness changes published: (subject, kind)."""
    found = []
    for m in recorder.messages:
        if ".freshness." in m.subject:
            event = msgspec.json.decode(m.payload, type=FreshnessLost | FreshnessRestored)
            found.append((m.subject, str(event.__struct_config__.tag)))
    return found


async def test_freshness_is_told_when_lost_and_when_restored_once_each(rig: Rig) -> None:
    task, new = await rig.task(), await rig.task()
    await rig.pool.execute(
        "UPDATE tasks SET freshness_s = 3600, created_at = $2 WHERE id = ANY($1::uuid[])",
        [task, new],
        T0 - timedelta(days=1),
    )

    async def succeeded(at: datetime) -> None:
        await rig.pool.execute(
            """INSERT INTO jobs (id, task_id, trigger, type, status, due_at, queued_at,
                                 finished_at)
               VALUES ($1, $2, 'manual', 'backup', 'succeeded', $3, $3, $3)""",
            str(uuid.uuid4()),
            task,
            at,
        )

    await succeeded(T0 - 10 * MINUTE)
    await rig.start()
    lost_new = (f"plakar.events.freshness.task.{new}.lost", "freshness.lost")
    # Never succeeded within its hour since it was created: stale at once. The other was
    # fresh when first judged: nothing to tell.
    assert freshness_told(rig.recorder) == [lost_new]
    await rig.at(T0 + 50 * MINUTE - timedelta(seconds=1))
    assert freshness_told(rig.recorder) == [lost_new]
    await rig.at(T0 + 50 * MINUTE)
    lost = (f"plakar.events.freshness.task.{task}.lost", "freshness.lost")
    assert freshness_told(rig.recorder) == [lost_new, lost]
    await rig.at(T0 + 2 * 60 * MINUTE)
    assert len(freshness_told(rig.recorder)) == 2  # told once

    await succeeded(T0 + 2 * 60 * MINUTE + timedelta(seconds=1))
    await rig.at(T0 + 2 * 60 * MINUTE + LOOK_EVERY + timedelta(seconds=1))
    restored = (f"plakar.events.freshness.task.{task}.restored", "freshness.restored")
    assert freshness_told(rig.recorder) == [lost_new, lost, restored]

    # A rule removed is forgotten: set again, a task already fresh tells nothing.
    await rig.pool.execute("UPDATE tasks SET freshness_s = NULL WHERE id = $1", task)
    await rig.at(rig.clock.now() + LOOK_EVERY)
    await rig.pool.execute("UPDATE tasks SET freshness_s = 3600 WHERE id = $1", task)
    await rig.at(rig.clock.now() + LOOK_EVERY)
    assert len(freshness_told(rig.recorder)) == 3
