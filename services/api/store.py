"""SQL of the api: configuration writes, and reads of the job history."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from services.api import schedules_store
from shared.config_db import CONNECTOR_COLUMNS, TASK_COLUMNS, connector_from_row, task_from_row
from shared.db import UNAVAILABLE, Pool
from shared.durations import parse_duration
from shared.lifecycle import Tracked
from shared.models import (
    Connector,
    ConnectorCreate,
    Job,
    Progress,
    PruneResult,
    RestorePoint,
    Task,
    TaskCreate,
)


class InUse(Exception):
    """A connector that tasks still use."""


class Duplicate(Exception):
    """A name already taken."""


async def room_for(
    pool: Pool, table: Literal["connectors", "tasks", "schedules"], cap: int, adding: int = 1
) -> None:
    """Raise Full when `adding` more rows would take the table past its cap."""
    held: int = await pool.fetchval(f"SELECT count(*) FROM {table}")
    if held + adding > cap:
        raise Full(table, cap)


class Full(Exception):
    def __init__(self, table: str, cap: int) -> None:
        super().__init__(f"this installation holds the most {table} it allows ({cap})")
        self.table = table


# Connectors


async def insert_connector(pool: Pool, body: ConnectorCreate) -> Connector:
    try:
        row = await pool.fetchrow(
            f"""INSERT INTO connectors (id, name, role, location, options, runner_group,
                                        freshness_s)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {CONNECTOR_COLUMNS}""",
            uuid.uuid4(),
            body.name,
            body.role,
            body.location,
            body.options,
            body.runner_group,
            seconds(body.freshness),
        )
    except asyncpg.UniqueViolationError as e:
        raise Duplicate from e
    return connector_from_row(row)


async def list_connectors(pool: Pool, role: str | None) -> list[Connector]:
    rows = await pool.fetch(
        f"""SELECT {CONNECTOR_COLUMNS} FROM connectors
            WHERE $1::text IS NULL OR role = $1 ORDER BY role, name""",
        role,
    )
    return [connector_from_row(r) for r in rows]


async def update_connector(
    pool: Pool,
    connector_id: str,
    name: str,
    location: str,
    options: dict[str, str],
    runner_group: str | None,
    freshness: str | None,
) -> Connector | None:
    try:
        row = await pool.fetchrow(
            # Another location is another store: what was learned of the old one is dropped.
            f"""UPDATE connectors SET name = $2, location = $3, options = $4, runner_group = $5,
                       freshness_s = $6, updated_at = now(),
                       initialized = CASE WHEN location = $3 THEN initialized END,
                       initialized_seen_at = CASE WHEN location = $3 THEN initialized_seen_at
                                                  ELSE now() END
                WHERE id = $1 RETURNING {CONNECTOR_COLUMNS}""",
            connector_id,
            name,
            location,
            options,
            runner_group,
            seconds(freshness),
        )
    except asyncpg.UniqueViolationError as e:
        raise Duplicate from e
    return connector_from_row(row) if row else None


def seconds(duration: str | None) -> int | None:
    """A duration as validated (shared/durations.py), in seconds for the database."""
    return None if duration is None else parse_duration(duration)


async def delete_connector(pool: Pool, connector_id: str) -> bool:
    try:
        result = await pool.execute("DELETE FROM connectors WHERE id = $1", connector_id)
    except (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError) as e:
        raise InUse from e
    return result.endswith(" 1")


async def record_initialized(pool: Pool, connector_id: str, initialized: bool) -> None:
    """What a runner found of a store: initialized or not, as of now."""
    await pool.execute(
        """UPDATE connectors SET initialized = $2, initialized_seen_at = now()
           WHERE id = $1 AND role = 'store'""",
        connector_id,
        initialized,
    )


async def initialized_stores(pool: Pool, ids: list[str]) -> dict[str, bool | None]:
    """Whether each of these stores is initialized: as a runner last found it, or proved
    by a job that succeeded with it since; None: not known."""
    rows = await pool.fetch(
        """SELECT c.id::text AS id,
                  CASE WHEN c.initialized THEN true
                       WHEN EXISTS (
                           SELECT 1 FROM job_connectors jc JOIN jobs j ON j.id = jc.job_id
                           WHERE jc.connector_id = c.id AND j.status = 'succeeded'
                             AND j.finished_at > COALESCE(c.initialized_seen_at, '-infinity'))
                       THEN true
                       ELSE c.initialized END AS initialized
           FROM connectors c WHERE c.id = ANY($1::uuid[]) AND c.role = 'store'""",
        ids,
    )
    return {r["id"]: r["initialized"] for r in rows}


async def tasks_using(pool: Pool, connector_id: str) -> list[Task]:
    rows = await pool.fetch(
        f"""SELECT {TASK_COLUMNS} FROM tasks
            WHERE $1::uuid IN (source_id, store_id, destination_id, target_store_id)
            ORDER BY created_at, id""",
        connector_id,
    )
    return [task_from_row(r) for r in rows]


# Tasks


def _task_args(body: TaskCreate, point: RestorePoint | None) -> tuple[Any, ...]:
    return (
        body.name,
        body.type,
        body.source_id,
        body.store_id,
        body.destination_id,
        body.target_store_id,
        body.labels,
        body.snapshot_id,
        body.window,
        body.concurrency,
        body.restore_path,
        body.restore_mode,
        body.runner_group,
        body.excludes,
        body.retry.attempts if body.retry else None,
        seconds(body.retry.delay if body.retry else None),
        seconds(body.freshness),
        msgspec.to_builtins(body.retention) if body.retention else None,
        msgspec.to_builtins(point) if point else None,
    )


async def insert_task(
    conn: Pool | asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
    body: TaskCreate,
    point: RestorePoint | None,
) -> Task:
    row = await conn.fetchrow(
        f"""INSERT INTO tasks (id, name, type, source_id, store_id, destination_id,
                               target_store_id, labels, snapshot_id, snapshot_window, concurrency,
                               restore_path, restore_mode, runner_group, excludes,
                               retry_attempts, retry_delay_s, freshness_s, retention,
                               restore_point)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                    $18, $19, $20)
            RETURNING {TASK_COLUMNS}""",
        uuid.uuid4(),
        *_task_args(body, point),
    )
    return task_from_row(row)


async def update_task(
    pool: Pool, task_id: str, body: TaskCreate, point: RestorePoint | None
) -> Task | None:
    row = await pool.fetchrow(
        f"""UPDATE tasks SET name = $2, type = $3, source_id = $4, store_id = $5,
                   destination_id = $6, target_store_id = $7, labels = $8, snapshot_id = $9,
                   snapshot_window = $10, concurrency = $11, restore_path = $12,
                   restore_mode = $13, runner_group = $14, excludes = $15,
                   retry_attempts = $16, retry_delay_s = $17, freshness_s = $18,
                   retention = $19, restore_point = $20,
                   updated_at = now()
            WHERE id = $1 RETURNING {TASK_COLUMNS}""",
        task_id,
        *_task_args(body, point),
    )
    return task_from_row(row) if row else None


async def get_task(pool: Pool, task_id: str) -> Task | None:
    row = await pool.fetchrow(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1", task_id)
    return task_from_row(row) if row else None


async def list_tasks(pool: Pool) -> list[Task]:
    rows = await pool.fetch(f"SELECT {TASK_COLUMNS} FROM tasks ORDER BY created_at DESC, id")
    return [task_from_row(r) for r in rows]


async def delete_task(pool: Pool, task_id: str) -> bool:
    result = await pool.execute("DELETE FROM tasks WHERE id = $1", task_id)
    return result.endswith(" 1")


# Jobs

JOB_COLUMNS = """id::text, task_id::text, schedule_id::text, trigger, type, status, due_at,
    queued_at, started_at, finished_at, attempt, runner, concurrency, progress, snapshot_id,
    exit_code, error, reason, connector_ids::text[], store_id::text, bytes_added, runner_group,
    retry_of::text, retried_by::text, kept_snapshots, deleted_snapshots, requested_by"""


def snapshot_url(store_id: str | None, snapshot_id: str | None) -> str | None:
    if not store_id or not snapshot_id:
        return None
    return f"/#/connectors/{store_id}/snapshots/{snapshot_id}"


def job_from_row(row: Any) -> Job:
    p = row["progress"] or {}
    return Job(
        id=row["id"],
        task_id=row["task_id"],
        schedule_id=row["schedule_id"],
        trigger=row["trigger"],
        type=row["type"],
        status=row["status"],
        due_at=row["due_at"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempt=row["attempt"],
        runner=row["runner"],
        concurrency=row["concurrency"],
        progress=Progress(
            percent=p.get("percent"), files=p.get("files", 0), bytes=p.get("bytes", 0)
        ),
        snapshot_id=row["snapshot_id"],
        snapshot_url=snapshot_url(row["store_id"], row["snapshot_id"]),
        exit_code=row["exit_code"],
        error=row["error"],
        reason=row["reason"],
        connector_ids=list(row["connector_ids"]),
        bytes_added=row["bytes_added"],
        runner_group=row["runner_group"],
        retry_of=row["retry_of"],
        retried_by=row["retried_by"],
        prune=None
        if row["kept_snapshots"] is None
        else PruneResult(kept=row["kept_snapshots"], deleted=row["deleted_snapshots"] or []),
        requested_by=row["requested_by"],
    )


async def get_job(pool: Pool, job_id: str) -> Job | None:
    row = await pool.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
    return (await schedules_store.describe_jobs(pool, [job_from_row(row)]))[0] if row else None


async def get_tracked(pool: Pool, job_id: str) -> Tracked | None:
    """The job with the seqs of the events that made it (to apply the next ones)."""
    row = await pool.fetchrow(
        f"SELECT {JOB_COLUMNS}, last_seq, progress_seq FROM jobs WHERE id = $1", job_id
    )
    if row is None:
        return None
    seqs = {"last_seq": row["last_seq"], "progress_seq": row["progress_seq"]}
    return Tracked(job=job_from_row(row), **seqs)


async def wait_for_job(
    pool: Pool,
    job_id: str,
    timeout_s: float = 5.0,
    until: Callable[[Job], bool] = lambda _: True,
) -> Job | None:
    """A job once the history service has recorded it (in the state `until` wants);
    after the timeout, the job as it is recorded, if at all (None while PostgreSQL is
    away: the job is queued all the same)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    delay = 0.005
    while True:
        try:
            job = await get_job(pool, job_id)
        except UNAVAILABLE:
            job = None
        if (job and until(job)) or asyncio.get_running_loop().time() > deadline:
            return job
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


