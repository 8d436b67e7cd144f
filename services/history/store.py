"""SQL of the history projection."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import msgspec

from services.history.projection import Batch
from shared import notifications_db
from shared.events import (
    AnyJobEvent,
    JobFinished,
    JobProgress,
    JobQueued,
    JobSkipped,
    JobStarted,
)
from shared.lifecycle import MOVES_FROM, sql_states
from shared.notifications import job_notice

Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"

_INSERT_LINES = """
INSERT INTO job_output (job_id, seq, ts, stream, line)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
ON CONFLICT DO NOTHING
"""

# The queued (or skipped) events of a batch, in one statement: one each made the history's
# CPU the busiest of a burst of thousands of jobs. A job's connectors come as a JSON list
# per job (an array of arrays must be rectangular). Of several retries of one job, the
# first queued is its retry.
_QUEUED = """
WITH job AS (
    INSERT INTO jobs (id, task_id, schedule_id, trigger, type, status, due_at, queued_at,
                      connector_ids, reason, finished_at, last_seq, store_id, runner_group,
                      retry_of, retries_left, requested_by)
    SELECT q.id, q.task_id, q.schedule_id, q.trigger, q.type, q.status, q.due_at, q.queued_at,
           ARRAY(SELECT jsonb_array_elements_text(q.connector_ids::jsonb))::uuid[],
           q.reason, q.finished_at, q.last_seq, q.store_id, q.runner_group, q.retry_of,
           q.retries_left, q.requested_by
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[],
                $11::timestamptz[], $12::bigint[], $13::uuid[], $14::text[], $15::uuid[],
                $16::int[], $17::text[])
         AS q(id, task_id, schedule_id, trigger, type, status, due_at, queued_at,
              connector_ids, reason, finished_at, last_seq, store_id, runner_group,
              retry_of, retries_left, requested_by)
    ON CONFLICT DO NOTHING
    RETURNING id, queued_at, connector_ids, task_id, status, retry_of
),
retried AS (
    UPDATE jobs SET retried_by = r.id
    FROM (SELECT DISTINCT ON (retry_of) retry_of, id FROM job WHERE retry_of IS NOT NULL
          ORDER BY retry_of, queued_at, id) r
    WHERE jobs.id = r.retry_of AND jobs.retried_by IS NULL
)
INSERT INTO job_connectors (connector_id, queued_at, job_id, task_id, status)
SELECT DISTINCT unnest(connector_ids), queued_at, id, task_id, status FROM job
"""

# The job's status changed: its rows of job_connectors follow (the history's filters).
_CONNECTORS_FOLLOW = """
UPDATE job_connectors c SET status = job.status FROM job
WHERE c.connector_id = ANY(job.connector_ids) AND c.queued_at = job.queued_at
  AND c.job_id = job.id
"""

_STARTED = f"""
WITH job AS (
    UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, $2), attempt = $3,
                    runner = $4, concurrency = $5, last_seq = $6
    WHERE id = $1 AND last_seq < $6 AND status IN {sql_states(MOVES_FROM)}
    RETURNING id, queued_at, connector_ids, status
)
{_CONNECTORS_FOLLOW}"""

# Events of one job may come out of order (a fetch lost with a NATS server comes back
# after the ack wait): an attempt's row is made by whichever of its started and finished
# events comes first; its runner and start are null until the started one comes. A late
# started event of an attempt that a later one followed finds it lost; like any started
# event older than the job's state, it still gives the job its first start, and its
# runner if it is the job's last attempt (shared/lifecycle.py).
_ATTEMPT_STARTED = """
WITH lost AS (
    UPDATE job_attempts SET status = 'lost', finished_at = $2
    WHERE job_id = $1 AND attempt < $3 AND status = 'running'
),
late AS (
    UPDATE jobs SET started_at = LEAST(started_at, $2),
                    runner = CASE WHEN attempt = $3 THEN $4 ELSE runner END,
                    concurrency = CASE WHEN attempt = $3 THEN $5 ELSE concurrency END
    WHERE id = $1 AND last_seq > $6
)
INSERT INTO job_attempts (job_id, attempt, runner, started_at, status, finished_at)
SELECT $1, $3, $4, $2, CASE WHEN later.n > 0 THEN 'lost' ELSE 'running' END, later.at
FROM (SELECT count(*) AS n, min(COALESCE(started_at, finished_at)) AS at
      FROM job_attempts WHERE job_id = $1 AND attempt > $3) later
ON CONFLICT (job_id, attempt) DO UPDATE SET runner = excluded.runner,
                                            started_at = excluded.started_at
WHERE job_attempts.started_at IS NULL
"""

_PROGRESS = f"""
UPDATE jobs SET progress = $2, progress_seq = $3
WHERE id = $1 AND progress_seq < $3 AND status IN {sql_states(MOVES_FROM)}
"""

_FINISHED = f"""
WITH job AS (
    UPDATE jobs SET status = $2, finished_at = $3, exit_code = $4, error = $5,
                    snapshot_id = COALESCE($6, snapshot_id), progress = COALESCE($7, progress),
                    progress_seq = CASE WHEN $7::jsonb IS NULL THEN progress_seq ELSE $9 END,
                    attempt = GREATEST(attempt, $8), last_seq = $9,
                    bytes_added = COALESCE($10, bytes_added),
                    kept_snapshots = COALESCE($11, kept_snapshots),
                    deleted_snapshots = COALESCE($12, deleted_snapshots)
    WHERE id = $1 AND last_seq < $9 AND status IN {sql_states(MOVES_FROM)}
    RETURNING id, queued_at, connector_ids, status
)
{_CONNECTORS_FOLLOW}"""

# What a job's end may tell (shared/notifications.py): its task, and its task's run queued
# before it that ended.
_TOLD_OF = """
SELECT j.task_id::text AS task_id, t.name AS task_name, j.type, j.connector_ids::text[],
       prev.id::text AS previous_id, prev.status AS previous_status
