"""Events on NATS: job-due messages for runners and the replayable job events.

Every job event carries `event_id` (unique, used as `Nats-Msg-Id`), `ts`, the
job id and `seq`, a number that grows with each event of one job; log events
carry several lines, each with its own `seq`, and the event's `seq` is the last.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec

from shared.models import JobStatus, Progress, Task, TaskType, Trigger


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobDue(msgspec.Struct, kw_only=True):
    """Sent on the work queue: run this job. The task is copied as it was when queued."""

    job_id: str
    trigger: Trigger
    schedule_id: str | None = None
    due_at: datetime
    task: Task


class JobEvent(msgspec.Struct, kw_only=True, tag_field="kind"):
    event_id: str = msgspec.field(default_factory=new_id)
    ts: datetime = msgspec.field(default_factory=utcnow)
    job_id: str
    seq: int


class JobQueued(JobEvent, kw_only=True, tag="queued"):
    task_id: str
    schedule_id: str | None = None
    trigger: Trigger
    type: TaskType
    due_at: datetime
    connector_ids: list[str] = []
    store_id: str | None = None


class JobSkipped(JobQueued, kw_only=True, tag="skipped"):
    reason: str


class JobStarted(JobEvent, kw_only=True, tag="started"):
    attempt: int
    runner: str
    concurrency: int


class JobProgress(JobEvent, kw_only=True, tag="progress"):
    progress: Progress


# "plakar": a line plakar printed (stdout and stderr merged, in order);
# "system": a line of the control plane (command run, runner, exit code).
Stream = Literal["plakar", "system"]


class LogLine(msgspec.Struct, kw_only=True):
    seq: int
    ts: datetime
    stream: Stream
    line: str


class JobLog(JobEvent, kw_only=True, tag="log"):
    lines: list[LogLine]


class JobFinished(JobEvent, kw_only=True, tag="finished"):
    status: JobStatus
    attempt: int
    exit_code: int | None = None
    error: str | None = None
    snapshot_id: str | None = None
    progress: Progress | None = None


AnyJobEvent = JobQueued | JobSkipped | JobStarted | JobProgress | JobLog | JobFinished

_job_event_decoder: msgspec.json.Decoder[AnyJobEvent] = msgspec.json.Decoder(AnyJobEvent)
_job_due_decoder: msgspec.json.Decoder[JobDue] = msgspec.json.Decoder(JobDue)
encode = msgspec.json.Encoder().encode


def decode_job_event(data: bytes) -> AnyJobEvent:
    return _job_event_decoder.decode(data)


def decode_job_due(data: bytes) -> JobDue:
    return _job_due_decoder.decode(data)
