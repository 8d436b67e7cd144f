"""The life of a job (pure): its states, the events that move it, and `apply`.

    (none) --queued--> queued --started--> running --started (next attempt)--> running
    (none) --skipped-> skipped             queued|running --finished--> succeeded|failed|cancelled

An event moves a job only from the states MOVES_FROM names, and only if it is newer than
the last one that moved it (its `seq`), so replays, duplicates and late events change
nothing. Progress is kept by its own seq. Every reader of the lifecycle uses this module:
the history's SQL guards are built from it (and checked against `apply` by a test), the live
view of a job applies events with it, the scheduler's overlap rule and the claims read its
state sets, and the UI asks the api for the states and their labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

import msgspec

if TYPE_CHECKING:
    from shared.events import AnyJobEvent
    from shared.models import Job

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "skipped"]

STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
# Not ended yet: a job of a task in one of these makes a schedule's firing an overlap.
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")
TERMINAL: frozenset[JobStatus] = frozenset(STATUSES) - frozenset(ACTIVE)
# An operator may retry a job that ended so (a task's retry policy: failed only).
RETRYABLE: tuple[JobStatus, ...] = ("failed", "cancelled")

LABELS: dict[JobStatus, str] = {
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "skipped": "Skipped",
}

# Events other than `queued` and `skipped` (which create a job) move it only from these.
MOVES_FROM = ACTIVE


class Tracked(msgspec.Struct, kw_only=True):
    """A job and the seqs of the last events that moved its state and its progress."""

    job: Job
    last_seq: int
    progress_seq: int = 0


def sql_states(states: tuple[JobStatus, ...]) -> str:
    """`('queued', 'running')`, for a SQL `IN` (the states are constants, not input)."""
    return "(" + ", ".join(f"'{s}'" for s in states) + ")"


def apply(tracked: Tracked | None, ev: AnyJobEvent) -> Tracked | None:
    """The job after `ev` (None: no job yet)."""
    # Imported here: shared.models and shared.events take their states from this module.
    from shared import events as e
    from shared.models import Job

    replace = msgspec.structs.replace
    if isinstance(ev, e.JobQueued):  # JobSkipped too
        if tracked is not None:
            return tracked
        status: JobStatus = "skipped" if isinstance(ev, e.JobSkipped) else "queued"
        job = Job(
            id=ev.job_id,
            task_id=ev.task_id,
            schedule_id=ev.schedule_id,
            trigger=ev.trigger,
            type=ev.type,
            status=status,
            due_at=ev.due_at,
            queued_at=ev.ts,
            finished_at=ev.ts if status in TERMINAL else None,
            reason=ev.reason if isinstance(ev, e.JobSkipped) else None,
            connector_ids=list(ev.connector_ids),
            runner_group=ev.runner_group,
            retry_of=ev.retry_of,
            requested_by=ev.requested_by,
        )
        return Tracked(job=job, last_seq=ev.seq)
    if tracked is None or isinstance(ev, e.JobLog):
        return tracked
    job = tracked.job
    if isinstance(ev, e.JobStarted) and ev.seq < tracked.last_seq:
        # Older than the job's state (events may come out of order): it still tells the
        # job's first start, and the runner of its last attempt.
        last = ev.attempt == job.attempt
        late = replace(
            job,
            started_at=min(job.started_at or ev.ts, ev.ts),
            runner=ev.runner if last else job.runner,
            concurrency=ev.concurrency if last else job.concurrency,
        )
        return replace(tracked, job=late)
    if job.status not in ACTIVE:
        return tracked
    if isinstance(ev, e.JobProgress):
        if ev.seq <= tracked.progress_seq:
            return tracked
        return replace(tracked, job=replace(job, progress=ev.progress), progress_seq=ev.seq)
    if ev.seq <= tracked.last_seq:
        return tracked
    if isinstance(ev, e.JobStarted):
        started = replace(
            job,
            status="running",
            started_at=job.started_at or ev.ts,
            attempt=ev.attempt,
            runner=ev.runner,
            concurrency=ev.concurrency,
        )
        return replace(tracked, job=started, last_seq=ev.seq)
    ended = replace(
        job,
        status=ev.status,
        finished_at=ev.ts,
        exit_code=ev.exit_code,
        error=ev.error,
        snapshot_id=ev.snapshot_id or job.snapshot_id,
        progress=ev.progress or job.progress,
        attempt=max(job.attempt, ev.attempt),
        bytes_added=ev.bytes_added if ev.bytes_added is not None else job.bytes_added,
        prune=ev.prune or job.prune,
    )
    progress_seq = ev.seq if ev.progress is not None else tracked.progress_seq
    return replace(tracked, job=ended, last_seq=ev.seq, progress_seq=progress_seq)
