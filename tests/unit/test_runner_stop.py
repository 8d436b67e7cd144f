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


async def ends(run: Run, signal: str, *, plakar_done: bool) -> Ended | TakenOver | Stopped:
    """How the run ends when `signal` (stop, taken_over) comes before or after plakar."""
    events = {"stop": asyncio.Event(), "taken_over": asyncio.Event()}
    ending = asyncio.create_task(
        first_of(run.task, events["taken_over"], events["stop"], run.settled)
    )
    if plakar_done:
        run.plakar_done.set()
        await run.settled.wait()
    else:
        await asyncio.sleep(0)
    events[signal].set()
    return await ending


async def test_a_stop_while_plakar_works_cancels_the_run() -> None:
    run = Run()
    assert await ends(run, "stop", plakar_done=False) == Stopped()
    assert run.task.cancelled() and not run.reported


async def test_a_stop_while_the_outcome_is_reported_lets_the_report_end() -> None:
    run = Run()
    assert await ends(run, "stop", plakar_done=True) == Ended(FINISHED)
    assert run.reported


async def test_a_take_over_cancels_even_a_report() -> None:
    run = Run()
    assert await ends(run, "taken_over", plakar_done=True) == TakenOver()
    assert run.task.cancelled() and not run.reported
