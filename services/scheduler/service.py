"""Scheduler transport: presence, the session, the lease, and (while it holds the
lease) the active scheduler."""

from __future__ import annotations

import asyncio
import logging

from services.scheduler.active import Active
from services.scheduler.lease import Lease
from services.scheduler.session import Session
from shared import bus
from shared import subjects as s
from shared.db import create_pool
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
                active = asyncio.create_task(Active(pool, nc, js, session.started).run())
                ended = asyncio.create_task(_first(lease.lost, stop))
                await asyncio.wait({active, ended}, return_when=asyncio.FIRST_COMPLETED)
                ended.cancel()
                active.cancel()
                try:
                    await active
                except asyncio.CancelledError:
                    pass
                except Exception:  # the database unreachable, say: start over shortly
                    log.exception("active scheduler failed")
                    await asyncio.sleep(1)
                if lease.lost.is_set():
                    log.warning("no longer active")
        finally:
            # The lease is released last, once nothing fires any more.
            for t in keepers:
                await t
            await presence.stop()
            await bus.close(nc)
            await pool.close()


async def _first(wanted: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for `wanted` or `stop`; True when `wanted` is set."""
    if not wanted.is_set():
        waits = {asyncio.create_task(wanted.wait()), asyncio.create_task(stop.wait())}
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
    return wanted.is_set()
