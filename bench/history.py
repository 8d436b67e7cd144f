"""History API latency over a large job table: pages of GET /jobs (keyset cursors) for
every filter and combinations of them, against the naive peer, the same pages read by
OFFSET in plain SQL (no HTTP). Combinations that match nothing are included: a walk that
finds no index in the list's order reads every job of the table (or of the task, or of
the connector) to answer them."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.common import Row, median, percentile
from services.api.store import encode_cursor
from tests.support.stack import Stack, running_stack, stack_dir

JOBS = int(os.environ.get("BENCH_JOBS", "1000000"))
# Requests per filter: pages 1..PAGES after cursors, walked again until SAMPLES.
SAMPLES, PAGES, LIMIT = 100, 20, 50
# Scrapes of GET /metrics, one pass over every job each.
SCRAPES = 10
TASKS = [str(uuid.uuid4()) for _ in range(10)]
CONNECTORS = [str(uuid.uuid4()) for _ in range(20)]
PEER = "SQL OFFSET, same pages"

# Job i: task i % 10, connectors i % 20 and 7i % 20, queued i minutes ago; the newest are
# running or queued, the others succeeded, failed or cancelled by i % 5. So task 3 and
# connector 5 (only ever of task 5) have no failed job.
_FILL = """
INSERT INTO jobs (id, task_id, trigger, type, status, due_at, queued_at, finished_at,
                  connector_ids, last_seq)
SELECT gen_random_uuid(), ($1::uuid[])[1 + i % 10], 'schedule', 'backup',
       CASE WHEN i <= 20 THEN 'running' WHEN i <= 50 THEN 'queued'
            ELSE (ARRAY['succeeded', 'succeeded', 'failed', 'succeeded', 'cancelled'])[1 + i % 5]
       END,
       now() - i * interval '1 minute', now() - i * interval '1 minute',
       now() - i * interval '1 minute' + interval '30 seconds',
       ARRAY[($2::uuid[])[1 + i % 20], ($2::uuid[])[1 + (i * 7) % 20]], 3
FROM generate_series(1, $3::int) AS i
"""


async def _fill(dsn: str) -> float:
    """The jobs, written with the migrations' secondary indexes dropped and then built
    again as they were: building an index once is many times quicker than keeping it
    up to date through a million inserts."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '256MB'")
        indexes = await conn.fetch(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.tablename IN ('jobs', 'job_connectors') AND NOT EXISTS
                     (SELECT FROM pg_constraint c WHERE c.conname = i.indexname)"""
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        await conn.execute(_FILL, TASKS, CONNECTORS, JOBS)
        await conn.execute("SELECT metric_fold()")  # GET /metrics' totals, as the history does
        await conn.execute(
            """INSERT INTO job_connectors (connector_id, queued_at, job_id, task_id, status)
               SELECT DISTINCT unnest(connector_ids), queued_at, id, task_id, status FROM jobs
               ON CONFLICT DO NOTHING"""
        )
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute("VACUUM ANALYZE jobs")
        await conn.execute("VACUUM ANALYZE job_connectors")
        return time.perf_counter() - started
    finally:
        await conn.close()


def _ours(client: httpx.Client, params: dict[str, str]) -> list[float]:
    """Milliseconds per request, following next_cursor up to PAGES deep, SAMPLES times."""
    times: list[float] = []
    cursor, depth = None, 0
    while len(times) < SAMPLES:
        query = {**params, "limit": str(LIMIT), **({"cursor": cursor} if cursor else {})}
        t0 = time.perf_counter()
        r = client.get("/jobs", params=query)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        cursor, depth = r.json()["next_cursor"], depth + 1
        if cursor is None or depth == PAGES:
            cursor, depth = None, 0
    return times


def _where(params: dict[str, str]) -> tuple[str, list[Any]]:
    """The filters in plain SQL on the jobs table."""
    conditions, args = [], []
    for key, sql in (
        ("status", "status = ${}"),
        ("task_id", "task_id = ${}::uuid"),
        ("connector_id", "connector_ids @> ARRAY[${}::uuid]"),
        ("since", "queued_at >= ${}"),
        ("until", "queued_at < ${}"),
    ):
        if key in params:
            value = params[key]
            args.append(datetime.fromisoformat(value) if key in ("since", "until") else value)
            conditions.append(sql.format(len(args)))
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), args


async def _peer(dsn: str, params: dict[str, str], offsets: list[int]) -> list[float]:
    where, args = _where(params)
    conn = await asyncpg.connect(dsn)
    try:
        times = []
        for offset in offsets:
            t0 = time.perf_counter()
            await conn.fetch(
                f"SELECT * FROM jobs {where} ORDER BY queued_at DESC, id DESC "
                f"OFFSET {offset} LIMIT {LIMIT}",
                *args,
            )
            times.append((time.perf_counter() - t0) * 1000)
        return times
    finally:
        await conn.close()


def _day_back(minutes: int) -> dict[str, str]:
    """A day of jobs queued `minutes` back (one job a minute)."""
    until = datetime.now(UTC) - timedelta(minutes=minutes)
    return {"since": (until - timedelta(days=1)).isoformat(), "until": until.isoformat()}


async def _deep_cursor(dsn: str, depth: int) -> str:
    """The cursor of the page `depth` jobs deep in the whole list."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT queued_at, id::text FROM jobs ORDER BY queued_at DESC, id DESC OFFSET $1",
            depth - 1,
        )
        assert row is not None
        return encode_cursor(row["queued_at"], row["id"])
    finally:
        await conn.close()


