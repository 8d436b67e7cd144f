"""Events on NATS: job-due messages for runners and the replayable job events.

Every job event carries `event_id` (unique, used as `Nats-Msg-Id`), `ts`, the
job id and `seq`, a number that grows with each event of one job; log events
carry several lines, each with its own `seq`, and the event's `seq` is the last.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

import msgspec

from shared import subjects
from shared.freshness import Watched
from shared.ids import new_id
from shared.lifecycle import JobStatus
from shared.models import Job, Progress, PruneResult, Task, TaskType, Trigger

# The variant bits (10xx) put into the first digit of the fourth group.


def utcnow() -> datetime:
    return datetime.now(UTC)


# A job id is a UUID (lower case): it is part of NATS subjects and the key of the
# history's rows, so an event with anything else in it is not one.
JobId = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


class JobDue(msgspec.Struct, kw_only=True):
    """Sent on the work queue: run this job. The task is copied as it was when queued."""

    job_id: JobId
    trigger: Trigger
    schedule_id: str | None = None
    due_at: datetime
    task: Task


class JobEvent(msgspec.Struct, kw_only=True, tag_field="kind"):
    event_id: str = msgspec.field(default_factory=new_id)
    ts: datetime = msgspec.field(default_factory=utcnow)
    job_id: JobId
    seq: int


class JobQueued(JobEvent, kw_only=True, tag="queued"):
    task_id: str
    schedule_id: str | None = None
    trigger: Trigger
    type: TaskType
    due_at: datetime
    connector_ids: list[str] = []
    store_id: str | None = None
    # The runner group it is queued for (null: the default group).
    runner_group: str | None = None
    # The job it retries (null: none), and how many times it is retried in turn if it
    # fails (its task's retry policy).
    retry_of: str | None = None
    retries_left: int = 0
    # The token that asked for it by hand (null: a schedule or a policy queued it).
    requested_by: str | None = None


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
    # What the job wrote to its store, as plakar's result line says (backup, check).
    bytes_added: int | None = None
    # What a prune kept and deleted (once it had a plan).
    prune: PruneResult | None = None


AnyJobEvent = JobQueued | JobSkipped | JobStarted | JobProgress | JobLog | JobFinished


def job_event_kind(event: type[AnyJobEvent] | AnyJobEvent) -> str:
    return str(event.__struct_config__.tag)


# The last part of a job event's subject: plakar.events.job.<job_id>.<kind>.
JOB_EVENT_KINDS: tuple[str, ...] = tuple(job_event_kind(t) for t in get_args(AnyJobEvent))

_job_event_decoder: msgspec.json.Decoder[AnyJobEvent] = msgspec.json.Decoder(AnyJobEvent)
_job_due_decoder: msgspec.json.Decoder[JobDue] = msgspec.json.Decoder(JobDue)
encode = msgspec.json.Encoder().encode


def decode_job_event(data: bytes) -> AnyJobEvent:
    return _job_event_decoder.decode(data)


def job_event_subject(event: AnyJobEvent) -> str:
    """Where a job event is published: its job's subject of its kind."""
    return subjects.job_event(event.job_id, job_event_kind(event))


class MisplacedEvent(ValueError):
    pass


# What read_job_event raises for a message that is not the job event its subject says.
UNREADABLE_EVENT = (msgspec.DecodeError, msgspec.ValidationError, MisplacedEvent)


def read_job_event(subject: str, data: bytes) -> AnyJobEvent:
    """The job event read from `subject`, which must be its own: the NATS users that may
    publish job events are each allowed some kinds only, by subject, so one found under
    another kind's or another job's subject is refused (MisplacedEvent), as is one that
    is not a job event (msgspec's errors)."""
    event = decode_job_event(data)
    if subject != job_event_subject(event):
        raise MisplacedEvent(f"it holds a {job_event_kind(event)} event of job {event.job_id}")
    return event


def decode_job_due(data: bytes) -> JobDue:
    return _job_due_decoder.decode(data)


