"""The scheduler's clock: the real one, or one a test moves by hand.

The active scheduler reads the time and waits only through a Clock, so its rules
(start times, catch-ups, restarts, overlaps) can be tested in-process in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from shared.events import utcnow

T = TypeVar("T")

# The real clock waits at most this long at once, so that a step of the system clock
# is noticed.
MAX_WAIT_S = 30.0


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def race(self, work: Awaitable[T], until: datetime | None) -> T | None:
        """`work`'s result, or None when the clock reaches `until` first (`work` is then
        cancelled)."""
        ...


async def _first(work: Awaitable[T], deadline: Awaitable[object]) -> T | None:
    task = asyncio.ensure_future(work)
    waiting = asyncio.ensure_future(deadline)
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, waiting, return_exceptions=True)
    return task.result() if task.done() and not task.cancelled() else None


class RealClock:
    def now(self) -> datetime:
        return utcnow()

    async def race(self, work: Awaitable[T], until: datetime | None) -> T | None:
        wait = MAX_WAIT_S if until is None else (until - self.now()).total_seconds()
        return await _first(work, asyncio.sleep(min(MAX_WAIT_S, max(0.0, wait))))


class FakeClock:
    """Time moves only when `advance` says. `parked` tells whether the clock's user waits
    on it again, having seen the latest time."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self._moved = asyncio.Event()
        self._epoch = 0
        self._seen = -1
        self._waiting = 0

    def now(self) -> datetime:
        return self.t

    async def race(self, work: Awaitable[T], until: datetime | None) -> T | None:
        async def reached() -> None:
            while True:
                self._moved.clear()
                self._seen = self._epoch
                if until is not None and self.t >= until:
                    return
                await self._moved.wait()

        self._waiting += 1
        try:
            return await _first(work, reached())
        finally:
            self._waiting -= 1

    def advance(self, by: timedelta) -> None:
        self.t += by
        self._epoch += 1
        self._moved.set()

    @property
    def parked(self) -> bool:
        return self._waiting > 0 and self._seen == self._epoch
