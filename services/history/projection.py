"""Grouping a batch of events into the writes that project them (pure).

Log lines of a whole batch become one insert, and so do its queued (and skipped) events:
a job's queued event is its first, so writing them before the batch's other state
events keeps every job's events in order. The other state events are applied in stream
order. Every write is guarded by the event's seq or a unique key, so replaying events
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.events import AnyJobEvent, JobLog, JobQueued, LogLine


@dataclass
class Batch:
    lines: list[tuple[str, LogLine]] = field(default_factory=list)
    queued: list[JobQueued] = field(default_factory=list)
    state: list[AnyJobEvent] = field(default_factory=list)


def needs_job(ev: AnyJobEvent) -> bool:
    """Whether the event changes a job's state (those `plan` puts in `Batch.state`): it
    waits until the job's queued event made the job (events may come out of order)."""
    return not isinstance(ev, JobLog | JobQueued)


def plan(events: list[AnyJobEvent]) -> Batch:
    batch = Batch()
    for ev in events:
        if isinstance(ev, JobLog):
            batch.lines.extend((ev.job_id, line) for line in ev.lines)
        elif isinstance(ev, JobQueued):  # JobSkipped too
            batch.queued.append(ev)
        else:
            batch.state.append(ev)
    return batch
