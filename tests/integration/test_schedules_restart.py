"""A control-plane restart after downtime: journalised schedules catch up once,
non-journalised ones start again from the restart."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.schedules import backup_task, wait_jobs, when
from tests.support.stack import running_stack, stack_dir

pytestmark = pytest.mark.integration

DOWNTIME_S = 180
MINUTE = timedelta(minutes=1)


def every_minute(journalised: bool) -> dict[str, object]:
    return {"recurrence": "custom", "interval": {"minutes": 1}, "journalised": journalised}


@pytest.mark.timeout(480)
def test_three_minutes_down_then_one_catch_up_or_a_fresh_start(tmp_path: Path) -> None:
    data = stack_dir("restart")
    with running_stack(data, runners=1) as stack:
        body = backup_task(stack, tmp_path, "restart")
        kept = stack.post("/tasks", {**body, "schedules": [every_minute(True)]}, expect=201)
        reset = stack.post("/tasks", {**body, "schedules": [every_minute(False)]}, expect=201)
        kept_task, reset_task = kept["task"]["id"], reset["task"]["id"]
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        assert len(wait_jobs(stack, kept_task, 1, deadline)) == 1  # both start at once
        assert len(wait_jobs(stack, reset_task, 1, deadline)) == 1
        missed = when(stack.get("/schedules", task_id=kept_task)[0]["next_run_at"])

    time.sleep(DOWNTIME_S)  # three runs of each schedule fall in the downtime

    restarting = datetime.now(UTC)
    with running_stack(data, runners=1) as stack:
        ready = datetime.now(UTC)
        # Journalised: one catch-up run at once, for the first missed run, then relative to it.
        jobs = wait_jobs(stack, kept_task, 2, ready + timedelta(seconds=15))
        assert len(jobs) == 2, jobs
        catch_up = jobs[1]
        assert when(catch_up["due_at"]) == missed
        assert restarting <= when(catch_up["queued_at"]) <= ready + timedelta(seconds=5)
        schedule = stack.get("/schedules", task_id=kept_task)[0]
        assert when(schedule["last_run_at"]) == when(catch_up["queued_at"]).replace(microsecond=0)
        assert when(schedule["next_run_at"]) == when(schedule["last_run_at"]) + MINUTE

        # Non-journalised: nothing caught up; the first run one interval after the restart.
        fresh = when(stack.get("/schedules", task_id=reset_task)[0]["next_run_at"])
        assert restarting.replace(microsecond=0) + MINUTE <= fresh <= ready + MINUTE
        jobs = wait_jobs(stack, reset_task, 2, fresh + timedelta(seconds=15))
        assert [when(j["due_at"]) for j in jobs][1:] == [fresh]
        assert len(wait_jobs(stack, kept_task, 3, fresh + timedelta(seconds=15))) == 3
        after_ready = (when(catch_up["queued_at"]) - ready).total_seconds()
        print(f"\nrestart: catch-up queued {after_ready:.2f}s after the stack was ready")
