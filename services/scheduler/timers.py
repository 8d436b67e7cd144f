"""Due instants of the schedules, soonest first: a heap with lazy removal.

The heap orders POSIX timestamps rather than the aware datetimes themselves: comparing
those asks their time zones each time, and a burst pops thousands at once."""

from __future__ import annotations

import heapq
from datetime import datetime


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str, datetime]] = []
        self._at: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._at)

    def keys(self) -> set[str]:
        return set(self._at)

    def set(self, key: str, at: datetime) -> None:
        ts = at.timestamp()
        if self._at.get(key) == ts:
            return
        self._at[key] = ts
        heapq.heappush(self._heap, (ts, key, at))

    def remove(self, key: str) -> None:
        self._at.pop(key, None)

    def _drop_stale(self) -> None:
        while self._heap and self._at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def next_at(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][2] if self._heap else None

    def pop_due(self, now: datetime) -> list[str]:
        """The keys due at `now` or before, removed."""
        due = self._pop_until(now.timestamp())
        for _, key, _ in due:
            del self._at[key]
        return [key for _, key, _ in due]

    def due_by(self, at: datetime) -> list[str]:
        """The keys due at `at` or before, left in place."""
        due = self._pop_until(at.timestamp())
        for item in due:
            heapq.heappush(self._heap, item)
        return [key for _, key, _ in due]

    def _pop_until(self, until: float) -> list[tuple[float, str, datetime]]:
        popped: list[tuple[float, str, datetime]] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > until:
                return popped
            popped.append(heapq.heappop(self._heap))
