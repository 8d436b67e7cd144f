"""Job claims: one key per job in a NATS key-value bucket, updated by compare-and-set.

The claim is what makes a job run on at most one runner at a time, counts its
attempts, and carries a cancel request to the runner that holds it (or stops a
queued job from ever starting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

ClaimState = Literal["running", "cancelled", "done"]


class Claim(msgspec.Struct, kw_only=True):
    state: ClaimState
    attempt: int = 0
    runner: str | None = None
    # When the holding runner process started, as it announces itself in the services
    # bucket: tells that very process apart from the same runner restarted.
    runner_since: datetime | None = None
    cancel_by: str | None = None
    cancel_at: datetime | None = None


def encode(claim: Claim) -> bytes:
    return msgspec.json.encode(claim)


def decode(data: bytes) -> Claim:
    """Raises Unreadable when the stored value is not a claim."""
    try:
        return msgspec.json.decode(data, type=Claim)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise Unreadable(f"the job's claim cannot be read ({e})") from e


class Unreadable(Exception):
    """A claim that is not one (written by something else than this control plane)."""


@dataclass(frozen=True)
class Run:
    attempt: int


@dataclass(frozen=True)
class Drop:
    """Already finished or cancelled before it started: nothing to do."""


@dataclass(frozen=True)
class Wait:
    """The runner holding the job is alive and on it; the message came back only because
    NATS was away longer than the ack wait. Look again later."""


@dataclass(frozen=True)
class Finish:
    """End the job without running plakar again."""

    attempt: int
    status: Literal["failed", "cancelled"]
    error: str


Decision = Run | Drop | Wait | Finish


def decide(
    existing: Claim | None, max_attempts: int, holder_alive: bool = False, mine: bool = False
) -> Decision:
    """What a runner does with a job-due message, given the job's claim, whether the
    runner process that claimed it is still on it, and whether that process is the one
    deciding (pure)."""
    if existing is None:
        return Run(attempt=1)
    if existing.state == "done":
        return Drop()
    if existing.state == "cancelled":
        if existing.attempt == 0:
            return Drop()  # cancelled while queued; the api ended it
        # Cancelled while running, and that runner was lost before it ended the job.
        return Finish(existing.attempt, "cancelled", f"cancelled by {existing.cancel_by}")
    if holder_alive:
        return Wait()  # taking over now would run plakar twice at once
    if mine:
        # This very process claimed it and none of its slots runs it: the answer to its
        # claim was lost (NATS failing over), so that attempt never started plakar.
        return Run(attempt=existing.attempt)
    # state == running: the runner that held it was lost.
    if existing.attempt >= max_attempts:
        return Finish(
            existing.attempt,
            "failed",
            f"runner lost during attempt {existing.attempt}; no attempts left ({max_attempts})",
        )
    return Run(attempt=existing.attempt + 1)


def exhausted(existing: Claim | None, holder_alive: bool, deliveries: int) -> Decision:
    """What becomes of a job whose message NATS gave up on after `deliveries` deliveries
    (pure): it ends unless it is done or a live runner is still on it."""
    given_up = f"its message was delivered {deliveries} times, the most allowed"
    if existing is None:
        return Finish(0, "failed", f"no runner could take the job: {given_up}")
    if existing.state == "done" or (existing.state == "cancelled" and existing.attempt == 0):
        return Drop()
    if existing.state == "cancelled":
        return Finish(existing.attempt, "cancelled", f"cancelled by {existing.cancel_by}")
    if holder_alive:
        return Wait()
    return Finish(
        existing.attempt, "failed", f"runner lost during attempt {existing.attempt}; {given_up}"
    )
