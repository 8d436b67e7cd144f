"""Which connectors a runner asking for a job's gets (services/api/grant.py), and which
requests are not even read (shared/rpc.py JobConnectors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from services.api.grant import granted
from shared import rpc
from shared.claims import Claim
from shared.events import JobDue
from shared.groups import DEFAULT_GROUP
from shared.models import Task

JOB = "00000000-0000-4000-8000-000000000001"
OTHER_JOB = "00000000-0000-4000-8000-000000000002"
SINCE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SOURCE, STORE = "s0000000-0000-4000-8000-000000000000", "t0000000-0000-4000-8000-000000000000"


def due(job_id: str = JOB) -> JobDue:
    task = Task(id="task", type="backup", source_id=SOURCE, store_id=STORE, created_at=SINCE)
    return JobDue(job_id=job_id, trigger="manual", due_at=SINCE, task=task)


def ask(runner: str = "runner-1", since: datetime = SINCE) -> rpc.JobConnectors:
    return rpc.JobConnectors(job_id=JOB, message=7, runner=runner, runner_since=since)


def running(runner: str = "runner-1", since: datetime | None = SINCE) -> Claim:
    return Claim(state="running", attempt=1, runner=runner, runner_since=since)


def refusal(answer: list[str] | rpc.Failed) -> str:
    assert isinstance(answer, rpc.Failed), answer
    return f"{answer.reason}: {answer.message}"


def test_the_runner_holding_the_job_gets_the_ids_of_its_message() -> None:
    assert granted(ask(), DEFAULT_GROUP, due(), running()) == [SOURCE, STORE]
    # Cancelled while it runs: still its runner's, which stops it and ends it cancelled.
    cancelled = msgspec.structs.replace(running(), state="cancelled", cancel_by="x")
    assert granted(ask(), DEFAULT_GROUP, due(), cancelled) == [SOURCE, STORE]
    # The same instant written in another zone is the same start.
    other_zone = SINCE.astimezone(datetime.now().astimezone().tzinfo)
    assert granted(ask(since=other_zone), DEFAULT_GROUP, due(), running()) == [SOURCE, STORE]


def test_a_job_of_another_group_is_not_found_under_this_one() -> None:
    """A runner asks under its group's subject, which its group's NATS user alone may
    publish to: a job of another group is none of its business."""
    answer = refusal(granted(ask(), "edge", due(), running()))
    assert answer == f"not_found: job {JOB} is not in runner group edge's queue"


@pytest.mark.parametrize(
    ("message", "claim", "expected"),
    [
        (None, running(), "not_found: job"),  # no message at that sequence (or not a job's)
        (due(OTHER_JOB), running(), "not_found: job"),  # another job's message
        (due(), None, "refused: job 00000000-0000-4000-8000-000000000001 is not claimed"),
        (due(), Claim(state="done", attempt=1, runner="runner-1"), "is done, not running"),
        (due(), Claim(state="cancelled", attempt=0), "is cancelled, not running"),
        (due(), running("runner-2"), "is not held by runner runner-1"),
        (due(), running(since=SINCE + timedelta(seconds=1)), "is not held by runner"),
        (due(), running(since=None), "is not held by runner"),
    ],
)
def test_anything_else_gets_nothing(
    message: JobDue | None, claim: Claim | None, expected: str
) -> None:
    answer = refusal(granted(ask(), DEFAULT_GROUP, message, claim))
    assert expected in answer
    assert SOURCE not in answer and STORE not in answer  # nor learns which they are


BASE = {"job_id": JOB, "message": 7, "runner": "r", "runner_since": SINCE.isoformat()}


@pytest.mark.parametrize(
    "request_",
    [
        b"",
        b"garbage",
        b"[]",
        msgspec.json.encode({**BASE, "connector_ids": [SOURCE]}),  # the asker names none
        msgspec.json.encode({**BASE, "job_id": "*"}),
        msgspec.json.encode({**BASE, "job_id": f"{JOB}.>"}),
        msgspec.json.encode({**BASE, "message": 0}),
        msgspec.json.encode({**BASE, "message": 2**64}),
        msgspec.json.encode({**BASE, "runner": ""}),
        msgspec.json.encode({**BASE, "runner": "r" * 257}),
        msgspec.json.encode({**BASE, "runner_since": "yesterday"}),
        b"[" * 100_000,
    ],
)
def test_requests_that_are_not_one_are_not_read(request_: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        rpc.decode_job_connectors(request_)


def test_a_request_round_trips() -> None:
    assert rpc.decode_job_connectors(rpc.encode(ask())) == ask()
