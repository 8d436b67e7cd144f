"""The SQL of GET /metrics: every figure in a few statements, the jobs' in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.api.metrics import (
    DURATION_BUCKETS,
    LATENESS_BUCKETS,
    ActiveCount,
    Deliveries,
    Histogram,
    JobCount,
    TaskSuccess,
    merge,
)
from shared.db import Pool
from shared.freshness_db import TASK_LAST_SUCCESS
from shared.groups import group_of
from shared.lifecycle import ACTIVE, TERMINAL, sql_states


def _le(value: str, bounds: Sequence[float]) -> str:
    return "ARRAY[" + ", ".join(f"count(*) FILTER (WHERE {value} <= {b})" for b in bounds) + "]"


# One pass over the jobs, by type and status: how many, and the histograms of the
# durations of those ended and of the lateness of those a schedule fired.
_JOBS = f"""
SELECT type, status, count(*) AS n,
       count(d) AS d_n, coalesce(sum(d), 0) AS d_sum, {_le("d", DURATION_BUCKETS)} AS d_le,
       count(late) AS late_n, coalesce(sum(late), 0) AS late_sum,
       {_le("late", LATENESS_BUCKETS)} AS late_le
FROM (SELECT type, status,
             CASE WHEN status IN {sql_states(tuple(sorted(TERMINAL)))}
                  THEN EXTRACT(EPOCH FROM finished_at - started_at)::float8 END AS d,
             CASE WHEN trigger = 'schedule'
                  THEN EXTRACT(EPOCH FROM queued_at - due_at)::float8 END AS late
      FROM jobs) j
GROUP BY type, status
"""


async def jobs(pool: Pool) -> tuple[list[JobCount], dict[str, Histogram], Histogram]:
    """Jobs by type and status, the durations by type, the lateness of them all."""
    rows = await pool.fetch(_JOBS)
    counts = [JobCount(r["type"], r["status"], r["n"]) for r in rows]
    by_type: dict[str, list[Histogram]] = {}
    for r in rows:
        by_type.setdefault(r["type"], []).append(_histogram(r, "d"))
    durations = {kind: merge(hs) for kind, hs in by_type.items()}
    lateness = merge(_histogram(r, "late") for r in rows)
    return counts, durations, lateness


def _histogram(row: Any, name: str) -> Histogram:
    return Histogram(list(row[f"{name}_le"]), row[f"{name}_n"], row[f"{name}_sum"])


async def active(pool: Pool) -> list[ActiveCount]:
    """Jobs queued and running by runner group (the `jobs_active` index)."""
    rows = await pool.fetch(
        f"""SELECT runner_group, status, count(*) AS n FROM jobs
            WHERE status IN {sql_states(ACTIVE)} GROUP BY 1, 2"""
    )
    found: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (group_of(r["runner_group"]), r["status"])
        found[key] = found.get(key, 0) + r["n"]
    return [ActiveCount(g, s, n) for (g, s), n in sorted(found.items())]


async def task_successes(pool: Pool) -> list[TaskSuccess]:
    rows = await pool.fetch(
        f"""SELECT t.id::text, coalesce(t.name, '') AS name, t.type,
                   {TASK_LAST_SUCCESS} AS last_success
            FROM tasks t ORDER BY t.id"""
    )
    return [TaskSuccess(r["id"], r["name"], r["type"], r["last_success"]) for r in rows]


async def deliveries(pool: Pool) -> list[Deliveries]:
    rows = await pool.fetch(
        """SELECT t.name, t.kind, d.status, count(*) AS n
           FROM notification_deliveries d JOIN notification_targets t ON t.id = d.target_id
           GROUP BY 1, 2, 3 ORDER BY 1, 3"""
    )
    return [Deliveries(r["name"], r["kind"], r["status"], r["n"]) for r in rows]
