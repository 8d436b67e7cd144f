"""SQL of the scheduler: schedules with their journal, and the firing outbox."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from shared import notifications_db
from shared.config_db import TASK_COLUMNS, task_from_row
from shared.db import Pool
from shared.lifecycle import ACTIVE, sql_states
from shared.models import Task
from shared.notifications import Notice
from shared.recurrence import Firing, Rule


class Entry(msgspec.Struct, frozen=True):
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


class Recorded(msgspec.Struct, frozen=True):
    """A firing recorded in the journal but maybe not yet published."""

    schedule_id: str
    task_id: str
    due_at: datetime
    job_id: str
    skip_reason: str | None
    next_run_at: datetime
    catch_up: bool
    # When the scheduler decided it (what its lateness is measured by); None when read
    # back from the journal to be published again.
    fired_at: datetime | None = None


class Planned(msgspec.Struct, frozen=True):
    """A firing decided: the schedule as read, what the firing changes, its record."""

    entry: Entry
    firing: Firing
    record: Recorded


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


async def load_stale(pool: Pool, session: str) -> list[Entry]:
    """The enabled schedules whose journal is missing, older than their revision, or of
    another session: those changed without the scheduler hearing of it. The others are
    armed already; one read of all of them every minute would cost an idle scheduler
    more than everything else it does."""
    rows = await pool.fetch(
        f"""{_ENTRY} WHERE s.enabled
            AND (j.schedule_id IS NULL OR j.revision <> s.revision OR j.session <> $1)""",
        session,
    )
    return [_entry(r) for r in rows]


async def load_many(pool: Pool, schedule_ids: list[str]) -> dict[str, Entry]:
    if not schedule_ids:
        return {}
    rows = await pool.fetch(f"{_ENTRY} WHERE s.id = ANY($1::uuid[])", schedule_ids)
    return {r["id"]: _entry(r) for r in rows}


async def arm_many(
    pool: Pool, entries: list[Entry], session: str, next_runs: dict[str, datetime]
) -> set[str]:
    """Write the next runs computed for the schedules' current revisions, in one
    statement; answers the schedules written (the others no longer exist)."""
    if not entries:
        return set()
    while True:
        try:
            rows = await pool.fetch(
                """INSERT INTO schedule_journal (schedule_id, revision, session, next_run_at)
                   SELECT f.id, f.revision, $3, f.next_run_at
                   FROM unnest($1::uuid[], $2::int[], $4::timestamptz[])
                        AS f(id, revision, next_run_at)
                   WHERE EXISTS (SELECT FROM schedules s WHERE s.id = f.id)
                   ON CONFLICT (schedule_id) DO UPDATE
                   SET revision = EXCLUDED.revision, session = EXCLUDED.session,
                       next_run_at = EXCLUDED.next_run_at, updated_at = now()
                   RETURNING schedule_id::text""",
                [e.id for e in entries],
                [e.revision for e in entries],
                session,
                [next_runs[e.id] for e in entries],
            )
        except asyncpg.ForeignKeyViolationError:
            continue  # one deleted while written: read again, it is left out
        return {r["schedule_id"] for r in rows}


async def record_firings(pool: Pool, firings: list[Planned]) -> set[str]:
    """Record firings and advance their schedules, in one statement; answers the
    schedules recorded. A schedule whose journal moved on meanwhile (fired by another
    scheduler), or that was changed or disabled since it was read, is left out: the
    journal row is the fence that keeps a firing from being doubled, the schedule's
    revision the one that keeps a schedule read ahead from firing as it no longer is."""
    rows = await pool.fetch(
        """UPDATE schedule_journal j
           SET next_run_at = f.next_run_at, last_run_at = f.last_run_at, last_due_at = f.due_at,
               last_job_id = f.job_id, last_skip_reason = f.reason, published = false,
               updated_at = now()
           FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::timestamptz[],
                       $5::timestamptz[], $6::uuid[], $7::text[])
                AS f(schedule_id, revision, due_at, next_run_at, last_run_at, job_id, reason)
           WHERE j.schedule_id = f.schedule_id AND j.revision = f.revision
             AND j.next_run_at = f.due_at
             AND EXISTS (SELECT FROM schedules s
                         WHERE s.id = f.schedule_id AND s.revision = f.revision AND s.enabled)
           RETURNING j.schedule_id::text""",
        [p.entry.id for p in firings],
        [p.entry.revision for p in firings],
        [p.record.due_at for p in firings],
        [p.firing.next_run_at for p in firings],
        [p.firing.last_run_at for p in firings],
        [p.record.job_id for p in firings],
        [p.record.skip_reason for p in firings],
    )
    return {r["schedule_id"] for r in rows}


async def mark_published(pool: Pool, records: list[Recorded]) -> None:
    await pool.execute(
        """UPDATE schedule_journal j SET published = true
           FROM unnest($1::uuid[], $2::uuid[]) AS f(schedule_id, job_id)
           WHERE j.schedule_id = f.schedule_id AND j.last_job_id = f.job_id""",
        [r.schedule_id for r in records],
        [r.job_id for r in records],
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


class TaskState(msgspec.Struct, frozen=True):
    task: Task
    # When the task was last changed: a task read ahead of its firing is used then only
    # if it has not changed since.
    updated_at: datetime
    # Jobs of the task still queued or running, as the history knows them.
    active: dict[str, str]


_ACTIVE = f"""ARRAY(SELECT j.id::text || ' ' || j.status FROM jobs j
                    WHERE j.task_id = t.id AND j.status IN {sql_states(ACTIVE)}) AS active"""


async def task_states(
    pool: Pool, task_ids: list[str], known: Mapping[str, TaskState] | None = None
) -> dict[str, TaskState]:
    """The tasks that still exist, with their active jobs (the `jobs_active` index). Of
    the tasks in `known` (read earlier), only those changed since are read again whole;
    of the others, their active jobs."""
    if not known:
        rows = await pool.fetch(
            f"""SELECT {TASK_COLUMNS}, t.updated_at, {_ACTIVE}
                FROM tasks t WHERE t.id = ANY($1::uuid[])""",
            task_ids,
        )
        return {r["id"]: TaskState(task_from_row(r), r["updated_at"], _active(r)) for r in rows}
    rows = await pool.fetch(
        f"SELECT t.id::text, t.updated_at, {_ACTIVE} FROM tasks t WHERE t.id = ANY($1::uuid[])",
        task_ids,
    )
    changed = [r["id"] for r in rows if _changed(known.get(r["id"]), r["updated_at"])]
    fresh = await task_states(pool, changed) if changed else {}
    return {
        r["id"]: fresh.get(r["id"]) or TaskState(known[r["id"]].task, r["updated_at"], _active(r))
        for r in rows
    }


def _changed(known: TaskState | None, updated_at: datetime) -> bool:
    return known is None or known.updated_at != updated_at


def _active(row: Any) -> dict[str, str]:
    return dict(a.split(" ", 1) for a in row["active"])


async def known_jobs(pool: Pool, job_ids: list[str]) -> set[str]:
    """Which of the given jobs the history has recorded."""
    if not job_ids:
        return set()
    rows = await pool.fetch("SELECT id::text FROM jobs WHERE id = ANY($1::uuid[])", job_ids)
    return {r["id"] for r in rows}


class Failure(msgspec.Struct, frozen=True):
    """A failed job its task's retry policy retries at `retry_at`."""

    job_id: str
    task_id: str
    retry_at: datetime
    retries_left: int


