"""The history takes a job's events in any order: NATS gives a batch lost with a server
again only after the ack wait, behind later events. A job's started and finished events
that come before its queued one wait for it; the job ends with its true status, start,
runner and attempt."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest

from shared import subjects as s
from shared.events import JobEvent, JobFinished, JobQueued, JobStarted, encode
from shared.ids import new_id
from tests.integration.test_reliability import query
from tests.integration.test_runner_secrets import nats_url
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


async def publish(stack: Stack, events: list[JobEvent]) -> None:
    """As the runner and the api publish them (as the admin user)."""
    nc = await nats.connect(nats_url(stack, "admin"))
    try:
        js = nc.jetstream()
        for ev in events:
            kind = str(type(ev).__struct_config__.tag)
            await js.publish(s.job_event(ev.job_id, kind), encode(ev), stream=s.EVENTS_STREAM)
    finally:
        await nc.close()


def projected(stack: Stack, job_id: str, within: float) -> dict[str, Any]:
    """The job once the history has both its end and its start (given again apart)."""
    deadline = time.monotonic() + within
    while True:
        answer = stack.client.get(f"/jobs/{job_id}")
        job: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
        if job.get("finished_at") and job.get("runner"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} not whole in {within}s: {job}"
        time.sleep(0.1)


def test_a_jobs_end_that_comes_before_its_queued_event_waits_for_it(
    stack: Stack, tmp_path: Path
) -> None:
    paused = [{"recurrence": "daily", "enabled": False}]
    store = stack.connector("order-store", "store", str(tmp_path / "store"))
    body = {"type": "check", "name": "order", "store_id": store, "schedules": paused}
    task = stack.post("/tasks", body, expect=201)["task"]["id"]
    job_id = new_id()
    queued_at = datetime.now(UTC)
    started = JobStarted(job_id=job_id, seq=2, attempt=1, runner="order-r1", concurrency=3)
    finished = JobFinished(job_id=job_id, seq=3, status="succeeded", attempt=1, exit_code=0)
    queued = JobQueued(
        job_id=job_id,
        seq=1,
        ts=queued_at,
        task_id=task,
        trigger="manual",
        type="check",
        due_at=queued_at,
        store_id=store,
    )
    asyncio.run(publish(stack, [finished, started]))
    # The history has them and puts them off: the job is not known yet.
    time.sleep(0.5)
    assert stack.client.get(f"/jobs/{job_id}").status_code == 404
    asyncio.run(publish(stack, [queued]))

    job = projected(stack, job_id, within=30)
    assert (job["status"], job["attempt"], job["runner"], job["exit_code"]) == (
        "succeeded",
        1,
        "order-r1",
        0,
    ), job
    assert job["started_at"] is not None
    attempts = query(
        stack,
        "SELECT attempt, runner, status, started_at FROM job_attempts WHERE job_id = $1",
        job_id,
    )
    assert [(a["attempt"], a["runner"], a["status"]) for a in attempts] == [
        (1, "order-r1", "succeeded")
    ]
    assert attempts[0]["started_at"] == started.ts
