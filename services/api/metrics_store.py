"""The SQL of GET /metrics: a few small reads (the jobs are counted as they are written)."""

from __future__ import annotations

from services.api.metrics import ActiveCount, Deliveries, Histogram, JobCount, TaskSuccess
from shared.db import Pool
from shared.freshness_db import TASK_LAST_SUCCESS
from shared.groups import group_of
from shared.lifecycle import ACTIVE, sql_states


async def jobs(pool: Pool) -> tuple[list[JobCount], dict[str, Histogram], Histogram]:
    """Jobs ended by type and status, their durations by type, the lateness of the
    scheduled ones: as the jobs table's trigger counted them."""
    totals = await pool.fetch("SELECT type, status, n FROM job_totals ORDER BY 1, 2")
    rows = await pool.fetch(
        """SELECT b.metric, b.bounds, h.label, h.counts, h.sum
           FROM metric_bounds b LEFT JOIN metric_histograms h USING (metric)
           ORDER BY b.metric, h.label"""
    )
    durations: dict[str, Histogram] = {}
    lateness = None
    for r in rows:
        found = Histogram(list(r["bounds"]), list(r["counts"] or []), r["sum"] or 0.0)
        if r["metric"] == "scheduler_lateness_seconds":
            lateness = found
        elif r["label"] is not None:
            durations[r["label"]] = found
    assert lateness is not None, "the lateness histogram is defined by a migration"
    return [JobCount(r["type"], r["status"], r["n"]) for r in totals], durations, lateness


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
