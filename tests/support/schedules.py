"""Helpers of the schedule tests: minutes to come, scheduled jobs, lateness."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.stack import Stack


def minute_ahead(at_least_s: float) -> datetime:
    """The first whole UTC minute at least `at_least_s` seconds from now."""
    t = datetime.now(UTC) + timedelta(seconds=at_least_s)
    return t.replace(second=0, microsecond=0) + timedelta(minutes=1)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def backup_task(stack: Stack, tmp_path: Path, name: str) -> dict[str, str]:
    """Connectors for a tiny backup into a plaintext store; returns the task body."""
    src = tmp_path / f"{name}-src"
    src.mkdir(parents=True)
    (src / "file.txt").write_text("scheduled\n")
    source = stack.connector(f"{name}-src", "source", str(src))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store")
    return {"type": "backup", "source_id": source, "store_id": store}


def jobs_of(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.get("/jobs", task_id=task_id, limit=500)["items"]
    return sorted(items, key=lambda j: (j["due_at"], j["schedule_id"] or ""))


def wait_jobs(
    stack: Stack, task_id: str, count: int, until: datetime, schedule_id: str | None = None
) -> list[dict[str, Any]]:
    """The task's jobs (of one schedule if given) once there are `count`, or at
    `until` (UTC) whatever there is."""
    while True:
        jobs = [j for j in jobs_of(stack, task_id) if schedule_id in (None, j["schedule_id"])]
        if len(jobs) >= count or datetime.now(UTC) > until:
            return jobs
        time.sleep(0.2)


def lateness(job: dict[str, Any]) -> float:
    """Seconds from the instant a run was due to the instant it was queued."""
    return (when(job["queued_at"]) - when(job["due_at"])).total_seconds()
