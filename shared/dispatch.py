"""Queueing a job: the queued event for the history, then the job-due for the runners."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from nats.js import JetStreamContext

from shared import bus, subjects
from shared.events import JobDue, JobQueued, encode, new_id, utcnow
from shared.groups import group_of
from shared.models import Task, Trigger

ACK_TIMEOUT_S = 5.0


class Message(NamedTuple):
    """A message for a stream, deduplicated by its id."""

    subject: str
    payload: bytes
    msg_id: str


def job_messages(
    task: Task,
    trigger: Trigger,
    job_id: str,
    *,
    schedule_id: str | None = None,
    due_at: datetime | None = None,
) -> tuple[Message, Message]:
    """The queued event and the job-due of a job, to be stored in that order."""
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
        runner_group=task.runner_group,
    )
    message = JobDue(job_id=job_id, trigger=trigger, schedule_id=schedule_id, due_at=due, task=task)
    # Both ids are derived from the job, so a repeated publish is deduplicated.
    return (
        Message(subjects.job_event(job_id, "queued"), encode(queued), f"queued:{job_id}"),
        Message(subjects.job_due(group_of(task.runner_group)), encode(message), f"due:{job_id}"),
    )


async def queue_job(
    js: JetStreamContext,
    task: Task,
    trigger: Trigger,
    *,
    schedule_id: str | None = None,
    due_at: datetime | None = None,
    job_id: str | None = None,
    patience: float = 0.0,
) -> str:
    """Publish a job; with the same job_id, publishing again changes nothing. While
    NATS is away, each message is published again for up to `patience` seconds."""
    job_id = job_id or new_id()
    for m in job_messages(task, trigger, job_id, schedule_id=schedule_id, due_at=due_at):
        await bus.publish(js, m.subject, m.payload, m.msg_id, patience=patience)
    return job_id


async def publish_all(js: JetStreamContext, messages: Sequence[Message]) -> None:
    """Publish many messages pipelined: all are sent, then all acks awaited together
    (one round trip for the lot instead of one each). Raises if any was not stored;
    publishing them all again is harmless, as each is deduplicated by its id."""
    acks = [
        await js.publish_async(m.subject, m.payload, headers={"Nats-Msg-Id": m.msg_id})
        for m in messages
    ]
    results = await asyncio.wait_for(asyncio.gather(*acks, return_exceptions=True), ACK_TIMEOUT_S)
    for r in results:
        if isinstance(r, BaseException):
            raise r
