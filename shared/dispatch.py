"""Queueing a job: the queued event for the history, then the job-due for the runners."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from shared import bus, subjects
from shared.events import JobDue, JobQueued, encode, job_event_subject, utcnow
from shared.groups import group_of
from shared.ids import new_id
from shared.models import Task, Trigger

ACK_TIMEOUT_S = 5.0
# Publishes of one call awaiting their acknowledgement at most: enough to keep NATS busy.
MAX_IN_FLIGHT = 4000


class Message(NamedTuple):
    """A message for a stream, deduplicated by its id."""

    subject: str
    payload: bytes
    msg_id: str


# Publishes messages to their streams, every one stored once it returns.
Publish = Callable[[Sequence[Message]], Awaitable[None]]


class Retry(NamedTuple):
    """A job retrying another, and the retries it has left if it fails in turn."""

    of: str
    left: int


def job_messages(
    task: Task,
    trigger: Trigger,
    job_id: str,
    *,
    schedule_id: str | None = None,
    due_at: datetime | None = None,
    retry: Retry | None = None,
    requested_by: str | None = None,
    at: datetime | None = None,
) -> tuple[Message, Message]:
    """The queued event and the job-due of a job, to be stored in that order. A job that
    retries none has the retries of its task's policy. `requested_by`: the token that
    asked for it by hand; `at`: when it was decided (by default, now)."""
    due = due_at or utcnow()
    queued = queued_message(
        task,
        trigger,
        job_id,
        schedule_id=schedule_id,
        due_at=due,
        retry=retry,
        requested_by=requested_by,
        at=at,
    )
    return queued, due_message(task, trigger, job_id, schedule_id, due)


def queued_message(
    task: Task,
    trigger: Trigger,
    job_id: str,
    *,
    schedule_id: str | None,
    due_at: datetime,
    retry: Retry | None = None,
    requested_by: str | None = None,
    at: datetime | None = None,
) -> Message:
    """The queued event of a job (see job_messages)."""
    if retry is None:
        retry = Retry("", task.retry.attempts if task.retry else 0)
    queued = JobQueued(
        job_id=job_id,
        seq=1,
        task_id=task.id,
        schedule_id=schedule_id,
        trigger=trigger,
        type=task.type,
        due_at=due_at,
        connector_ids=task.connector_ids(),
        store_id=task.store_id,
        runner_group=task.runner_group,
        retry_of=retry.of or None,
        retries_left=retry.left,
        requested_by=requested_by,
        ts=at or utcnow(),
    )
    # Derived from the job, so a repeated publish is deduplicated.
    return Message(job_event_subject(queued), encode(queued), f"queued:{job_id}")


def due_message(
    task: Task, trigger: Trigger, job_id: str, schedule_id: str | None, due_at: datetime
) -> Message:
    """The job-due of a job (see job_messages): it holds nothing of when it is sent, so
    the scheduler makes those of a burst ahead of its instant."""
    message = JobDue(
        job_id=job_id, trigger=trigger, schedule_id=schedule_id, due_at=due_at, task=task
    )
    return Message(subjects.job_due(group_of(task.runner_group)), encode(message), f"due:{job_id}")


async def queue_job(
    js: JetStreamContext,
    task: Task,
    trigger: Trigger,
    *,
    schedule_id: str | None = None,
    due_at: datetime | None = None,
    job_id: str | None = None,
    retry: Retry | None = None,
    patience: float = 0.0,
    requested_by: str | None = None,
) -> str:
    """Publish a job; with the same job_id, publishing again changes nothing. While
    NATS is away, each message is published again for up to `patience` seconds."""
    job_id = job_id or new_id()
    messages = job_messages(
        task,
        trigger,
        job_id,
        schedule_id=schedule_id,
        due_at=due_at,
        retry=retry,
        requested_by=requested_by,
    )
    for m in messages:
        await bus.publish(js, m.subject, m.payload, m.msg_id, patience=patience)
    return job_id


async def publish_all(
    nc: Client, messages: Sequence[Message], in_flight: int = MAX_IN_FLIGHT
) -> None:
    """Publish many messages to their streams pipelined, at most `in_flight` of them
    awaiting their acknowledgement at once, every acknowledgement awaited. Raises if any
    was not stored (or not acknowledged in time); publishing them all again is harmless,
    as each is deduplicated by its id.

    The acknowledgements come to one subscription of this call and are only checked for
    an error, not decoded: per message this costs half of what `publish_async` does
    (a future, a semaphore, a JSON decode each), which is most of a burst's time."""
    acks = Acks(len(messages), in_flight)
    prefix = nc.new_inbox()
    sub = await nc.subscribe(f"{prefix}.*", cb=acks.received)
    try:
        for i, m in enumerate(messages):
            await acks.room()
            await nc.publish(m.subject, m.payload, f"{prefix}.{i}", {"Nats-Msg-Id": m.msg_id})
        await acks.all()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class Acks:
    """Counts the acknowledgements of `total` publishes, at most `in_flight` awaited."""

    def __init__(self, total: int, in_flight: int) -> None:
        self.total = total
        self.in_flight = in_flight
        self.sent = 0
        self.acked = 0
        self.error: bytes | None = None
        self._changed = asyncio.Event()

    async def received(self, msg: Msg) -> None:
        # A stored message is acknowledged {"stream": ..., "seq": ...}; a failure carries
        # an error, or nothing at all with a status header (no stream for the subject).
        if not msg.data or b'"error"' in msg.data:
            self.error = self.error or msg.data or str(msg.headers).encode()
        self.acked += 1
        self._changed.set()

    async def room(self) -> None:
        """Until one more may be sent; raises on a failure seen."""
        while self.sent - self.acked >= self.in_flight:
            await self._wait()
        self._check()
        self.sent += 1

    async def all(self) -> None:
        while self.acked < self.total:
            await self._wait()
        self._check()

    async def _wait(self) -> None:
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), ACK_TIMEOUT_S)
        except TimeoutError:
            raise TimeoutError(f"{self.sent - self.acked} publishes not acknowledged") from None
        self._check()

    def _check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"a publish was refused: {self.error.decode(errors='replace')}")
