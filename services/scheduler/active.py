"""The active scheduler: one actor that owns the timers of the schedules and fires them.

It reads one inbox (schedules changed, publications to try again) and its clock, and does
one thing at a time: nothing else touches its state, so it needs no lock. Time comes only
from the injected Clock, publishing only through the injected function: its rules are
tested in-process against a fake clock (tests/integration/test_scheduler_rules.py).

A firing is recorded in the journal (with its job id and whether it is skipped) before it
is published, and marked published after: a scheduler that takes over publishes again
what was recorded and not confirmed, with the same ids, so a firing is neither lost nor
doubled (NATS drops a repeated message id, the history has one row per (schedule, due
instant), the runners one claim per job).

Firings due together are fired as one batch, in chunks of a thousand. The schedules due
next and their tasks are read ahead of their instant, and their job-dues made (they hold
nothing of when they are sent); at the instant only what may have changed is read (the
tasks' active jobs, and a task changed since, whose job-due is made again), so that every
firing is decided at once. Each chunk is then recorded (one journal write) while the next
is, and its queued events and job-dues published (pipelined) as it is recorded; then the
schedules' fired events, made once the jobs are acknowledged, and one journal write
after. Python's cycle collector is held off while a burst fires (_cycles_paused). A
schedule changed or disabled after it was read ahead is left out by the journal write
itself.

Between firings it queues the retries of failed jobs that their tasks' policies ask for
(retrying.py), and tells the changes of freshness (freshness_watch.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from services.scheduler import batch, journal
from services.scheduler.clock import Clock
from services.scheduler.freshness_watch import FreshnessWatch
from services.scheduler.journal import Entry, Planned, Recorded, TaskState
from services.scheduler.retrying import Retrier
from services.scheduler.timers import Timers
from shared import recurrence, subjects
from shared.db import Pool
from shared.dispatch import Message, Publish, due_message, queued_message
from shared.events import JobSkipped, ScheduleFired, encode, job_event_subject, utcnow
from shared.models import Task

log = logging.getLogger("plakar_cp.scheduler")

T = TypeVar("T")

# Schedules changed since they were armed are looked for this often, in case a change
# event was missed (NATS reconnecting); firing never depends on it.
RECONCILE = timedelta(seconds=60)
# A job queued by this scheduler that the history has not recorded yet still counts as
# queued for overlaps, for at most this long.
UNCONFIRMED = timedelta(seconds=300)
# Firings that could not be published are tried again this much later.
RETRY_PUBLISH = timedelta(seconds=2)
# Changes re-read together at most: what falls due meanwhile fires between two reads.
REFRESH_BATCH = 5000
# Firings of a batch recorded and published together.
CHUNK = 1000
# The schedules due next are read this long before their instant: reading ten thousand
# takes about half a second, which would otherwise make the last of them that late.
READ_AHEAD = timedelta(seconds=2)


@dataclass(frozen=True)
class Changed:
    """A schedule was created, changed or deleted."""

    schedule_id: str


@dataclass(frozen=True)
class Ahead:
    """The schedules due at `at`, read ahead of it with their tasks, and the job-dues of
    their firings (by job id, with the task each was made of)."""

    at: datetime
    entries: dict[str, Entry]
    tasks: dict[str, TaskState]
    dues: dict[str, tuple[Task, Message]] = field(default_factory=dict)


class Active:
    def __init__(
        self,
        pool: Pool,
        clock: Clock,
        publish: Publish,
        session_started: datetime,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.publish = publish
        self.session_started = session_started
        self.session_id = session_started.isoformat()
        self.timers = Timers()
        self.inbox: asyncio.Queue[Changed] = asyncio.Queue()
        # Per task: jobs this scheduler queued, not yet seen by the history (and since when).
        self._unconfirmed: defaultdict[str, dict[str, datetime]] = defaultdict(dict)
        # The task of each schedule armed.
        self._task_of: dict[str, str] = {}
        self._republish_at: datetime | None = None
        self._reconcile_at: datetime | None = None
        self._ahead: Ahead | None = None
        # Looked after between firings, each when its `look_at` has come.
        self.watches = (Retrier(pool, clock, publish), FreshnessWatch(pool, clock, publish))

    def changed(self, schedule_id: str) -> None:
        """Tell the actor a schedule changed (from any task: it only enqueues)."""
        self.inbox.put_nowait(Changed(schedule_id))

    async def run(self) -> None:
        await self._publish_recorded()
        await self._arm_all()
        log.info("active: %d schedules armed", len(self.timers))
        self._reconcile_at = self.clock.now() + RECONCILE
        for watch in self.watches:
            watch.start()
        while True:
            await self._step()

    async def _step(self) -> None:
        """Do the next thing: fire what is due, try publishing again, reconcile, retry
        failed jobs or tell freshness changes, handle one message, or wait for the soonest
        of them."""
        now = self.clock.now()
        looks = [w for w in self.watches if w.look_at is not None and now >= w.look_at]
        read_ahead = self._read_ahead_at()
        if due := self.timers.pop_due(now):
            with _cycles_paused():
                await self._fire(due)
        elif read_ahead is not None and now >= read_ahead:
            await self._read_ahead()
        elif self._republish_at is not None and now >= self._republish_at:
            self._republish_at = None
            await self._publish_recorded()
        elif self._reconcile_at is not None and now >= self._reconcile_at:
            self._reconcile_at = now + RECONCILE
            await self._arm_many(await journal.load_stale(self.pool, self.session_id))
        elif looks:
            await looks[0].look()
        elif not self.inbox.empty():
            await self._refresh(self._drain([]))
        else:
            soonest = (self.timers.next_at(), read_ahead, self._republish_at, self._reconcile_at)
            wake = [t for t in (*soonest, *(w.look_at for w in self.watches)) if t]
            message = await self.clock.race(self.inbox.get(), min(wake, default=None))
            if message is not None:
                await self._refresh(self._drain([message.schedule_id]))

    def _drain(self, ids: list[str]) -> list[str]:
        """`ids` and the changes waiting in the inbox, up to a batch: re-read together
        (a bulk edit sends one change per schedule)."""
        while len(ids) < REFRESH_BATCH and not self.inbox.empty():
            ids.append(self.inbox.get_nowait().schedule_id)
        return list(dict.fromkeys(ids))

    # Arming

    def _stale(self, e: Entry) -> bool:
        return (
            e.next_run_at is None
            or e.journal_revision != e.revision
            or e.session != self.session_id
        )

    async def _arm_all(self) -> None:
        """Every enabled schedule, as the journal has it (taking over, starting)."""
        entries = await journal.load_enabled(self.pool)
        self._task_of = {e.id: e.task_id for e in entries}
        for e in entries:
            if not self._stale(e) and e.next_run_at is not None:
                self.timers.set(e.id, e.next_run_at)
        await self._arm_many([e for e in entries if self._stale(e)])
        for gone in self.timers.keys() - {e.id for e in entries}:
            self.timers.remove(gone)

    async def _refresh(self, schedule_ids: list[str]) -> None:
        """Arm schedules as the database has them now."""
        if self._ahead is not None:
            for schedule_id in schedule_ids:
                self._ahead.entries.pop(schedule_id, None)
        entries = await journal.load_many(self.pool, schedule_ids)
        for schedule_id in schedule_ids:
            e = entries.get(schedule_id)
            if e is None or not e.enabled:
                self.timers.remove(schedule_id)
                self._task_of.pop(schedule_id, None)
        await self._arm_many([e for e in entries.values() if e.enabled])

    async def _arm_many(self, entries: list[Entry]) -> None:
        """Compute the next run of schedules, and record those that changed at once."""
        nexts = {e.id: self._next_run(e) for e in entries}
        changed = [e for e in entries if self._stale(e) or nexts[e.id] != e.next_run_at]
        armed = await journal.arm_many(self.pool, changed, self.session_id, nexts)
        gone = {e.id for e in changed} - armed
        for e in entries:
            if e.id in gone:
                self.timers.remove(e.id)  # deleted meanwhile
            else:
                self.timers.set(e.id, nexts[e.id])
                self._task_of[e.id] = e.task_id

    def _next_run(self, e: Entry) -> datetime:
        return recurrence.resume(
            e.rule,
            last_run_at=e.last_run_at,
            journal_next=e.next_run_at,
            journal_current=e.journal_revision == e.revision,
            same_session=e.session == self.session_id,
            now=self.clock.now(),
            session_started=self.session_started,
        )

    # Firing

    def _read_ahead_at(self) -> datetime | None:
        """When to read ahead the schedules due next (None: read already)."""
        at = self.timers.next_at()
        if at is None or (self._ahead is not None and self._ahead.at == at):
            return None
        return at - READ_AHEAD

    async def _read_ahead(self) -> None:
        at = self.timers.next_at()
        assert at is not None
        self._ahead = None
        ahead = Ahead(at, {}, {})
        # Read at once, as the firing will be: the connections it opens stay for it.
        chunks = _chunks(self.timers.due_by(at), self._task_of)
        for entries, states in await asyncio.gather(*(self._read(c) for c in chunks)):
            ahead.entries.update(entries)
            ahead.tasks.update(states)
        # What a firing sends that does not depend on when it fires, made now.
        for e in ahead.entries.values():
            if e.next_run_at == at and (state := ahead.tasks.get(e.task_id)) is not None:
                job_id = recurrence.firing_job_id(e.id, at)
                ahead.dues[job_id] = (
                    state.task,
                    due_message(state.task, "schedule", job_id, e.id, at),
                )
        self._ahead = ahead

    async def _fire(self, due_ids: list[str]) -> None:
        """Fire the schedules due now: every chunk is decided as soon as it is read (each
        read while the one before is decided), recorded while the next is, and published
        while the next is recorded, so that the first jobs of a burst go out at once."""
        pending = [job_id for jobs in self._unconfirmed.values() for job_id in jobs]
        self._forget_unconfirmed(await journal.known_jobs(self.pool, pending))
        chunks = _chunks(due_ids, self._task_of)
        tasks: dict[str, Task] = {}
        planned: asyncio.Queue[list[Planned] | None] = asyncio.Queue()
        recorded: asyncio.Queue[list[Recorded] | None] = asyncio.Queue()
        moved: list[str] = []
        stale: list[Entry] = []

        async def decide() -> None:
            # Read at once: what was read ahead leaves little to read, and the reads of
            # the last chunks would otherwise wait for the first ones' writes.
            readings = [asyncio.ensure_future(self._read(chunk)) for chunk in chunks]
            try:
                for chunk, reading in zip(chunks, readings, strict=True):
                    entries, states = await reading
                    ready, chunk_stale = self._sort_out(chunk, entries)
                    stale.extend(chunk_stale)
                    tasks.update((t, s.task) for t, s in states.items())
                    planned.put_nowait(self._plan(ready, states))
            finally:
                for reading in readings:
                    reading.cancel()
                planned.put_nowait(None)

        async def record() -> None:
            try:
                async for chunk in _until_none(planned):
                    records, chunk_moved = await self._record(chunk)
                    moved.extend(chunk_moved)
                    recorded.put_nowait(records)
            finally:
                recorded.put_nowait(None)

        deciding = asyncio.gather(decide(), record())
        try:
            await self._publish_records(tasks, _until_none(recorded))
        finally:
            await deciding
            if self._ahead is not None and self._ahead.at <= self.clock.now():
                self._ahead = None
        if moved:
            await self._refresh(moved)
        await self._arm_many(stale)

    async def _read(self, due_ids: list[str]) -> tuple[dict[str, Entry], dict[str, TaskState]]:
        """The schedules as the journal has them, and their tasks with their active jobs
        (read beside them: a schedule never changes task). Of what was read ahead, only
        the tasks' active jobs, and the tasks changed since, are read again."""
        ahead = self._ahead or Ahead(self.clock.now(), {}, {})
        known = {i: ahead.entries[i] for i in due_ids if i in ahead.entries}
        unknown = [i for i in due_ids if i not in known]
        tasks = sorted({self._task_of[i] for i in due_ids if i in self._task_of})
        entries, states = await asyncio.gather(
            journal.load_many(self.pool, unknown),
            journal.task_states(self.pool, tasks, ahead.tasks),
        )
        entries.update(known)
        if missing := sorted({e.task_id for e in entries.values()} - set(tasks)):
            states.update(await journal.task_states(self.pool, missing))
        return entries, states

    def _sort_out(
        self, due_ids: list[str], entries: dict[str, Entry]
    ) -> tuple[list[Entry], list[Entry]]:
        """The schedules still due as read, and those to arm again; the others'
        timers are set as the journal says."""
        ready: list[Entry] = []
        stale: list[Entry] = []
        for schedule_id in due_ids:
            e = entries.get(schedule_id)
            if e is None or not e.enabled:
                self.timers.remove(schedule_id)
            elif self._stale(e) or e.next_run_at is None:
                stale.append(e)
            elif e.next_run_at > self.clock.now():  # moved on since the timer was set
                self.timers.set(schedule_id, e.next_run_at)
            else:
                ready.append(e)
        return ready, stale

    def _plan(self, entries: list[Entry], states: dict[str, TaskState]) -> list[Planned]:
        """Decide the firings of schedules due now, given their tasks (with their active
        jobs) as read with them; the jobs to queue count as unconfirmed from now on."""
        for e in entries:
            if e.task_id not in states:  # the task is being deleted, with its schedules
                self.timers.remove(e.id)
        entries = [e for e in entries if e.task_id in states]
        active = {task_id: state.active for task_id, state in states.items()}
        now = self.clock.now()
        planned = batch.plan(entries, active, self._unconfirmed, now)
        for p in planned:
            if p.record.skip_reason is None:
                self._unconfirmed[p.entry.task_id][p.record.job_id] = now
        return planned

    async def _record(self, planned: list[Planned]) -> tuple[list[Recorded], list[str]]:
        """Record firings: those recorded, and the schedules that moved on meanwhile."""
        recorded = await journal.record_firings(self.pool, planned)
        moved: list[str] = []
        for p in planned:
            if p.entry.id in recorded:
                self.timers.set(p.entry.id, p.firing.next_run_at)
            else:
                # Changed meanwhile: start again from what the journal says now.
                self._unconfirmed[p.entry.task_id].pop(p.record.job_id, None)
                moved.append(p.entry.id)
        return [p.record for p in planned if p.entry.id in recorded], moved

    def _forget_unconfirmed(self, known: set[str]) -> None:
        """Drop the jobs the history now knows, and those waited for too long."""
        now = self.clock.now()
        for jobs in self._unconfirmed.values():
            for job_id, since in list(jobs.items()):
                if job_id in known or now - since > UNCONFIRMED:
                    del jobs[job_id]

    async def _publish_records(
        self, tasks: dict[str, Task], batches: AsyncIterator[list[Recorded]]
    ) -> None:
        """Publish recorded firings, then mark them published; when that fails (NATS
        away), the journal keeps them and they are tried again shortly.

        Every queued event is stored before its job-due (a runner's events about a job
        never precede it) and its schedule's fired event. Each batch's queued events go
        as it comes, and its job-dues once they are stored: a batch is not held up by the
        one before it. The fired events go last: the jobs of a burst are queued before its
        schedules' news."""
        records: list[Recorded] = []

        async def send(queued: list[Message], dues: list[Message]) -> None:
            await self.publish(queued)
            await self.publish(dues)

        sending: list[asyncio.Future[None]] = []
        async for batch_records in batches:
            batch_records = [r for r in batch_records if r.task_id in tasks]
            if not batch_records:
                continue
            sending.append(asyncio.ensure_future(send(*self._messages(tasks, batch_records))))
            records += batch_records
        sent = await asyncio.gather(*sending, return_exceptions=True)
        failure = next((e for e in sent if isinstance(e, BaseException)), None)
        jobs_acked = self.clock.now()
        if failure is None:
            try:
                await self.publish([_fired(r) for r in records])
            except Exception as e:
                failure = e
        if failure is not None:
            # Left unpublished in the journal: tried again shortly, with the same ids.
            log.warning("publishing firings failed (%s); again shortly", failure)
            self._republish_at = self.clock.now() + RETRY_PUBLISH
            return
        await journal.mark_published(self.pool, records)
        self._log_fired(records, jobs_acked)

    def _messages(
        self, tasks: dict[str, Task], records: list[Recorded]
    ) -> tuple[list[Message], list[Message]]:
        """The firings' queued (or skipped) events, and the job-dues of those queued."""
        first: list[Message] = []
        then: list[Message] = []
        for r in records:
            task = tasks[r.task_id]
            if r.skip_reason is None:
                first.append(
                    queued_message(
                        task,
                        "schedule",
                        r.job_id,
                        schedule_id=r.schedule_id,
                        due_at=r.due_at,
                        at=r.fired_at,
                    )
                )
                made = self._ahead.dues.get(r.job_id) if self._ahead else None
                # Made ahead of a task read again since (changed) is made again.
                then.append(
                    made[1]
                    if made is not None and made[0] is task
                    else due_message(task, "schedule", r.job_id, r.schedule_id, r.due_at)
                )
            else:
                first.append(_skipped(task, r, r.skip_reason))
        return first, then

    def _log_fired(self, records: list[Recorded], jobs_acked: datetime) -> None:
        if not records:
            return
        # One line per firing only on demand: a burst of thousands would be written
        # before the next batch fires.
        if log.isEnabledFor(logging.DEBUG):
            for r in records:
                log.debug(
                    "schedule %s fired job %s due %s%s",
                    r.schedule_id,
                    r.job_id,
                    r.due_at.isoformat(),
                    f", skipped: {r.skip_reason}" if r.skip_reason else "",
                )
        due = max(r.due_at for r in records)
        log.info(
            "fired %d schedules (%d skipped as overlaps), jobs acknowledged %.3fs after "
            "the last due, everything %.3fs after",
            len(records),
            sum(r.skip_reason is not None for r in records),
            (jobs_acked - due).total_seconds(),
            (self.clock.now() - due).total_seconds(),
        )

    async def _publish_recorded(self) -> None:
        """Publish the firings recorded but not confirmed published."""
        records = await journal.unpublished(self.pool)
        if records:
            states = await journal.task_states(self.pool, sorted({r.task_id for r in records}))
            tasks = {t: s.task for t, s in states.items()}
            await self._publish_records(tasks, _batches(records))


