"""Retrying a failed or cancelled job by hand: a job of its task as the task is now
(fixed, say), linked to the job it retries."""

from __future__ import annotations

from services.api import store
from services.api.deps import PUBLISH_PATIENCE_S, Deps
from services.api.errors import conflict
from shared.dispatch import Retry, queue_job
from shared.lifecycle import RETRYABLE
from shared.models import Job
from shared.retries import retry_job_id


async def retry(deps: Deps, job: Job, requested_by: str | None = None) -> str:
    """Queue the job that retries `job`; answers its id. It is one job however many
    times it is asked for, and the same as the task's retry policy would queue: the
    first asked stands."""
    if job.status not in RETRYABLE:
        raise conflict(f"only a failed or cancelled job can be retried; this one is {job.status}")
    if job.retried_by is not None:
        raise conflict(f"this job was retried already, by job {job.retried_by}")
    task = await store.get_task(deps.pool, job.task_id)
    if task is None:
        raise conflict("its task was deleted")
    # Asked for by hand: it has its task's retries, as a run of its own would.
    left = task.retry.attempts if task.retry else 0
    job_id = retry_job_id(job.id)
    await queue_job(
        deps.js,
        task,
        "manual",
        job_id=job_id,
        retry=Retry(job.id, left),
        patience=PUBLISH_PATIENCE_S,
        requested_by=requested_by,
    )
    await store.wait_for_job(deps.pool, job_id)
    return job_id
