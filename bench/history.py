"""History API latency over a large job table: pages of GET /jobs (keyset cursors, with
and without filters) against the naive peer, OFFSET pagination in plain SQL."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from bench.common import Row, median, percentile
from tests.support.stack import Stack, running_stack, stack_dir

JOBS = int(os.environ.get("BENCH_JOBS", "1000000"))
PAGES = 20
LIMIT = 50
TASKS = [str(uuid.uuid4()) for _ in range(10)]
CONNECTORS = [str(uuid.uuid4()) for _ in range(20)]

_FILL = """
INSERT INTO jobs (id, task_id, trigger, type, status, due_at, queued_at, finished_at,
                  connector_ids, last_seq)
SELECT gen_random_uuid(), ($1::uuid[])[1 + i % 10], 'schedule', 'backup',
       (ARRAY['succeeded', 'succeeded', 'failed', 'succeeded', 'cancelled'])[1 + i % 5],
       now() - i * interval '1 minute', now() - i * interval '1 minute',
       now() - i * interval '1 minute' + interval '30 seconds',
       ARRAY[($2::uuid[])[1 + i % 20], ($2::uuid[])[1 + (i * 7) % 20]], 3
FROM generate_series(1, $3::int) AS i
"""


async def _fill(dsn: str) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(_FILL, TASKS, CONNECTORS, JOBS)
        await conn.execute(
            """INSERT INTO job_connectors (connector_id, queued_at, job_id)
               SELECT DISTINCT unnest(connector_ids), queued_at, id FROM jobs
               ON CONFLICT DO NOTHING"""
        )
        await conn.execute("ANALYZE")
        return time.perf_counter() - started
    finally:
        await conn.close()


def _walk(client: httpx.Client, params: dict[str, str]) -> list[float]:
    """Milliseconds per page, following next_cursor PAGES deep."""
    times, cursor = [], None
    for _ in range(PAGES):
        query = {**params, "limit": str(LIMIT), **({"cursor": cursor} if cursor else {})}
        t0 = time.perf_counter()
        r = client.get("/jobs", params=query)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        cursor = r.json()["next_cursor"]
    return times


async def _offset(dsn: str, offset: int, where: str = "", *args: object) -> list[float]:
    conn = await asyncpg.connect(dsn)
    try:
        times = []
        for _ in range(5):
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


def _day_back(minutes: int) -> tuple[datetime, datetime, dict[str, str]]:
    """A day of jobs queued `minutes` back (one job a minute), as instants and params."""
    until = datetime.now(UTC) - timedelta(minutes=minutes)
    since = until - timedelta(days=1)
    return since, until, {"since": since.isoformat(), "until": until.isoformat()}


def _measure(stack: Stack, dsn: str) -> list[Row]:
    fill_s = asyncio.run(_fill(dsn))
    rows = [Row(f"fill {JOBS} jobs (s, setup)", fill_s, "-", None, "s")]
    deep = PAGES * LIMIT
    # A day deep in the table: the date range walks the same indexes, from `until` down.
    since, until, day = _day_back(JOBS * 3 // 4)
    cases: list[tuple[str, dict[str, str], str, tuple[object, ...]]] = [
        ("all jobs", {}, "", ()),
        ("status=failed", {"status": "failed"}, "WHERE status = $1", ("failed",)),
        ("task_id", {"task_id": TASKS[3]}, "WHERE task_id = $1", (uuid.UUID(TASKS[3]),)),
        (
            "connector_id",
            {"connector_id": CONNECTORS[5]},
            "WHERE connector_ids @> ARRAY[$1::uuid]",
            (uuid.UUID(CONNECTORS[5]),),
        ),
        ("a day far back", day, "WHERE queued_at >= $1 AND queued_at < $2", (since, until)),
        (
            "status=failed, a day far back",
            {"status": "failed", **day},
            "WHERE status = $1 AND queued_at >= $2 AND queued_at < $3",
            ("failed", since, until),
        ),
        (
            "connector_id, a day far back",
            {"connector_id": CONNECTORS[5], **day},
            "WHERE connector_ids @> ARRAY[$1::uuid] AND queued_at >= $2 AND queued_at < $3",
            (uuid.UUID(CONNECTORS[5]), since, until),
        ),
    ]
    for name, params, where, args in cases:
        ours = _walk(stack.client, params)
        near = asyncio.run(_offset(dsn, deep, where, *args))
        far = asyncio.run(_offset(dsn, JOBS // 4, where, *args))
        rows.append(
            Row(
                f"GET /jobs {name}: p50 over {PAGES} pages (ms)",
                median(ours),
                f"SQL OFFSET {deep}",
                median(near),
                "ms",
            )
        )
        rows.append(
            Row(
                f"GET /jobs {name}: p95 (ms)",
                percentile(ours, 95),
                f"SQL OFFSET {JOBS // 4}",
                median(far),
                "ms",
            )
        )
    return rows


def run() -> list[Row]:
    # A data dir the embedded PostgreSQL's own system user can reach (when run as root).
    with running_stack(stack_dir("bench-history"), runners=1) as stack:
        return _measure(stack, stack.database_url())
