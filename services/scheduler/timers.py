"""Due instants of the schedules, soonest first: a heap with lazy removal."""

from __future__ import annotations

import heapq
from datetime import datetime


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._at: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._at)

    def keys(self) -> set[str]:
        return set(self._at)

    def set(self, key: str, at: datetime) -> None:
        if self._at.get(key) == at:
            return
        self._at[key] = at
        heapq.heappush(self._heap, (at, key))

    def remove(self, key: str) -> None:
        self._at.pop(key, None)

    def _drop_stale(self) -> None:
        while self._heap and self._at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def next_at(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[str]:
        """The keys due at `now` or before, removed."""
        due: list[str] = []
        while (at := self.next_at()) is not None and at <= now:
            _, key = heapq.heappop(self._heap)
            del self._at[key]
            due.append(key)
        return due