# No job id sorts below it: (until, ZERO_ID) bounds a page just before `until`.
ZERO_ID = "00000000-0000-0000-0000-000000000000"


def _page_bound(
    after: tuple[datetime, str] | None, until: datetime | None
) -> tuple[datetime, str] | None:
    """Where a page starts (excluded): after the cursor's job, before `until`."""
    bounds = [b for b in (after, (until, ZERO_ID) if until else None) if b is not None]
    return min(bounds) if bounds else None


def encode_cursor(queued_at: datetime, job_id: str) -> str:
    raw = f"{queued_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError when the cursor is not one this api made."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    when, _, job_id = raw.partition("|")
    return datetime.fromisoformat(when), str(uuid.UUID(job_id))


async def list_jobs(
    pool: Pool,
    *,
    status: str | None,
    task_id: str | None,
    connector_id: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[Job], str | None]:
    """Newest first, by keyset on (queued_at, id), one more row to know if more follow.
    Each combination of filters walks an index in that order (shared/migrations/0011):
    a page costs the same on a million jobs. Jobs queued from `since` (included) to
    `until` (excluded): bounds of the same walk."""
    query, args = _jobs_query(status, task_id, connector_id, _page_bound(after, until), since)
    rows = await pool.fetch(query, *args, limit + 1)
    jobs = await schedules_store.describe_jobs(pool, [job_from_row(r) for r in rows[:limit]])
    more = len(rows) > limit
    return jobs, (encode_cursor(jobs[-1].queued_at, jobs[-1].id) if more and jobs else None)


