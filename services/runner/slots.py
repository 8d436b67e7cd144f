"""A runner process's slots: it runs up to K jobs at once and asks NATS for a job message
only when a slot is free, so that the jobs of a group spread over its runners by their
free capacity (a busy runner leaves the queue to the others)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from nats.aio.msg import Msg

log = logging.getLogger("plakar_cp.runner")


async def run_in_slots(
    slots: int,
    fetch: Callable[[], Awaitable[list[Msg]]],
    handle: Callable[[Msg], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
) -> None:
    """Fetch one message whenever one of `slots` is free and handle it in that slot, until
    `stop`; then wait for the jobs being handled (each sees `stop` itself and gives its
    message back). `fetch` returns at most one message, none after a while without any;
    `handle` never raises."""
    running: set[asyncio.Task[None]] = set()
    freed = asyncio.Event()

    def done(task: asyncio.Task[None]) -> None:
        running.discard(task)
        freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("a job slot failed", exc_info=task.exception())

    try:
        while not stop.is_set():
            if len(running) >= slots:
                freed.clear()
                await _either(freed, stop)
                continue
            for msg in await fetch():
                if len(running) >= slots:
                    # More than asked for (a late answer to an earlier fetch): give it
                    # back at once for another runner to take.
                    with contextlib.suppress(Exception):
                        await msg.nak()
                    continue
                task = asyncio.create_task(handle(msg))
                running.add(task)
                task.add_done_callback(done)
    finally:
        if not stop.is_set():  # cancelled or failed: the jobs go too
            for task in running:
                task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    waits = {asyncio.create_task(a.wait()), asyncio.create_task(b.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
