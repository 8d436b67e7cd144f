"""What a batch of firings due together does: pure, so that overlaps within a
batch (several schedules of one task due at once) are decided in one place."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from services.scheduler.journal import Entry, Planned, Recorded
from shared import recurrence


def plan(
    entries: list[Entry],
    active: Mapping[str, Mapping[str, str]],
    unconfirmed: Mapping[str, Collection[str]],
    now: datetime,
) -> list[Planned]:
    """The firings of schedules due at `now`, given per task the jobs the history
    has queued or running (`active`: id -> status) and the jobs queued but not yet
    recorded by the history (`unconfirmed`). Of the schedules of one task due
    together, the soonest due (then the lowest id) queues its job; the others are
    skipped as overlapping it. Entries without a due instant are left out."""
    planned: list[Planned] = []
    # Per task of these entries only: a burst is planned a chunk at a time.
    queued: dict[str, list[str]] = {}
    ready = [e for e in entries if e.next_run_at is not None]
    for e in sorted(ready, key=lambda e: (e.next_run_at, e.id)):
        assert e.next_run_at is not None
        due = e.next_run_at
        job_id = recurrence.firing_job_id(e.id, due)
        if (jobs := queued.get(e.task_id)) is None:
            jobs = queued[e.task_id] = list(unconfirmed.get(e.task_id, ()))
        reason = overlap(active.get(e.task_id, {}), jobs)
        if reason is None:
            jobs.append(job_id)
        firing = recurrence.fired(e.rule, due, now)
        record = Recorded(
            schedule_id=e.id,
            task_id=e.task_id,
            due_at=due,
            job_id=job_id,
            skip_reason=reason,
            next_run_at=firing.next_run_at,
            catch_up=firing.catch_up,
            fired_at=now,
        )
        planned.append(Planned(e, firing, record))
    return planned


def overlap(active: Mapping[str, str], queued: Collection[str]) -> str | None:
    """Why a new job of a task would overlap one still queued or running."""
    for job_id, status in sorted(active.items()):
        return f"job {job_id} of this task is still {status}"
    for job_id in queued:
        return f"job {job_id} of this task is still queued"
    return None
