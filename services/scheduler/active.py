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

Firings due together are fired as one batch: one read of their schedules, one of their
tasks' active jobs, one journal write, their messages published pipelined, one journal
write after.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scheduler import batch, journal
from services.scheduler.clock import Clock
from services.scheduler.journal import Entry, Recorded
from services.scheduler.timers import Timers
from shared import recurrence, subjects
from shared.db import Pool
from shared.dispatch import Message, job_messages
from shared.events import JobSkipped, ScheduleFired, encode
from shared.models import Task

log = logging.getLogger("plakar_cp.scheduler")

# Schedules are read again this often, in case a change event was missed (NATS
# reconnecting); firing never depends on it.
RECONCILE = timedelta(seconds=60)
# A job queued by this scheduler that the history has not recorded yet still counts as
# queued for overlaps, for at most this long.
UNCONFIRMED = timedelta(seconds=300)
# Firings that could not be published are tried again this much later.
RETRY_PUBLISH = timedelta(seconds=2)

Publish = Callable[[Sequence[Message]], Awaitable[None]]


@dataclass(frozen=True)
class Changed:
    """A schedule was created, changed or deleted."""

    schedule_id: str


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
        self._retry_at: datetime | None = None
        self._reconcile_at: datetime | None = None

    def changed(self, schedule_id: str) -> None:
        """Tell the actor a schedule changed (from any task: it only enqueues)."""
        self.inbox.put_nowait(Changed(schedule_id))

    async def run(self) -> None:
        await self._publish_recorded()
        await self._arm_all()
        log.info("active: %d schedules armed", len(self.timers))
        while True:
            await self._step()

    async def _step(self) -> None:
        """Do the next thing: fire what is due, try publishing again, reconcile, handle
        one message, or wait for the soonest of them."""
        now = self.clock.now()
        if due := self.timers.pop_due(now):
            await self._fire(due)
        elif self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            await self._publish_recorded()
        elif self._reconcile_at is not None and now >= self._reconcile_at:
            await self._arm_all()
        elif not self.inbox.empty():
            await self._refresh(self.inbox.get_nowait().schedule_id)
        else:
            wake = [t for t in (self.timers.next_at(), self._retry_at, self._reconcile_at) if t]
            message = await self.clock.race(self.inbox.get(), min(wake, default=None))
            if message is not None:
                await self._refresh(message.schedule_id)

    # Arming

    def _stale(self, e: Entry) -> bool:
        return (
            e.next_run_at is None
            or e.journal_revision != e.revision
            or e.session != self.session_id
        )

    async def _arm_all(self) -> None:
        self._reconcile_at = self.clock.now() + RECONCILE
        entries = await journal.load_enabled(self.pool)
        for e in entries:
            if self._stale(e):
                await self._arm(e)
            elif e.next_run_at is not None:
                self.timers.set(e.id, e.next_run_at)
        for gone in self.timers.keys() - {e.id for e in entries}:
            self.timers.remove(gone)

    async def _refresh(self, schedule_id: str) -> None:
        """Arm a schedule as the database has it now."""
        e = await journal.load(self.pool, schedule_id)
        if e is None or not e.enabled:
            self.timers.remove(schedule_id)
        else:
            await self._arm(e)

    async def _arm(self, e: Entry) -> None:
        """Compute and record the next run of a schedule."""
        nxt = recurrence.resume(
            e.rule,
            last_run_at=e.last_run_at,
            journal_next=e.next_run_at,
            journal_current=e.journal_revision == e.revision,
            same_session=e.session == self.session_id,
            now=self.clock.now(),
            session_started=self.session_started,
        )
        changed = self._stale(e) or nxt != e.next_run_at
        if changed and not await journal.arm(self.pool, e, self.session_id, nxt):
            self.timers.remove(e.id)  # deleted meanwhile
            return
        self.timers.set(e.id, nxt)

    # Firing

    async def _fire(self, due_ids: list[str]) -> None:
        entries = await journal.load_many(self.pool, due_ids)
        ready: list[Entry] = []
        for schedule_id in due_ids:
            e = entries.get(schedule_id)
            if e is None or not e.enabled:
                self.timers.remove(schedule_id)
            elif self._stale(e) or e.next_run_at is None:
                await self._arm(e)
            elif e.next_run_at > self.clock.now():  # moved on since the timer was set
                self.timers.set(schedule_id, e.next_run_at)
            else:
                ready.append(e)
        if ready:
            await self._fire_due(ready)

    async def _fire_due(self, entries: list[Entry]) -> None:
        """Decide, record and publish the firings of schedules due now."""
        states = await journal.task_states(self.pool, sorted({e.task_id for e in entries}))
        pending = [job_id for jobs in self._unconfirmed.values() for job_id in jobs]
        self._forget_unconfirmed(await journal.known_jobs(self.pool, pending))
        for e in entries:
            if e.task_id not in states:  # the task is being deleted, with its schedules
                self.timers.remove(e.id)
        entries = [e for e in entries if e.task_id in states]
        if not entries:
            return
        active = {task_id: state.active for task_id, state in states.items()}
        now = self.clock.now()
        planned = batch.plan(entries, active, self._unconfirmed, now)
        for p in planned:
            if p.record.skip_reason is None:
                self._unconfirmed[p.entry.task_id][p.record.job_id] = now
        recorded = await journal.record_firings(self.pool, planned)
        for p in planned:
            if p.entry.id in recorded:
                self.timers.set(p.entry.id, p.firing.next_run_at)
            else:
                # Changed meanwhile: start again from what the journal says now.
                self._unconfirmed[p.entry.task_id].pop(p.record.job_id, None)
                await self._refresh(p.entry.id)
        records = [p.record for p in planned if p.entry.id in recorded]
        await self._publish_records({t: s.task for t, s in states.items()}, records)

    def _forget_unconfirmed(self, known: set[str]) -> None:
        """Drop the jobs the history now knows, and those waited for too long."""
        now = self.clock.now()
        for jobs in self._unconfirmed.values():
            for job_id, since in list(jobs.items()):
                if job_id in known or now - since > UNCONFIRMED:
                    del jobs[job_id]

    async def _publish_records(self, tasks: dict[str, Task], records: list[Recorded]) -> None:
        """Publish recorded firings together, then mark them published; when that fails
        (NATS away), the journal keeps them and they are tried again shortly."""
        records = [r for r in records if r.task_id in tasks]
        if not records:
            return
        events: list[Message] = []
        dues: list[Message] = []
        for r in records:
            task = tasks[r.task_id]
            if r.skip_reason is None:
                queued, due = job_messages(
                    task, "schedule", r.job_id, schedule_id=r.schedule_id, due_at=r.due_at
                )
                events.append(queued)
                dues.append(due)
            else:
                events.append(_skipped(task, r, r.skip_reason))
            events.append(_fired(r))
        try:
            # Every queued event is stored before its job-due: a runner's events about a
            # job never precede it.
            await self.publish(events)
            await self.publish(dues)
        except Exception as e:
            log.warning("publishing %d firings failed (%s); again shortly", len(records), e)
            self._retry_at = self.clock.now() + RETRY_PUBLISH
            return
        await journal.mark_published(self.pool, records)
        self._log_fired(records)

    def _log_fired(self, records: list[Recorded]) -> None:
        late = [(self.clock.now() - r.due_at).total_seconds() for r in records]
        for r, seconds in zip(records, late, strict=True):
            log.info(
                "schedule %s fired job %s due %s (%.3fs late)%s",
                r.schedule_id,
                r.job_id,
                r.due_at.isoformat(),
                seconds,
                f", skipped: {r.skip_reason}" if r.skip_reason else "",
            )
        log.info(
            "fired %d schedules (%d skipped as overlaps), %.3f-%.3fs late",
            len(records),
            sum(r.skip_reason is not None for r in records),
            min(late),
            max(late),
        )

    async def _publish_recorded(self) -> None:
        """Publish the firings recorded but not confirmed published."""
        records = await journal.unpublished(self.pool)
        if records:
            states = await journal.task_states(self.pool, sorted({r.task_id for r in records}))
            await self._publish_records({t: s.task for t, s in states.items()}, records)


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
    )
    return Message(subjects.job_event(r.job_id, "skipped"), encode(skipped), f"skipped:{r.job_id}")


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
