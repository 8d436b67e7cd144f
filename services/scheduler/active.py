"""The active scheduler: one timer per schedule's next run, and the firings.

A firing is recorded in the journal (with its job id and whether it is skipped)
before it is published, and marked published after: a scheduler that takes over
publishes again what was recorded and not confirmed, with the same ids, so a
firing is neither lost nor doubled (NATS drops a repeated message id, the
history has one row per (schedule, due instant), the runners one claim per job).

Firings due together are fired as one batch: one read of their schedules, one
of their tasks' active jobs, one journal write, their messages published
pipelined, one journal write after. Batches follow one another: what falls due
while one is being fired makes the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services.scheduler import batch, journal
from services.scheduler.journal import Entry, Recorded
from services.scheduler.timers import Timers
from shared import recurrence, subjects
from shared.db import Pool
from shared.dispatch import Message, job_messages, publish_all
from shared.events import (
    JobSkipped,
    ScheduleChanged,
    ScheduleFired,
    decode_schedule_event,
    encode,
    utcnow,
)
from shared.models import Task

log = logging.getLogger("plakar_cp.scheduler")

# The timers wait on the clock at most this long, so a clock step is noticed.
MAX_SLEEP_S = 30.0
# Schedules are read again this often, in case a change event was missed
# (NATS reconnecting); firing never depends on it.
RECONCILE_S = 60.0
# A job queued by this scheduler that the history has not recorded yet still
# counts as queued for overlaps, for at most this long.
UNCONFIRMED_S = 300.0
RETRY_PUBLISH_S = 2.0


class Active:
    def __init__(
        self, pool: Pool, nc: Client, js: JetStreamContext, session_started: datetime
    ) -> None:
        self.pool = pool
        self.nc = nc
        self.js = js
        self.session_started = session_started
        self.session_id = session_started.isoformat()
        self.timers = Timers()
        self._wake = asyncio.Event()
        self._schedule_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # The batch being fired; one at a time, so overlaps are decided in order.
        self._batch: asyncio.Task[None] | None = None
        # Per task: jobs this scheduler queued, not yet seen by the history.
        self._unconfirmed: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self._running: set[asyncio.Task[None]] = set()
        self._retrying = False

    async def run(self) -> None:
        # Subscribed before reading the schedules, so no change falls in between.
        sub = await self.nc.subscribe(subjects.schedule_event("*", "changed"), cb=self._changed)
        try:
            await self._publish_recorded()
            await self._arm_all()
            log.info("active: %d schedules armed", len(self.timers))
            await self._loop()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            for t in list(self._running):
                t.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _loop(self) -> None:
        reconcile_at = time.monotonic() + RECONCILE_S
        while True:
            self._wake.clear()
            if not self._firing() and (due := self.timers.pop_due(utcnow())):
                self._batch = self._spawn(self._fire(due))
                # The loop waits for the batch, which wakes it when done.
                self._batch.add_done_callback(lambda _: self._wake.set())
            if time.monotonic() >= reconcile_at:
                reconcile_at = time.monotonic() + RECONCILE_S
                self._spawn(self._arm_all())
            delay = min(MAX_SLEEP_S, reconcile_at - time.monotonic())
            if not self._firing() and (at := self.timers.next_at()) is not None:
                delay = min(delay, (at - utcnow()).total_seconds())
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _firing(self) -> bool:
        return self._batch is not None and not self._batch.done()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guarded(work))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler step failed")

    def _set_timer(self, schedule_id: str, at: datetime) -> None:
        self.timers.set(schedule_id, at)
        self._wake.set()

    # Arming

    def _stale(self, e: Entry) -> bool:
        return (
            e.next_run_at is None
            or e.journal_revision != e.revision
            or e.session != self.session_id
        )

    async def _arm_all(self) -> None:
        entries = await journal.load_enabled(self.pool)
        for e in entries:
            if self._stale(e):
                await self._refresh(e.id)
            elif e.next_run_at is not None:
                # A firing in progress may have moved it on: the firing re-reads it.
                self._set_timer(e.id, e.next_run_at)
        for gone in self.timers.keys() - {e.id for e in entries}:
            self.timers.remove(gone)

    async def _changed(self, msg: Msg) -> None:
        try:
            event = decode_schedule_event(msg.data)
        except Exception as e:
            log.error("unreadable schedule event on %s: %s", msg.subject, e)
            return
        if isinstance(event, ScheduleChanged):
            self._spawn(self._refresh(event.schedule_id))

    async def _refresh(self, schedule_id: str) -> None:
        async with self._schedule_locks[schedule_id]:
            await self._reload(schedule_id)

    async def _reload(self, schedule_id: str) -> None:
        """Arm a schedule as the database has it; the caller holds its lock."""
        e = await journal.load(self.pool, schedule_id)
        if e is None or not e.enabled:
            self.timers.remove(schedule_id)
        else:
            await self._arm(e)

    async def _arm(self, e: Entry) -> None:
        """Compute and record the next run of a schedule; the caller holds its lock."""
        nxt = recurrence.resume(
            e.rule,
            last_run_at=e.last_run_at,
            journal_next=e.next_run_at,
            journal_current=e.journal_revision == e.revision,
            same_session=e.session == self.session_id,
            now=utcnow(),
            session_started=self.session_started,
        )
        changed = self._stale(e) or nxt != e.next_run_at
        if changed and not await journal.arm(self.pool, e, self.session_id, nxt):
            self.timers.remove(e.id)  # deleted meanwhile
            return
        self._set_timer(e.id, nxt)

    # Firing

    async def _fire(self, due_ids: list[str]) -> None:
        async with contextlib.AsyncExitStack() as held:
            # Sorted, so that nothing waiting on several of these locks can deadlock.
            for schedule_id in sorted(due_ids):
                await held.enter_async_context(self._schedule_locks[schedule_id])
            entries = await journal.load_many(self.pool, due_ids)
            now = utcnow()
            ready: list[Entry] = []
            for schedule_id in due_ids:
                e = entries.get(schedule_id)
                if e is None or not e.enabled:
                    self.timers.remove(schedule_id)
                elif self._stale(e) or e.next_run_at is None:
                    await self._arm(e)
                elif e.next_run_at > now:  # moved on since the timer was set
                    self._set_timer(schedule_id, e.next_run_at)
                else:
                    ready.append(e)
            if ready:
                await self._fire_due(ready)

    async def _fire_due(self, entries: list[Entry]) -> None:
        """Decide, record and publish the firings of schedules due now; the caller
        holds their locks."""
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
        planned = batch.plan(entries, active, self._unconfirmed, utcnow())
        for p in planned:
            if p.record.skip_reason is None:
                self._unconfirmed[p.entry.task_id][p.record.job_id] = time.monotonic()
        recorded = await journal.record_firings(self.pool, planned)
        for p in planned:
            if p.entry.id in recorded:
                self._set_timer(p.entry.id, p.firing.next_run_at)
            else:
                # Changed meanwhile: start again from what the journal says now.
                self._unconfirmed[p.entry.task_id].pop(p.record.job_id, None)
                await self._reload(p.entry.id)
        records = [p.record for p in planned if p.entry.id in recorded]
        try:
            await self._publish({t: s.task for t, s in states.items()}, records)
        except Exception as err:  # NATS unreachable: the outbox keeps them
            log.warning("publishing %d firings failed (%s); retrying", len(records), err)
            self._retry_publish()

    def _forget_unconfirmed(self, known: set[str]) -> None:
        """Drop the jobs the history now knows, and those waited for too long."""
        now = time.monotonic()
        for jobs in self._unconfirmed.values():
            for job_id, since in list(jobs.items()):
                if job_id in known or now - since > UNCONFIRMED_S:
                    del jobs[job_id]

    async def _publish(self, tasks: dict[str, Task], records: list[Recorded]) -> None:
        """Publish recorded firings together, then mark them published."""
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
        # Every queued event is stored before its job-due: a runner's events
        # about a job never precede it.
        await publish_all(self.js, events)
        await publish_all(self.js, dues)
        await journal.mark_published(self.pool, records)
        late = [(utcnow() - r.due_at).total_seconds() for r in records]
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
            await self._publish({t: s.task for t, s in states.items()}, records)

    def _retry_publish(self) -> None:
        if self._retrying:
            return
        self._retrying = True

        async def retry() -> None:
            try:
                while True:
                    await asyncio.sleep(RETRY_PUBLISH_S)
                    try:
                        await self._publish_recorded()
                        return
                    except Exception as e:
                        log.warning("publishing recorded firings failed: %s", e)
            finally:
                self._retrying = False

        self._spawn(retry())


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
