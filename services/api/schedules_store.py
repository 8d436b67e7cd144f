"""SQL of the api for schedules, and the connector views built on them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
import msgspec

from services.api.validation import ScheduleSpec
from shared.db import Pool
from shared.events import utcnow
from shared.models import Interval, Job, Schedule, UpcomingRun
from shared.recurrence import Rule, describe, rearm, upcoming

UPCOMING_HORIZON = timedelta(days=30)
UPCOMING_LIMIT = 100
# Jobs on a connector's dashboard.
PAST_JOBS = 50

Conn: TypeAlias = "Pool | asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"


_SELECT = """
SELECT s.id::text, s.task_id::text, s.recurrence, s.interval_minutes, s.start_at, s.journalised,
       s.enabled, s.revision, s.created_at, j.revision AS journal_revision, j.next_run_at,
       j.last_run_at
FROM schedules s LEFT JOIN schedule_journal j ON j.schedule_id = s.id
"""

_INVOLVES = """s.task_id IN (SELECT t.id FROM tasks t WHERE $1::uuid IN
    (t.source_id, t.store_id, t.destination_id, t.target_store_id))"""


def interval_parts(minutes: int) -> Interval:
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return Interval(days=days, hours=hours, minutes=mins)


def _rule(row: Any) -> Rule:
    return Rule(
        interval=timedelta(minutes=row["interval_minutes"]),
        start_at=row["start_at"],
        journalised=row["journalised"],
    )


def _next_run(row: Any, now: datetime) -> datetime | None:
    """The journal's next run; until the scheduler has armed the schedule's
    latest revision, what it will compute."""
    if not row["enabled"]:
        return None
    if row["journal_revision"] == row["revision"] and row["next_run_at"] is not None:
        next_run: datetime = row["next_run_at"]
        return next_run
    return rearm(_rule(row), row["last_run_at"], now)


def _schedule(row: Any, now: datetime) -> Schedule:
    next_run = _next_run(row, now)
    # The runs ahead keep the grid of the next one; a paused schedule resumes on the grid
    # of its last run or of its start.
    anchor = next_run or row["last_run_at"] or row["start_at"]
    return Schedule(
        id=row["id"],
        task_id=row["task_id"],
        recurrence=row["recurrence"],
        interval=interval_parts(row["interval_minutes"]),
        start_at=row["start_at"],
        journalised=row["journalised"],
        enabled=row["enabled"],
        next_run_at=next_run,
        last_run_at=row["last_run_at"],
        created_at=row["created_at"],
        description=describe(timedelta(minutes=row["interval_minutes"]), anchor),
    )


async def insert(conn: Conn, task_id: str, specs: list[ScheduleSpec]) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in specs]
    await conn.executemany(
        """INSERT INTO schedules (id, task_id, recurrence, interval_minutes, start_at,
                                  journalised, enabled)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [
            (i, task_id, s.recurrence, s.interval_minutes, s.start_at, s.journalised, s.enabled)
            for i, s in zip(ids, specs, strict=True)
        ],
    )
    return ids


async def get(pool: Pool, schedule_id: str) -> Schedule | None:
    row = await pool.fetchrow(f"{_SELECT} WHERE s.id = $1", schedule_id)
    return _schedule(row, utcnow()) if row else None


async def list_all(pool: Pool, task_id: str | None, connector_id: str | None) -> list[Schedule]:
    rows = await pool.fetch(
        f"""{_SELECT}
            WHERE ($2::uuid IS NULL OR s.task_id = $2)
              AND ($1::uuid IS NULL OR {_INVOLVES})
            ORDER BY s.created_at, s.id""",
        connector_id,
        task_id,
    )
    now = utcnow()
    return [_schedule(r, now) for r in rows]


async def update(pool: Pool, schedule_id: str, spec: ScheduleSpec) -> bool:
    result = await pool.execute(
        """UPDATE schedules SET recurrence = $2, interval_minutes = $3, start_at = $4,
                  journalised = $5, enabled = $6, revision = revision + 1, updated_at = now()
           WHERE id = $1""",
        schedule_id,
        spec.recurrence,
        spec.interval_minutes,
        spec.start_at,
        spec.journalised,
        spec.enabled,
    )
    return str(result).endswith(" 1")


async def delete(pool: Pool, schedule_id: str) -> bool:
    result = await pool.execute("DELETE FROM schedules WHERE id = $1", schedule_id)
    return str(result).endswith(" 1")


async def upcoming_for_connector(
    pool: Pool, connector_id: str
) -> tuple[list[UpcomingRun], datetime]:
    """The next runs of the enabled schedules of tasks involving the connector, and the
    instant up to which they are all listed (the horizon, or the last one when capped)."""
    schedules = await list_all(pool, None, connector_id)
    task_of = {s.id: s.task_id for s in schedules}
    now = utcnow()
    runs = upcoming(
        (
            (s.id, s.next_run_at, _interval(s.interval))
            for s in schedules
            if s.next_run_at is not None
        ),
        now,
        UPCOMING_HORIZON,
        UPCOMING_LIMIT,
    )
    until = runs[-1][0] if len(runs) == UPCOMING_LIMIT else now + UPCOMING_HORIZON
    listed = [UpcomingRun(schedule_id=sid, task_id=task_of[sid], at=at) for at, sid in runs]
    return listed, until


async def describe_jobs(pool: Pool, jobs: list[Job]) -> list[Job]:
    """The jobs with their schedule's description (the schedules still there)."""
    ids = list({j.schedule_id for j in jobs if j.schedule_id})
    if not ids:
        return jobs
    rows = await pool.fetch(f"{_SELECT} WHERE s.id = ANY($1::uuid[])", ids)
    now = utcnow()
    words = {r["id"]: _schedule(r, now).description for r in rows}
    return [
        msgspec.structs.replace(j, schedule_description=words.get(j.schedule_id or ""))
        for j in jobs
    ]


def _interval(i: Interval) -> timedelta:
    return timedelta(days=i.days, hours=i.hours, minutes=i.minutes)
