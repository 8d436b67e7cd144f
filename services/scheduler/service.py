"""Scheduler transport: presence, the session, the lease, and (while it holds the
lease) the active scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from functools import partial

from nats.aio.client import Client
from nats.aio.msg import Msg

from services.scheduler.active import Active
from services.scheduler.clock import RealClock
from services.scheduler.lease import Lease
from services.scheduler.session import Session
from shared import bus, subjects
from shared import subjects as s
from shared.db import Pool, create_pool
from shared.dispatch import publish_all
from shared.events import ScheduleChanged, decode_schedule_event
from shared.settings import Settings

log = logging.getLogger("plakar_cp.scheduler")


class Scheduler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def main(self, stop: asyncio.Event) -> None:
        pool = await create_pool(self.settings.database_url, max_size=8)
        nc = await bus.connect(self.settings.nats_url, "scheduler")
        js = nc.jetstream()
        presence = bus.Presence(js, "scheduler", self.settings.instance_id)
        await presence.start()
        bucket = await bus.kv(js, s.SCHEDULER_LEASE_BUCKET)
        session = Session(bucket)
        lease = Lease(bucket, self.settings.instance_id)
        keepers = [
            asyncio.create_task(session.keep(stop)),
            asyncio.create_task(lease.keep(stop)),
        ]
        log.info("scheduler %s ready", self.settings.instance_id)
        try:
            while not stop.is_set():
                if not await _first(lease.held, stop):
                    break
                await _first(session.known, stop)
                if session.started is None:
                    break
                await _act(pool, nc, session.started, lease, stop)
        finally:
            # The lease is released last, once nothing fires any more.
            for t in keepers:
                await t
            await presence.stop()
            await bus.close(nc)
            await pool.close()


async def _act(
    pool: Pool, nc: Client, session_started: datetime, lease: Lease, stop: asyncio.Event
) -> None:
    """Be the active scheduler until the lease is lost, stop is asked, or it fails (the
    database unreachable, say: the caller starts over)."""
    active = Active(pool, RealClock(), partial(publish_all, nc), session_started)

    async def changed(msg: Msg) -> None:
        try:
            event = decode_schedule_event(msg.data)
        except Exception as e:
            log.error("unreadable schedule event on %s: %s", msg.subject, e)
            return
        if isinstance(event, ScheduleChanged):
            active.changed(event.schedule_id)

    # Subscribed before the schedules are read, so no change falls in between.
    sub = await nc.subscribe(subjects.schedule_event("*", "changed"), cb=changed)
    running = asyncio.create_task(active.run())
    ended = asyncio.create_task(_first(lease.lost, stop))
    try:
        await asyncio.wait({running, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (running, ended):
            t.cancel()
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    try:
        await running
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("active scheduler failed")
        await asyncio.sleep(1)
    if lease.lost.is_set():
        log.warning("no longer active")


async def _first(wanted: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for `wanted` or `stop`; True when `wanted` is set."""
    if not wanted.is_set():
        waits = {asyncio.create_task(wanted.wait()), asyncio.create_task(stop.wait())}
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
    return wanted.is_set()
