"""SQL of the scheduler: schedules with their journal, and the firing outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shared.config_db import TASK_COLUMNS, task_from_row
from shared.db import Pool
from shared.models import Task
from shared.recurrence import Firing, Rule


@dataclass(frozen=True)
class Entry:
    """A schedule as configured, with what its journal says."""

    id: str
    task_id: str
    rule: Rule
    enabled: bool
    revision: int
    journal_revision: int | None
    session: str | None
    next_run_at: datetime | None
    last_run_at: datetime | None


@dataclass(frozen=True)
class Recorded:
    """A firing recorded in the journal but maybe not yet published."""

    schedule_id: str
    task_id: str
    due_at: datetime
    job_id: str
    skip_reason: str | None
    next_run_at: datetime
    catch_up: bool


_ENTRY = """
SELECT s.id::text, s.task_id::text, s.interval_minutes, s.start_at, s.journalised, s.enabled,
       s.revision, j.revision AS journal_revision, j.session, j.next_run_at, j.last_run_at
FROM schedules s LEFT JOIN schedule_journal j ON j.schedule_id = s.id
"""


def _entry(row: Any) -> Entry:
    return Entry(
        id=row["id"],
        task_id=row["task_id"],
        rule=Rule(
            interval=timedelta(minutes=row["interval_minutes"]),
            start_at=row["start_at"],
            journalised=row["journalised"],
        ),
        enabled=row["enabled"],
        revision=row["revision"],
        journal_revision=row["journal_revision"],
        session=row["session"],
        next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"],
    )


async def load_enabled(pool: Pool) -> list[Entry]:
    return [_entry(r) for r in await pool.fetch(f"{_ENTRY} WHERE s.enabled")]


async def load(pool: Pool, schedule_id: str) -> Entry | None:
    row = await pool.fetchrow(f"{_ENTRY} WHERE s.id = $1", schedule_id)
    return _entry(row) if row else None


async def arm(pool: Pool, entry: Entry, session: str, next_run_at: datetime) -> bool:
    """Write the next run computed for the schedule's current revision; False when
    the schedule no longer exists."""
    try:
        await pool.execute(
            """INSERT INTO schedule_journal (schedule_id, revision, session, next_run_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (schedule_id) DO UPDATE
               SET revision = $2, session = $3, next_run_at = $4, updated_at = now()""",
            entry.id,
            entry.revision,
            session,
            next_run_at,
        )
    except asyncpg.ForeignKeyViolationError:
        return False
    return True


async def record_firing(
    pool: Pool, entry: Entry, due: datetime, firing: Firing, job_id: str, reason: str | None
) -> bool:
    """Record a firing and advance the schedule, unless the journal moved on
    meanwhile (changed, or fired by another scheduler): the journal row is the
    fence that keeps a firing from being doubled."""
    result = await pool.execute(
        """UPDATE schedule_journal
           SET next_run_at = $4, last_run_at = $5, last_due_at = $3, last_job_id = $6,
               last_skip_reason = $7, published = false, updated_at = now()
           WHERE schedule_id = $1 AND revision = $2 AND next_run_at = $3""",
        entry.id,
        entry.revision,
        due,
        firing.next_run_at,
        firing.last_run_at,
        job_id,
        reason,
    )
    return str(result).endswith(" 1")


async def mark_published(pool: Pool, schedule_id: str, job_id: str) -> None:
    await pool.execute(
        "UPDATE schedule_journal SET published = true WHERE schedule_id = $1 AND last_job_id = $2",
        schedule_id,
        job_id,
    )


async def unpublished(pool: Pool) -> list[Recorded]:
    rows = await pool.fetch(
        """SELECT j.schedule_id::text, s.task_id::text, j.last_due_at, j.last_job_id::text,
                  j.last_skip_reason, j.next_run_at, j.last_run_at <> j.last_due_at AS catch_up
           FROM schedule_journal j JOIN schedules s ON s.id = j.schedule_id
           WHERE NOT j.published"""
    )
    return [
        Recorded(
            schedule_id=r["schedule_id"],
            task_id=r["task_id"],
            due_at=r["last_due_at"],
            job_id=r["last_job_id"],
            skip_reason=r["last_skip_reason"],
            next_run_at=r["next_run_at"],
            catch_up=r["catch_up"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class TaskState:
    task: Task
    # Jobs of the task still queued or running, as the history knows them.
    active: dict[str, str]
    # Which of the given job ids the history knows.
    known: set[str]


async def task_state(pool: Pool, task_id: str, job_ids: list[str]) -> TaskState | None:
    row = await pool.fetchrow(
        f"""SELECT {TASK_COLUMNS},
                   ARRAY(SELECT j.id::text || ' ' || j.status FROM jobs j
                         WHERE j.task_id = t.id AND j.status IN ('queued', 'running')) AS active,
                   ARRAY(SELECT j.id::text FROM jobs j WHERE j.id = ANY($2::uuid[])) AS known
            FROM tasks t WHERE t.id = $1""",
        task_id,
        job_ids,
    )
    if row is None:
        return None
    active = dict(item.split(" ", 1) for item in row["active"])
    return TaskState(task=task_from_row(row), active=active, known=set(row["known"]))
