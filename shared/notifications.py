"""Notifications (pure): the events rules may tell, what a webhook receives and how it is
signed, and when a failed delivery is tried again.

A job's failure and its task's recovery are told as `job.failed` and `job.recovered`
notices, built from the job's `finished` event and the job's task; a change of freshness
as the very `freshness.lost` or `freshness.restored` event published on NATS. A notice's
id derives from the event it tells of: told twice (a replay, a failover), it is one."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

import msgspec

from shared.events import FreshnessLost, FreshnessRestored, JobFinished
from shared.ids import derived_id
from shared.lifecycle import JobStatus
from shared.models import NoticeKind, TaskType


class JobNotice(msgspec.Struct, kw_only=True, tag_field="kind"):
    """A job that ended, with its task, as a notification tells it."""

    event_id: str
    ts: datetime
    job_id: str
    task_id: str
    task_name: str | None = None
    type: TaskType
    status: JobStatus
    attempt: int
    exit_code: int | None = None
    error: str | None = None
    snapshot_id: str | None = None
    connector_ids: list[str] = []
    # The job's `finished` event, as published on NATS.
    finished: JobFinished


class JobFailedNotice(JobNotice, kw_only=True, tag="job.failed"):
    """The job failed."""


class JobRecoveredNotice(JobNotice, kw_only=True, tag="job.recovered"):
    """The job succeeded; its task's run before it failed (`failed_job_id`)."""

    failed_job_id: str


# What a webhook receives: one of these, as JSON.
Notice = JobFailedNotice | JobRecoveredNotice | FreshnessLost | FreshnessRestored
_notice_decoder: msgspec.json.Decoder[Notice] = msgspec.json.Decoder(Notice)


def decode_notice(data: bytes) -> Notice:
    return _notice_decoder.decode(data)


def job_notice(
    finished: JobFinished,
    task_id: str,
    task_name: str | None,
    task_type: TaskType,
    connector_ids: list[str],
    previous: tuple[str, JobStatus] | None,
) -> JobFailedNotice | JobRecoveredNotice | None:
    """What a job's end tells, given its task's run before it (id, status), if any: a
    failure, a success after a failure, or nothing."""
    fields: dict[str, Any] = {
        "ts": finished.ts,
        "job_id": finished.job_id,
        "task_id": task_id,
        "task_name": task_name,
        "type": task_type,
        "status": finished.status,
        "attempt": finished.attempt,
        "exit_code": finished.exit_code,
        "error": finished.error,
        "snapshot_id": finished.snapshot_id,
        "connector_ids": connector_ids,
        "finished": finished,
    }
    if finished.status == "failed":
        return JobFailedNotice(event_id=derived_id(f"job.failed:{finished.event_id}"), **fields)
    if finished.status == "succeeded" and previous is not None and previous[1] == "failed":
        return JobRecoveredNotice(
            event_id=derived_id(f"job.recovered:{finished.event_id}"),
            failed_job_id=previous[0],
            **fields,
        )
    return None


def kind_of(notice: Notice) -> NoticeKind:
    kind: NoticeKind = notice.__struct_config__.tag  # type: ignore[assignment]
    return kind


SIGNATURE_HEADER = "X-Plakar-Signature"


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, keyed by the target's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# A delivery is tried this many times in all, each retry 4 times later than the one
# before: with the default base of 30 s, after 30 s, 2 min, 8 min, 32 min and 2 h 8 min.
MAX_ATTEMPTS = 6


def retry_delay(attempts_made: int, base: timedelta) -> timedelta | None:
    """How long after its `attempts_made`-th failed attempt a delivery is tried again;
    None when it has had all its attempts."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    return base * int(4 ** max(0, attempts_made - 1))


def describe(notice: Notice) -> tuple[str, str]:
    """A subject line and a text for people (mail), from what the notice says."""
    if isinstance(notice, JobNotice):
        what = f"{notice.type} task {notice.task_name or notice.task_id}"
        if isinstance(notice, JobRecoveredNotice):
            subject = f"{what} succeeded again"
            text = (
                f"Job {notice.job_id} of {what} succeeded; the run before it, job "
                f"{notice.failed_job_id}, had failed."
            )
        else:
            subject = f"{what} failed"
            text = f"Job {notice.job_id} of {what} failed (attempt {notice.attempt})"
            text += f": {notice.error}" if notice.error else "."
        return subject, text
    what = f"{notice.watched} {notice.name or notice.id}"
    last = notice.last_success_at.isoformat() if notice.last_success_at else "never"
    if isinstance(notice, FreshnessLost):
        subject = f"{what} is stale"
        text = f"No run of {what} succeeded within {notice.window} (last success: {last})."
    else:
        subject = f"{what} is fresh again"
        text = f"A run of {what} succeeded ({last}); its window is {notice.window}."
    return subject, text
