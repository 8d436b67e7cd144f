"""How a job's run ends when its runner stops (services/runner/service.py first_of): a
plakar still at work is killed and the job goes back to the queue; a job whose outcome is
known reports it, so that it is neither run again nor left half recorded."""

from __future__ import annotations

import asyncio

from services.runner.service import Ended, Stopped, TakenOver, first_of
from shared.events import JobFinished

FINISHED = JobFinished(job_id="j", seq=9, status="succeeded", attempt=1)


class Run:
    """A job's run: plakar at work until `plakar_done`, then a report that takes a while."""

    def __init__(self) -> None:
        self.settled = asyncio.Event()
        self.plakar_done = asyncio.Event()
        self.reported = False
        self.task = asyncio.create_task(self.run())

    async def run(self) -> JobFinished:
        await self.plakar_done.wait()
        self.settled.set()
        await asyncio.sleep(0.05)  # publishing the end
        self.reported = True
        return FINISHED


async def test_a_stop_while_plakar_works_cancels_the_run() -> None:
    run, taken_over, stop = Run(), asyncio.Event(), asyncio.Event()
    ending = asyncio.create_task(first_of(run.task, taken_over, stop, run.settled))
    await asyncio.sleep(0)
    stop.set()
    assert await ending == Stopped()
    assert run.task.cancelled() and not run.reported


async def test_a_stop_while_the_outcome_is_reported_lets_the_report_end() -> None:
    run, taken_over, stop = Run(), asyncio.Event(), asyncio.Event()
    ending = asyncio.create_task(first_of(run.task, taken_over, stop, run.settled))
    run.plakar_done.set()
    await run.settled.wait()
    stop.set()
    assert await ending == Ended(FINISHED)
    assert run.reported


async def test_a_take_over_cancels_even_a_report() -> None:
    run, taken_over, stop = Run(), asyncio.Event(), asyncio.Event()
    ending = asyncio.create_task(first_of(run.task, taken_over, stop, run.settled))
    run.plakar_done.set()
    await run.settled.wait()
    taken_over.set()
    assert await ending == TakenOver()
    assert run.task.cancelled() and not run.reported
