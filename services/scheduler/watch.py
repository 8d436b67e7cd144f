"""What the active scheduler looks after between firings, each at its own times: the
actor calls `look` once `look_at` has come (retrying.py, freshness_watch.py)."""

from __future__ import annotations

from datetime import datetime

from services.scheduler.clock import Clock
from shared.db import Pool
from shared.dispatch import Publish


class Watch:
    def __init__(self, pool: Pool, clock: Clock, publish: Publish) -> None:
        self.pool = pool
        self.clock = clock
        self.publish = publish
        self.look_at: datetime | None = None

    def start(self) -> None:
        self.look_at = self.clock.now()

    async def look(self) -> None:
        """Do what is due, and set `look_at` to when to look again."""
        raise NotImplementedError
