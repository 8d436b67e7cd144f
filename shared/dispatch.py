"""Queueing a job: the queued event for the history, then the job-due for the runners."""

from __future__ import annotations

from datetime import datetime

from nats.js import JetStreamContext

from shared import bus, subjects
from shared.events import JobDue, JobQueued, encode, new_id, utcnow
from shared.models import Task, Trigger


async def queue_job(
    js: JetStreamContext,
    task: Task,
    trigger: Trigger,
    *,
    schedule_id: str | None = None,
    due_at: datetime | None = None,
    job_id: str | None = None,
) -> str:
    """Publish a job; with the same job_id, publishing again changes nothing."""
    job_id = job_id or new_id()
    due = due_at or utcnow()
    queued = JobQueued(
        job_id=job_id,
        seq=1,
        task_id=task.id,
        schedule_id=schedule_id,
        trigger=trigger,
        type=task.type,
        due_at=due,
        connector_ids=task.connector_ids(),
        store_id=task.store_id,
    )
    # Both ids are derived from the job, so a repeated publish is deduplicated.
    await bus.publish(js, subjects.job_event(job_id, "queued"), encode(queued), f"queued:{job_id}")
    message = JobDue(job_id=job_id, trigger=trigger, schedule_id=schedule_id, due_at=due, task=task)
    await bus.publish(js, subjects.JOB_DUE, encode(message), f"due:{job_id}")
    return job_id