def _jobs_query(
    status: str | None,
    task_id: str | None,
    connector_id: str | None,
    bound: tuple[datetime, str] | None,
    since: datetime | None,
) -> tuple[str, list[Any]]:
    """The page's SQL with only the conditions given (its LIMIT the last argument): a
    prepared statement's generic plan of `($1 IS NULL OR status = $1)` walks no index
    of status, so an absent filter is left out instead."""
    # Through job_connectors, which has the job's task and status, for a connector.
    at, job = ("c.queued_at", "c.job_id") if connector_id else ("queued_at", "id")
    conditions: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("c.connector_id", connector_id),
        ("c.status" if connector_id else "status", status),
        ("c.task_id" if connector_id else "task_id", task_id),
    ):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    if bound is not None:
        args += bound
        conditions.append(f"({at}, {job}) < (${len(args) - 1}, ${len(args)}::uuid)")
    if since is not None:
        args.append(since)
        conditions.append(f"{at} >= ${len(args)}")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = f"ORDER BY {at} DESC, {job} DESC LIMIT ${len(args) + 1}"
    if connector_id is None:
        return f"SELECT {JOB_COLUMNS} FROM jobs {where} {order}", args
    return (
        f"""WITH page AS (SELECT c.job_id FROM job_connectors c {where} {order})
            SELECT {JOB_COLUMNS} FROM jobs WHERE id IN (SELECT job_id FROM page)
            ORDER BY queued_at DESC, id DESC""",
        args,
    )


async def job_output(
    pool: Pool, job_id: str, after: int = 0, limit: int | None = None
) -> list[tuple[int, datetime, str, str]]:
    """The job's lines after seq `after`, in order; at most `limit` (a page) when given."""
    rows = await pool.fetch(
        """SELECT seq, ts, stream, line FROM job_output WHERE job_id = $1 AND seq > $2
           ORDER BY seq LIMIT $3""",
        job_id,
        after,
        limit,
    )
    return [(r["seq"], r["ts"], r["stream"], r["line"]) for r in rows]


async def line_time(pool: Pool, job_id: str, up_to: int) -> datetime | None:
    """When the job's last stored line at or before seq `up_to` was printed."""
    ts: datetime | None = await pool.fetchval(
        """SELECT ts FROM job_output WHERE job_id = $1 AND seq <= $2
           ORDER BY seq DESC LIMIT 1""",
        job_id,
        up_to,
    )
    return ts