async def failures_to_retry(pool: Pool, since: datetime) -> list[Failure]:
    """Failed jobs finished since `since` that have retries left, of tasks with a retry
    policy, and that no later run of their task (a retry among them) has superseded."""
    rows = await pool.fetch(
        """SELECT j.id::text AS job_id, j.task_id::text,
                  j.finished_at + make_interval(secs => t.retry_delay_s) AS retry_at,
                  j.retries_left
           FROM jobs j JOIN tasks t ON t.id = j.task_id
           WHERE j.status = 'failed' AND j.retries_left > 0 AND j.finished_at > $1
             AND t.retry_delay_s IS NOT NULL
             AND NOT EXISTS (SELECT FROM jobs n WHERE n.task_id = j.task_id
                             AND n.queued_at > j.queued_at AND n.status <> 'skipped')
           ORDER BY retry_at""",
        since,
    )
    return [
        Failure(
            job_id=r["job_id"],
            task_id=r["task_id"],
            retry_at=r["retry_at"],
            retries_left=r["retries_left"],
        )
        for r in rows
    ]


async def freshness_told(pool: Pool) -> dict[tuple[str, str], str]:
    """The freshness last told of each task and connector: (watched, id) -> state."""
    rows = await pool.fetch("SELECT watched, id::text, state FROM freshness_journal")
    return {(r["watched"], r["id"]): r["state"] for r in rows}


async def record_freshness(
    pool: Pool,
    told: list[tuple[str, str, str]],
    forgotten: list[tuple[str, str]],
    at: datetime,
    notices: list[tuple[Notice, str | None, list[str]]],
) -> None:
    """Record the states told ((watched, id, state)), and the events told for the
    notifications; forget those no rule asks for."""
    async with pool.acquire() as conn, conn.transaction():
        await notifications_db.record(conn, notices)
        await conn.execute(
            """INSERT INTO freshness_journal (watched, id, state, changed_at)
               SELECT w, i, s, $4 FROM unnest($1::text[], $2::uuid[], $3::text[]) AS f(w, i, s)
               ON CONFLICT (watched, id) DO UPDATE
               SET state = EXCLUDED.state, changed_at = EXCLUDED.changed_at""",
            [w for w, _, _ in told],
            [i for _, i, _ in told],
            [s for _, _, s in told],
            at,
        )
        await conn.execute(
            """DELETE FROM freshness_journal j
               USING unnest($1::text[], $2::uuid[]) AS f(w, i)
               WHERE j.watched = f.w AND j.id = f.i""",
            [w for w, _ in forgotten],
            [i for _, i in forgotten],
        )
