"""The control plane's session: how a scheduler tells a failover from a restart.

Every live scheduler process, active or standby, keeps one key alive in the
lease bucket, whose entries expire after the bucket's TTL. The key holds the
instant the session began. While any scheduler lives, the session goes on (a
failover keeps it); once none has lived for a TTL, the control plane was
stopped, and the first scheduler to come back begins a new session: the
restart instant of non-journalised schedules.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from shared.bus import SCHEDULER_LEASE_TTL_S
from shared.events import utcnow

log = logging.getLogger("plakar_cp.scheduler")

SESSION_KEY = "session"


class Session:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket
        self.started: datetime | None = None
        self.known = asyncio.Event()

    async def keep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._touch()
            except Exception as e:  # NATS unreachable: try again at the next tick
                log.warning("session refresh failed: %s", e)
            try:
                await asyncio.wait_for(stop.wait(), SCHEDULER_LEASE_TTL_S / 4)
            except TimeoutError:
                pass

    async def _touch(self) -> None:
        now = utcnow().replace(microsecond=0)
        try:
            await self._bucket.create(SESSION_KEY, now.isoformat().encode())
            self._set(now)
            log.info("a new control-plane session begins at %s", now.isoformat())
            return
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._bucket.get(SESSION_KEY)
        except KeyNotFoundError:
            return  # expired just now: created at the next tick
        if not entry.value:
            return
        try:
            # Writing the same value again renews its TTL.
            await self._bucket.update(SESSION_KEY, entry.value, last=entry.revision)
        except KeyWrongLastSequenceError:
            pass  # another scheduler renewed it meanwhile
        self._set(datetime.fromisoformat(entry.value.decode()))

    def _set(self, started: datetime) -> None:
        self.started = started
        self.known.set()
