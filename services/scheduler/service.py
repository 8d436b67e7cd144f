"""Scheduler transport: presence, the lease, and (while active) the firing loop."""

from __future__ import annotations

import asyncio
import logging

from services.scheduler.lease import Lease
from shared import bus
from shared import subjects as s
from shared.settings import Settings

log = logging.getLogger("plakar_cp.scheduler")


class Scheduler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def main(self, stop: asyncio.Event) -> None:
        nc = await bus.connect(self.settings.nats_url, "scheduler")
        js = nc.jetstream()
        presence = bus.Presence(js, "scheduler", self.settings.instance_id)
        await presence.start()
        lease = Lease(await bus.kv(js, s.SCHEDULER_LEASE_BUCKET), self.settings.instance_id)
        log.info("scheduler %s ready", self.settings.instance_id)
        try:
            await lease.keep(stop)
        finally:
            await presence.stop()
            await bus.close(nc)
