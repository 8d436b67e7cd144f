"""Delivering notifications: every api process fans new events out to the targets of the
rules they match, and sends the deliveries that are due, each taken by one process at a
time (a lease in PostgreSQL). A failed attempt is tried again later (shared/
notifications.py), each one recorded; a process killed mid-send leaves its deliveries to
the others once their lease ends (so a receiver may, rarely, get one twice: it carries
its delivery's id in `X-Plakar-Delivery`)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import msgspec

from services.api.notify import store
from services.api.notify.send import send
from shared.db import Pool
from shared.events import utcnow
from shared.notifications import Notice, retry_delay
from shared.settings import Settings

log = logging.getLogger("plakar_cp.api")

# Deliveries one process sends at once; how long one is its own before others may take it
# (above the longest attempt: 20 s for SMTP).
BATCH = 20
LEASE_S = 60.0
# Old deliveries are forgotten this often.
FORGET_EVERY_S = 3600.0


class Deliverer:
    def __init__(self, pool: Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self.base = timedelta(seconds=settings.notify_retry_base_s)

    async def run(self) -> None:
        forgotten_at = 0.0
        while True:
            busy = False
            try:
                await store.fan_out(self.pool)
                due = await store.take_due(self.pool, BATCH, LEASE_S)
                busy = len(due) == BATCH
                await asyncio.gather(*(self._deliver(row) for row in due))
                if time.monotonic() - forgotten_at > FORGET_EVERY_S:
                    await store.forget_old(self.pool)
                    forgotten_at = time.monotonic()
            except Exception as e:  # PostgreSQL away: the next round tries again
                log.warning("notifications: %s", e)
            if not busy:
                await asyncio.sleep(self.settings.notify_poll_s)

    async def _deliver(self, row: Any) -> None:
        target = await store.get_target(self.pool, row["target_id"])
        if target is None:
            return  # deleted meanwhile: its deliveries went with it
        notice = msgspec.convert(row["body"], Notice)
        attempt = row["attempts"] + 1
        sent = await send(target, notice, row["id"], self.settings.notify_from)
        again = None if sent.ok else retry_delay(attempt, self.base)
        await store.record_attempt(
            self.pool, row["id"], attempt, utcnow(), sent.ok, sent.detail, again
        )
        if not sent.ok:
            when = f"again in {again}" if again else "no attempts left"
            log.warning(
                "notification %s to %s failed: %s (%s)", row["id"], target.name, sent.detail, when
            )
