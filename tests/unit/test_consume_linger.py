"""A consumer's linger (shared/bus.py): a few messages it applies to wait for more and are
handled with them; others, and a backlog, are handled at once; a failed second fetch
leaves the first ones to be handled alone. Against a stand-in pull subscription."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import nats.errors

from shared import bus, subjects

LOG = subjects.job_event("j1", "log")
STARTED = subjects.job_event("j1", "started")


@dataclass
class Msg:
    subject: str


@dataclass
class FakeSub:
    """Answers each fetch with the next of `answers` (an exception is raised); then
    stops the consumer."""

    answers: list[list[Msg] | Exception]
    stop: asyncio.Event
    asked: list[tuple[int, float]] = field(default_factory=list)

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:  # noqa: ASYNC109  # as nats-py has it
        self.asked.append((batch, timeout))
        if not self.answers:
            self.stop.set()
            raise nats.errors.TimeoutError
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def handled(answers: list[list[Msg] | Exception]) -> tuple[list[list[str]], FakeSub]:
    async def main() -> tuple[list[list[str]], FakeSub]:
        stop = asyncio.Event()
        sub = FakeSub(answers, stop)
        got: list[list[str]] = []

        async def handle(msgs: list[Any]) -> None:
            got.append([m.subject for m in msgs])

        linger = bus.Linger(
            0.001, 3, lambda msgs: all(subjects.is_job_log(m.subject) for m in msgs)
        )
        await bus.consume(cast(Any, sub), 100, handle, stop, wait=0.01, linger=linger)
        return got, sub

    return asyncio.run(main())


def test_a_few_lines_wait_for_more_and_go_with_them() -> None:
    got, sub = handled([[Msg(LOG)], [Msg(LOG), Msg(LOG)]])
    assert got == [[LOG, LOG, LOG]]
    assert sub.asked[1] == (99, bus.LINGER_FETCH_S)


def test_a_state_event_or_a_backlog_goes_at_once() -> None:
    got, _ = handled([[Msg(LOG), Msg(STARTED)], [Msg(LOG)] * 3, [Msg(LOG)]])
    # The second fetch is a backlog (not fewer than `below`); the third lingers alone.
    assert got == [[LOG, STARTED], [LOG] * 3, [LOG]]


def test_a_failed_second_fetch_leaves_the_first_ones_handled_alone() -> None:
    got, _ = handled([[Msg(LOG)], nats.errors.ConnectionClosedError()])
    assert got == [[LOG]]


def test_only_a_jobs_lines_are_lines() -> None:
    assert subjects.is_job_log(LOG)
    assert not subjects.is_job_log(STARTED)
    assert not subjects.is_job_log(subjects.schedule_event("s1", "fired"))
    assert not subjects.is_job_log(subjects.job_event("j1", "log.x"))
