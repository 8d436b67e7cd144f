"""Leadership among scheduler processes: a key in a NATS bucket whose entries expire.

The holder renews the key by compare-and-set every third of the bucket's TTL; when
it dies the key expires and another process creates it. Creating succeeds only
when the key is absent, so at most one process holds it.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from shared import subjects as s
from shared.bus import SCHEDULER_LEASE_TTL_S

log = logging.getLogger("plakar_cp.scheduler")


class Lease:
    def __init__(self, bucket: KeyValue, holder: str) -> None:
        self._bucket = bucket
        self._holder = holder.encode()
        self._revision: int | None = None
        self.held = asyncio.Event()
        self.lost = asyncio.Event()

    async def keep(self, stop: asyncio.Event) -> None:
        """Acquire and renew until stop; sets `held` while held and `lost` on loss."""
        while not stop.is_set():
            try:
                await self._step()
            except Exception as e:  # NATS unreachable: the lease may expire meanwhile
                log.warning("lease step failed: %s", e)
                if self.held.is_set() and not await self._still_ours():
                    self._lose()
            try:
                await asyncio.wait_for(stop.wait(), SCHEDULER_LEASE_TTL_S / 3)
            except TimeoutError:
                pass
        if self.held.is_set():
            try:
                await self._bucket.delete(s.SCHEDULER_LEASE_KEY, last=self._revision)
            except Exception as e:
                log.info("lease release failed: %s", e)

    async def _step(self) -> None:
        if self._revision is None:
            try:
                self._revision = await self._bucket.create(s.SCHEDULER_LEASE_KEY, self._holder)
            except KeyWrongLastSequenceError:
                return  # another process holds it
            self.lost.clear()
            self.held.set()
            log.info("became the active scheduler")
            return
        try:
            self._revision = await self._bucket.update(
                s.SCHEDULER_LEASE_KEY, self._holder, last=self._revision
            )
        except KeyWrongLastSequenceError:
            self._lose()

    async def _still_ours(self) -> bool:
        try:
            entry = await self._bucket.get(s.SCHEDULER_LEASE_KEY)
        except Exception:
            return False
        return entry.value == self._holder and entry.revision == self._revision

    def _lose(self) -> None:
        log.warning("lost the scheduler lease")
        self._revision = None
        self.held.clear()
        self.lost.set()
