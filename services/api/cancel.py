"""Cancelling a job: compare-and-set on the job's claim, the key runners take before
they start plakar, so the api and the runners always agree on who ends the job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from services.api.deps import PUBLISH_PATIENCE_S, Deps
from services.api.errors import conflict
from services.api.validation import Invalid
from services.runner.job_claims import holder_alive
from shared import bus, claims
from shared import subjects as s
from shared.events import JobFinished, utcnow
from shared.job_events import open_sink
from shared.lifecycle import TERMINAL
from shared.models import CancelAnswer, Job
from shared.text import is_not_blank

# Shown in the job's output when the request does not name who cancels.


@dataclass(frozen=True)
class EndQueued:
    """No runner holds the job: the api ends it and no runner will ever start it."""


@dataclass(frozen=True)
class StopRunning:
    """A runner holds the job: it stops plakar (SIGINT, then SIGKILL) and ends the job."""


@dataclass(frozen=True)
class Refuse:
    reason: str


def plan(
    status: str, claim: claims.Claim | None, holder_alive: bool = True
) -> EndQueued | StopRunning | Refuse:
    """What cancelling does, given the job's recorded status, its claim and whether the
    runner process that claimed it still announces it (pure)."""
    if status in TERMINAL:
        return Refuse(f"job already {status}")
    if claim is None or (claim.state == "running" and not holder_alive):
        # Nobody runs it: a runner lost, and maybe its whole group (the job would wait
        # for one of the group's runners to end it).
        return EndQueued()
    if claim.state == "done":
        return Refuse("job already finished")
    if claim.state == "cancelled":
        when = claim.cancel_at.isoformat() if claim.cancel_at else "earlier"
        return Refuse(f"job already being cancelled (by {claim.cancel_by} at {when})")
    return StopRunning()


def who(by: str | None, token_name: str) -> str:
    """The name to record for the canceller: `by` as given (one line, at most 64
    characters), else the name of the caller's token."""
    if by is None:
        return token_name
    if len(by) > 64 or not is_not_blank(by):
        raise Invalid("by", "by must be one line of 1 to 64 characters, not all blank")
    return by.strip()


def cancelled_line(by: str, at: datetime) -> str:
    return f"cancelled by {by} at {at.isoformat()}"


async def cancel(deps: Deps, job: Job, by: str) -> CancelAnswer:
    kv = await bus.kv(deps.js, s.CLAIMS_BUCKET)
    at = utcnow()
    while True:
        try:
            entry = await kv.get(job.id)
            revision = entry.revision
            try:
                claim: claims.Claim | None = claims.decode(entry.value or b"")
            except claims.Unreadable:
                claim = None  # not a claim: overwritten by the cancel
        except KeyNotFoundError:
            claim, revision = None, None
        alive = claim is None or await holder_alive(deps.js, claim, job.id)
        decision = plan(job.status, claim, alive)
        if isinstance(decision, Refuse):
            raise conflict(decision.reason)
        mine = claims.Claim(
            state="cancelled",
            # Ended here (attempt 0): a runner that gets its message drops it.
            attempt=claim.attempt if claim and isinstance(decision, StopRunning) else 0,
            runner=claim.runner if claim else None,
            runner_since=claim.runner_since if claim else None,  # still its holder
            cancel_by=by,
            cancel_at=at,
        )
        try:
            if revision is None:
                await kv.create(job.id, claims.encode(mine))
            else:
                await kv.update(job.id, claims.encode(mine), last=revision)
            break
        except KeyWrongLastSequenceError:
            continue  # a runner claimed or ended it meanwhile: decide again
    if isinstance(decision, StopRunning):
        return CancelAnswer(job_id=job.id, status="cancelling", by=by, at=at)
    # Queued (or its runner lost): the runner that gets the job-due finds the claim
    # cancelled and drops it; the job ends here, its events after the ones it has.
    sink = await open_sink(deps.js, job.id, PUBLISH_PATIENCE_S)
    how = " before it started" if claim is None else f" (its runner {claim.runner} was lost)"
    await sink.log("system", cancelled_line(by, at) + how)
    await sink.emit(
        JobFinished(
            job_id=job.id,
            seq=sink.next_seq(),
            status="cancelled",
            attempt=claim.attempt if claim else 0,
            error=f"cancelled by {by}",
        )
    )
    await sink.close()
    return CancelAnswer(job_id=job.id, status="cancelled", by=by, at=at)