class _JobRef(msgspec.Struct):
    job_id: JobId


def job_id_of(data: bytes) -> str | None:
    """The job id of a message that is otherwise unreadable, if it names one."""
    try:
        return msgspec.json.decode(data, type=_JobRef).job_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


# Messages of the api's WebSocket `/jobs/{id}/stream`, tagged by "type". A client that
# reconnects with `?after=` the highest seq it received resumes exactly there.


class StreamLog(msgspec.Struct, kw_only=True, tag_field="type", tag="log"):
    seq: int
    ts: datetime
    stream: Stream
    line: str


class StreamLines(msgspec.Struct, kw_only=True, tag_field="type", tag="lines"):
    """With `?batch=1`, instead of `log` messages: consecutive lines (one output batch
    of the runner, or one page of the stored output), in seq order."""

    lines: list[LogLine]


class StreamProgress(msgspec.Struct, kw_only=True, tag_field="type", tag="progress"):
    seq: int
    ts: datetime
    progress: Progress


class StreamStatus(msgspec.Struct, kw_only=True, tag_field="type", tag="status"):
    """The job as it stands; the last message of a stream is its final status."""

    job: Job


class StreamDropped(msgspec.Struct, kw_only=True, tag_field="type", tag="dropped"):
    """The client fell behind: these messages were dropped (GET /jobs/{id}/output has
    every line)."""

    count: int
    first_seq: int
    last_seq: int


StreamMessage = StreamLog | StreamLines | StreamProgress | StreamStatus | StreamDropped


class EventsDropped(msgspec.Struct, kw_only=True, tag_field="kind", tag="dropped"):
    """On the api's WebSocket `/events`: this many events were dropped for a slow client."""

    count: int


# Schedule events: `plakar.events.schedule.<schedule_id>.<kind>`.


class ScheduleEvent(msgspec.Struct, kw_only=True, tag_field="kind"):
    event_id: str = msgspec.field(default_factory=new_id)
    ts: datetime = msgspec.field(default_factory=utcnow)
    schedule_id: str


class ScheduleChanged(ScheduleEvent, kw_only=True, tag="changed"):
    """The api created, changed or deleted the schedule: the scheduler re-reads it."""

    deleted: bool = False


class ScheduleFired(ScheduleEvent, kw_only=True, tag="fired"):
    """The scheduler fired the schedule: one job, queued or skipped."""

    task_id: str
    job_id: str
    due_at: datetime
    # Late beyond the tolerance (the control plane was down): a catch-up run.
    catch_up: bool
    next_run_at: datetime
    # Set when the job was skipped (a job of the task was still queued or running).
    skipped: str | None = None


AnyScheduleEvent = ScheduleChanged | ScheduleFired

_schedule_event_decoder: msgspec.json.Decoder[AnyScheduleEvent] = msgspec.json.Decoder(
    AnyScheduleEvent
)


def decode_schedule_event(data: bytes) -> AnyScheduleEvent:
    return _schedule_event_decoder.decode(data)


# Freshness events: `plakar.events.freshness.<task|connector>.<id>.<lost|restored>`, told
# by the active scheduler once per change (shared/freshness.py).


class FreshnessEvent(msgspec.Struct, kw_only=True, tag_field="kind"):
    event_id: str = msgspec.field(default_factory=new_id)
    ts: datetime = msgspec.field(default_factory=utcnow)
    watched: Watched
    id: str
    # Its name, and its window as its rule says it ("26h").
    name: str | None = None
    window: str
    # Its last successful job's end (null: none ever); it went stale `window` after it.
    last_success_at: datetime | None = None


class FreshnessLost(FreshnessEvent, kw_only=True, tag="freshness.lost"):
    """No successful job of it finished within its window: it is stale."""


class FreshnessRestored(FreshnessEvent, kw_only=True, tag="freshness.restored"):
    """A successful job of it finished: fresh again."""


AnyFreshnessEvent = FreshnessLost | FreshnessRestored