def _cases() -> list[tuple[str, dict[str, str]]]:
    task, connector, other_task = TASKS[3], CONNECTORS[5], TASKS[5]
    day = _day_back(JOBS * 3 // 4)
    return [
        ("all jobs", {}),
        ("status=failed", {"status": "failed"}),
        ("status=running (20 jobs)", {"status": "running"}),
        ("task", {"task_id": task}),
        ("task + status=failed (none)", {"task_id": task, "status": "failed"}),
        ("connector", {"connector_id": connector}),
        ("connector + status=failed (none)", {"connector_id": connector, "status": "failed"}),
        ("connector + its task", {"connector_id": connector, "task_id": other_task}),
        ("connector + another task (none)", {"connector_id": connector, "task_id": task}),
        ("a day far back", day),
        ("status=failed, a day far back", {"status": "failed", **day}),
        ("task, a day far back", {"task_id": task, **day}),
        ("connector, a day far back", {"connector_id": connector, **day}),
    ]


def _measure(stack: Stack, dsn: str) -> list[Row]:
    fill_s = asyncio.run(_fill(dsn))
    rows = [Row(f"fill {JOBS} jobs (setup)", fill_s, "-", None, "s")]
    # The peer walks the pages once: a page of some filters costs it a second.
    offsets = [LIMIT * i for i in range(PAGES)]
    worst = 0.0
    for name, params in _cases():
        ours = _ours(stack.client, params)
        peer = asyncio.run(_peer(dsn, params, offsets))
        worst = max(worst, percentile(ours, 99))
        for p in (50, 95, 99):
            label = f"GET /jobs {name}: p{p}" if p == 50 else f"  p{p}"
            rows.append(Row(label, percentile(ours, p), PEER, percentile(peer, p), "ms"))
    deep = JOBS // 4
    cursor = asyncio.run(_deep_cursor(dsn, deep))
    ours = _ours(stack.client, {"cursor": cursor})
    peer = asyncio.run(_peer(dsn, {}, [deep + o for o in offsets]))
    worst = max(worst, percentile(ours, 99))
    rows.append(
        Row(
            f"GET /jobs {deep} deep (cursor): p99",
            percentile(ours, 99),
            f"SQL OFFSET {deep}",
            percentile(peer, 99),
            "ms",
        )
    )
    rows.append(Row("worst p99 of every filter (<= 20 ms)", worst, "-", None, "ms"))
    rows.append(
        Row(
            f"GET /metrics at {JOBS} jobs: median of {SCRAPES}",
            median(_scrapes(stack.client)),
            "SQL count(*) by type and status",
            median(asyncio.run(_peer_counts(dsn))),
            "ms",
        )
    )
    return rows


def _scrapes(client: httpx.Client) -> list[float]:
    times: list[float] = []
    for _ in range(SCRAPES):
        t0 = time.perf_counter()
        client.get("/metrics").raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
    return times


async def _peer_counts(dsn: str) -> list[float]:
    """The least a scrape must read: every job, counted by type and status."""
    conn = await asyncpg.connect(dsn)
    try:
        times: list[float] = []
        for _ in range(SCRAPES):
            t0 = time.perf_counter()
            await conn.fetch("SELECT type, status, count(*) FROM jobs GROUP BY 1, 2")
            times.append((time.perf_counter() - t0) * 1000)
        return times
    finally:
        await conn.close()


def run() -> list[Row]:
    # A data dir the embedded PostgreSQL's own system user can reach (when run as root).
    with running_stack(stack_dir("bench-history"), runners=1) as stack:
        return _measure(stack, stack.database_url())
