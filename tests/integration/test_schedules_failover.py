"""Scheduler failover: the standby takes over when the active one is killed."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.bus import SCHEDULER_LEASE_TTL_S
from tests.support.schedules import backup_task, iso, lateness, minute_ahead, wait_jobs, when
from tests.support.stack import running_stack, stack_dir

pytestmark = pytest.mark.integration

# The lease expires a TTL after its last renewal; the standby tries every third of it.
TAKEOVER_S = SCHEDULER_LEASE_TTL_S * 4 / 3


@pytest.mark.timeout(300)
def test_killing_the_active_scheduler_neither_loses_nor_doubles_a_firing(tmp_path: Path) -> None:
    with running_stack(stack_dir("failover"), runners=1) as stack:
        health = stack.get("/health")
        assert len(health["schedulers"]) == 2
        active = health["active_scheduler"]
        pid = next(s["pid"] for s in health["schedulers"] if s["id"] == active)

        start = minute_ahead(20)
        body = backup_task(stack, tmp_path, "failover")
        every_minute = {"recurrence": "custom", "interval": {"minutes": 1}, "start_at": iso(start)}
        task_id = stack.post("/tasks", {**body, "schedules": [every_minute]}, expect=201)["task"][
            "id"
        ]

        # Killed just before the run is due, with no time to release its lease.
        time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() - 2))
        os.kill(pid, signal.SIGKILL)
        jobs = wait_jobs(stack, task_id, 1, start + timedelta(seconds=TAKEOVER_S + 15))
        assert len(jobs) == 1, "the run due during the failover was lost"
        took_over = stack.get("/health")["active_scheduler"]
        assert took_over is not None

        job = jobs[0]
        assert when(job["due_at"]) == start
        assert 0 < lateness(job) <= TAKEOVER_S + 2, lateness(job)
        assert stack.wait_job(job["id"])["status"] == "succeeded"
        # Neither the new active scheduler nor the restarted one fires it again.
        time.sleep(3)
        again = wait_jobs(stack, task_id, 2, datetime.now(UTC))
        assert [j["id"] for j in again] == [job["id"]]
        schedule = stack.get("/schedules", task_id=task_id)[0]
        assert schedule["next_run_at"] == iso(start + timedelta(minutes=1))
        print(f"\nfailover: {active} killed, {took_over} fired {lateness(job):.2f}s late")