FROM jobs j
LEFT JOIN tasks t ON t.id = j.task_id
LEFT JOIN LATERAL (
    SELECT p.id, p.status FROM jobs p
    WHERE p.task_id = j.task_id AND p.id <> j.id AND p.status IN ('succeeded', 'failed')
      AND p.queued_at < j.queued_at
    ORDER BY p.queued_at DESC LIMIT 1
) prev ON true
WHERE j.id = $1 AND j.status = $2
"""

_ATTEMPT_FINISHED = """
INSERT INTO job_attempts (job_id, attempt, status, finished_at, exit_code, error)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (job_id, attempt) DO UPDATE SET status = excluded.status,
    finished_at = excluded.finished_at, exit_code = excluded.exit_code, error = excluded.error
WHERE job_attempts.status = 'running'
"""

_KNOWN = "SELECT id::text FROM jobs WHERE id = ANY($1::uuid[])"


def _json(value: msgspec.Struct | None) -> Any:
    return None if value is None else msgspec.to_builtins(value)


async def apply(conn: Conn, batch: Batch) -> set[str]:
    """Write one batch; the caller holds the transaction. Returns the jobs not known yet
    (their queued event is still to come): their other state events are not written, to
    be given again later."""
    if batch.lines:
        await conn.execute(
            _INSERT_LINES,
            [j for j, _ in batch.lines],
            [ln.seq for _, ln in batch.lines],
            [ln.ts for _, ln in batch.lines],
            [ln.stream for _, ln in batch.lines],
            # PostgreSQL text cannot hold NUL.
            [ln.line.replace("\x00", "") for _, ln in batch.lines],
        )
    if batch.queued:
        await _queue(conn, batch.queued)
    unknown: set[str] = set()
    if batch.state:
        ids = {ev.job_id for ev in batch.state}
        unknown = ids - {r[0] for r in await conn.fetch(_KNOWN, list(ids))}
    for ev in batch.state:
        if ev.job_id not in unknown:
            await _apply_state(conn, ev)
    if batch.queued or batch.state:
        # What these jobs add to GET /metrics' totals, noted by the jobs table's trigger.
        await conn.execute("SELECT metric_fold()")
    return unknown


async def _queue(conn: Conn, events: list[JobQueued]) -> None:
    rows = [
        (
            ev.job_id,
            ev.task_id,
            ev.schedule_id,
            ev.trigger,
            ev.type,
            "skipped" if isinstance(ev, JobSkipped) else "queued",
            ev.due_at,
            ev.ts,
            msgspec.json.encode(ev.connector_ids).decode(),
            ev.reason if isinstance(ev, JobSkipped) else None,
            ev.ts if isinstance(ev, JobSkipped) else None,
            ev.seq,
            ev.store_id,
            ev.runner_group,
            ev.retry_of,
            ev.retries_left,
            ev.requested_by,
        )
        for ev in events
    ]
    await conn.execute(_QUEUED, *(list(column) for column in zip(*rows, strict=True)))


async def _apply_state(conn: Conn, ev: AnyJobEvent) -> None:
    if isinstance(ev, JobStarted):
        await conn.execute(
            _STARTED, ev.job_id, ev.ts, ev.attempt, ev.runner, ev.concurrency, ev.seq
        )
        await conn.execute(
            _ATTEMPT_STARTED, ev.job_id, ev.ts, ev.attempt, ev.runner, ev.concurrency, ev.seq
        )
    elif isinstance(ev, JobProgress):
        await conn.execute(_PROGRESS, ev.job_id, _json(ev.progress), ev.seq)
    elif isinstance(ev, JobFinished):
        await conn.execute(
            _FINISHED,
            ev.job_id,
            ev.status,
            ev.ts,
            ev.exit_code,
            ev.error,
            ev.snapshot_id,
            _json(ev.progress),
            ev.attempt,
            ev.seq,
            ev.bytes_added,
            ev.prune.kept if ev.prune else None,
            ev.prune.deleted if ev.prune else None,
        )
        await conn.execute(
            _ATTEMPT_FINISHED, ev.job_id, ev.attempt, ev.status, ev.ts, ev.exit_code, ev.error
        )
        await _tell(conn, ev)


async def _tell(conn: Conn, ev: JobFinished) -> None:
    """Record what the job's end tells, if anything (a failure, a recovery)."""
    if ev.status not in ("failed", "succeeded"):
        return
    row = await conn.fetchrow(_TOLD_OF, ev.job_id, ev.status)
    if row is None:  # another end was projected for it
        return
    previous = (row["previous_id"], row["previous_status"]) if row["previous_id"] else None
    notice = job_notice(
        ev, row["task_id"], row["task_name"], row["type"], row["connector_ids"], previous
    )
    if notice is not None:
        await notifications_db.record(conn, [(notice, row["task_id"], row["connector_ids"])])
