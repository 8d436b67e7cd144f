"""Which connectors the api hands a runner that asks for a job's (pure; the transport is
services/api/job_connectors.py).

The connector ids come from the job's message as the jobs stream holds it, which only
the scheduler and the api may publish, never from the asker; the job must be of the
runner group the request was made under; the job's claim must say
that the very runner process asking holds it (running, or cancelled while it ran).
Whatever does not match is refused without saying whose the job is or which connectors
it uses.
"""

from __future__ import annotations

from shared import rpc
from shared.claims import Claim
from shared.events import JobDue
from shared.groups import group_of


def granted(
    ask: rpc.JobConnectors, group: str, due: JobDue | None, claim: Claim | None
) -> list[str] | rpc.Failed:
    """The connector ids of the job the runner holds, or why not. `group`: the runner
    group the request was made under (its NATS subject's, which a group's own NATS user
    can only publish to for its group); `due`: the job-due message at the sequence the
    runner named (None: no such message, or not one); `claim`: the job's claim (None:
    none, or unreadable)."""
    if due is None or due.job_id != ask.job_id or group_of(due.task.runner_group) != group:
        return rpc.Failed(
            reason="not_found", message=f"job {ask.job_id} is not in runner group {group}'s queue"
        )
    if claim is None or not _held(claim):
        state = claim.state if claim else "not claimed"
        return rpc.Failed(reason="refused", message=f"job {ask.job_id} is {state}, not running")
    if claim.runner != ask.runner or claim.runner_since != ask.runner_since:
        since = ask.runner_since.isoformat()
        message = f"job {ask.job_id} is not held by runner {ask.runner} (started {since})"
        return rpc.Failed(reason="refused", message=message)
    return due.task.connector_ids()


def _held(claim: Claim) -> bool:
    """Running, or cancelled while it ran: the runner holds the job until it ends it."""
    return claim.state == "running" or (claim.state == "cancelled" and claim.attempt > 0)
