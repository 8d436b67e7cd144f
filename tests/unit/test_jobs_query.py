"""The SQL of a page of the job history: only the filters given, each walk in the list's
order (a prepared statement's generic plan of an optional condition walks no index)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.api.store import _jobs_query

T = datetime(2026, 6, 1, tzinfo=UTC)
JOB = "6f1c9a52-7b7e-4d1e-9a51-0d5e7b1c2a3f"


def test_no_filter_walks_every_job_newest_first() -> None:
    query, args = _jobs_query(None, None, None, None, None)
    assert "WHERE" not in query
    assert query.endswith("ORDER BY queued_at DESC, id DESC LIMIT $1")
    assert args == []


def test_only_the_filters_given_numbered_in_order_the_limit_last() -> None:
    query, args = _jobs_query("failed", "task", None, (T, JOB), T)
    assert "WHERE status = $1 AND task_id = $2 AND (queued_at, id) < ($3, $4::uuid)" in query
    assert "AND queued_at >= $5 ORDER BY queued_at DESC, id DESC LIMIT $6" in query
    assert args == ["failed", "task", T, JOB, T]
    assert "IS NULL" not in query


def test_a_connector_walks_its_rows_with_the_jobs_task_and_status() -> None:
    query, args = _jobs_query("failed", "task", "conn", None, None)
    assert "FROM job_connectors c WHERE c.connector_id = $1 AND c.status = $2" in query
    assert "AND c.task_id = $3 ORDER BY c.queued_at DESC, c.job_id DESC LIMIT $4" in query
    assert args == ["conn", "failed", "task"]