@contextmanager
def _cycles_paused() -> Iterator[None]:
    """Python's cycle collector held off while a burst fires. A burst makes many objects
    that outlive the young generations, and the collector then walked the whole heap in
    the middle of it (a full collection of 59 ms as a burst of 10,000 began, another of
    89 ms as it ended, measured). What a firing makes holds no cycles: reference counting
    frees it as before, and the collector resumes after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


async def _until_none(queue: asyncio.Queue[T | None]) -> AsyncIterator[T]:
    while (item := await queue.get()) is not None:
        yield item


async def _batches(records: list[Recorded]) -> AsyncIterator[list[Recorded]]:
    for i in range(0, len(records), CHUNK):
        yield records[i : i + CHUNK]


def _chunks(due_ids: list[str], task_of: dict[str, str]) -> list[list[str]]:
    """The schedules in chunks of about CHUNK, those of one task in the same chunk (the
    overlaps between them are decided together)."""
    by_task: defaultdict[str, list[str]] = defaultdict(list)
    for schedule_id in due_ids:
        by_task[task_of.get(schedule_id, "")].append(schedule_id)
    chunks: list[list[str]] = [[]]
    for group in by_task.values():
        if chunks[-1] and len(chunks[-1]) + len(group) > CHUNK:
            chunks.append([])
        chunks[-1].extend(group)
    return chunks


def _skipped(task: Task, r: Recorded, reason: str) -> Message:
    skipped = JobSkipped(
        job_id=r.job_id,
        seq=1,
        task_id=task.id,
        schedule_id=r.schedule_id,
        trigger="schedule",
        type=task.type,
        due_at=r.due_at,
        connector_ids=task.connector_ids(),
        store_id=task.store_id,
        runner_group=task.runner_group,
        reason=reason,
        ts=r.fired_at or utcnow(),
    )
    return Message(job_event_subject(skipped), encode(skipped), f"skipped:{r.job_id}")


def _fired(r: Recorded) -> Message:
    fired = ScheduleFired(
        schedule_id=r.schedule_id,
        task_id=r.task_id,
        job_id=r.job_id,
        due_at=r.due_at,
        catch_up=r.catch_up,
        next_run_at=r.next_run_at,
        skipped=r.skip_reason,
    )
    return Message(
        subjects.schedule_event(r.schedule_id, "fired"), encode(fired), f"fired:{r.job_id}"
    )
