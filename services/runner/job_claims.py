"""The runner's side of job claims (NATS KV) and of ending a job without running plakar."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from shared import bus, claims
from shared.events import JobFinished
from shared.job_events import open_sink
from shared.lifecycle import JobStatus

log = logging.getLogger("plakar_cp.runner")

# A job's events wait out a NATS restart this long (plakar waits meanwhile, its output
# unread) instead of failing the runner; under the streams' 120 s duplicate window.
PUBLISH_PATIENCE_S = 90.0


@dataclass(frozen=True)
class Held:
    """A job's claim as stored: none, a claim, or something unreadable (`problem`)."""

    claim: claims.Claim | None
    revision: int | None
    problem: str | None = None


async def read(kv: KeyValue, job_id: str) -> Held:
    try:
        entry = await kv.get(job_id)
    except KeyNotFoundError:
        return Held(None, None)
    try:
        return Held(claims.decode(entry.value or b""), entry.revision)
    except claims.Unreadable as e:
        return Held(None, entry.revision, str(e))


async def holder_alive(js: JetStreamContext, claim: claims.Claim, job_id: str) -> bool:
    """Whether the very runner process that claimed a running job still announces itself
    and the job (a runner restarted under the same id announces a later start; one that
    gave the job up no longer lists it)."""
    if claim.state != "running" or claim.runner_since is None:
        return False
    return any(
        info.kind == "runner"
        and info.id == claim.runner
        and info.started_at == claim.runner_since
        and job_id in info.jobs
        for info in await bus.live_services(js)
    )


async def mark_done(kv: KeyValue, job_id: str, attempt: int, runner: str | None) -> None:
    """Mark the job done, riding out a NATS restart: a job whose claim is not marked done
    would run again."""
    done = claims.encode(claims.Claim(state="done", attempt=attempt, runner=runner))
    await bus.patiently(
        lambda: kv.put(job_id, done), PUBLISH_PATIENCE_S, f"marking job {job_id} done"
    )


async def end(
    js: JetStreamContext,
    kv: KeyValue,
    job_id: str,
    *,
    status: JobStatus,
    attempt: int,
    error: str,
    runner: str | None,
) -> None:
    """End a job without running plakar: its output says why, its final event carries
    the status, and its claim is marked done."""
    sink = await open_sink(js, job_id, PUBLISH_PATIENCE_S)
    await sink.log("system", f"job {status}: {error}")
    await sink.emit(
        JobFinished(job_id=job_id, seq=sink.next_seq(), status=status, attempt=attempt, error=error)
    )
    await sink.close()
    await mark_done(kv, job_id, attempt, runner)
    log.warning("job %s %s: %s", job_id, status, error)
