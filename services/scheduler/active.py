"""The active scheduler: one timer per schedule's next run, and the firings.

A firing is recorded in the journal (with its job id and whether it is skipped)
before it is published, and marked published after: a scheduler that takes over
publishes again what was recorded and not confirmed, with the same ids, so a
firing is neither lost nor doubled (NATS drops a repeated message id, the
history has one row per (schedule, due instant), the runners one claim per job).
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

from services.scheduler import journal
from services.scheduler.journal import Entry, Recorded, TaskState
from services.scheduler.timers import Timers
from shared import bus, recurrence, subjects
from shared.db import Pool
from shared.dispatch import queue_job
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

# Firings carried out at once when many schedules are due together.
FIRE_CONCURRENCY = 16
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
        self._slots = asyncio.Semaphore(FIRE_CONCURRENCY)
        self._schedule_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._task_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
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
            for schedule_id in self.timers.pop_due(utcnow()):
                self._spawn(self._fire(schedule_id))
            if time.monotonic() >= reconcile_at:
                reconcile_at = time.monotonic() + RECONCILE_S
                self._spawn(self._arm_all())
            delay = min(MAX_SLEEP_S, reconcile_at - time.monotonic())
            if (at := self.timers.next_at()) is not None:
                delay = min(delay, (at - utcnow()).total_seconds())
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(work))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

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

    async def _fire(self, schedule_id: str) -> None:
        async with self._slots, self._schedule_locks[schedule_id]:
            e = await journal.load(self.pool, schedule_id)
            if e is None or not e.enabled:
                self.timers.remove(schedule_id)
                return
            if self._stale(e) or e.next_run_at is None:
                await self._arm(e)
                return
            due = e.next_run_at
            if due > utcnow():  # moved on since the timer was set
                self._set_timer(schedule_id, due)
                return
            async with self._task_locks[e.task_id]:
                fired = await self._fire_due(e, due)
        if fired is not None:
            self._set_timer(schedule_id, fired)

    async def _fire_due(self, e: Entry, due: datetime) -> datetime | None:
        """Decide, record and publish one firing; returns the next run, or None when
        the schedule moved on meanwhile (its timer is then set again)."""
        pending = self._unconfirmed[e.task_id]
        state = await journal.task_state(self.pool, e.task_id, list(pending))
        if state is None:  # the task is being deleted, with its schedules
            self.timers.remove(e.id)
            return None
        reason = self._overlap(state, pending)
        job_id = recurrence.firing_job_id(e.id, due)
        firing = recurrence.fired(e.rule, due, utcnow())
        if not await journal.record_firing(self.pool, e, due, firing, job_id, reason):
            # Changed meanwhile: start again from what the journal says now.
            await self._reload(e.id)
            return None
        record = Recorded(
            schedule_id=e.id,
            task_id=e.task_id,
            due_at=due,
            job_id=job_id,
            skip_reason=reason,
            next_run_at=firing.next_run_at,
            catch_up=firing.catch_up,
        )
        try:
            await self._publish(state.task, record)
        except Exception as err:  # NATS unreachable: the outbox keeps it
            log.warning("publishing firing %s failed (%s); retrying", job_id, err)
            self._retry_publish()
        return firing.next_run_at

    def _overlap(self, state: TaskState, pending: dict[str, float]) -> str | None:
        """Why a new job of the task would overlap one still queued or running."""
        now = time.monotonic()
        for job_id, since in list(pending.items()):
            if job_id in state.known or now - since > UNCONFIRMED_S:
                del pending[job_id]
        for job_id, status in sorted(state.active.items()):
            return f"job {job_id} of this task is still {status}"
        for job_id in pending:
            return f"job {job_id} of this task is still queued"
        return None

    async def _publish(self, task: Task, r: Recorded) -> None:
        if r.skip_reason is None:
            await queue_job(
                self.js,
                task,
                "schedule",
                schedule_id=r.schedule_id,
                due_at=r.due_at,
                job_id=r.job_id,
            )
            self._unconfirmed[task.id][r.job_id] = time.monotonic()
        else:
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
                reason=r.skip_reason,
            )
            subject = subjects.job_event(r.job_id, "skipped")
            await bus.publish(self.js, subject, encode(skipped), f"skipped:{r.job_id}")
        fired = ScheduleFired(
            schedule_id=r.schedule_id,
            task_id=task.id,
            job_id=r.job_id,
            due_at=r.due_at,
            catch_up=r.catch_up,
            next_run_at=r.next_run_at,
            skipped=r.skip_reason,
        )
        subject = subjects.schedule_event(r.schedule_id, "fired")
        await bus.publish(self.js, subject, encode(fired), f"fired:{r.job_id}")
        await journal.mark_published(self.pool, r.schedule_id, r.job_id)
        late = (utcnow() - r.due_at).total_seconds()
        log.info(
            "schedule %s fired job %s due %s (%.3fs late)%s",
            r.schedule_id,
            r.job_id,
            r.due_at.isoformat(),
            late,
            f", skipped: {r.skip_reason}" if r.skip_reason else "",
        )

    async def _publish_recorded(self) -> None:
        """Publish the firings recorded but not confirmed published."""
        for r in await journal.unpublished(self.pool):
            state = await journal.task_state(self.pool, r.task_id, [])
            if state is not None:
                await self._publish(state.task, r)

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
