"""Reading what freshness is judged on: the tasks and connectors that ask for it, each
with its window, its creation and its last success (shared by the api and the scheduler)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from shared.db import Pool
from shared.freshness import FreshnessState, Watched, stale_at, state

# The last success is the latest end among the newest succeeded jobs by queue time: an
# index range of this many rows however long the history.
_NEWEST = 10

# The last success of the task `t`.
TASK_LAST_SUCCESS = f"""(SELECT max(s.finished_at) FROM (
            SELECT j.finished_at FROM jobs j WHERE j.task_id = t.id AND j.status = 'succeeded'
            ORDER BY j.queued_at DESC LIMIT {_NEWEST}) s)"""

_SQL = f"""
SELECT 'task' AS watched, t.id::text, t.name, t.freshness_s, t.created_at,
       {TASK_LAST_SUCCESS} AS last_success
FROM tasks t WHERE t.freshness_s IS NOT NULL AND ($1::uuid[] IS NULL OR t.id = ANY($1))
UNION ALL
SELECT 'connector', c.id::text, c.name, c.freshness_s, c.created_at,
       (SELECT max(j.finished_at) FROM (
            SELECT jc.job_id FROM job_connectors jc
            WHERE jc.connector_id = c.id AND jc.status = 'succeeded'
            ORDER BY jc.queued_at DESC, jc.job_id DESC LIMIT {_NEWEST}) s
        JOIN jobs j ON j.id = s.job_id)
FROM connectors c WHERE c.freshness_s IS NOT NULL AND ($1::uuid[] IS NULL OR c.id = ANY($1))
"""


class Judged(msgspec.Struct, frozen=True):
    """A task or connector that asks for freshness, with what it is judged on."""

    watched: Watched
    id: str
    name: str | None
    window: timedelta
    created_at: datetime
    last_success: datetime | None

    def state(self, now: datetime) -> FreshnessState | None:
        return state(self.window, self.last_success, self.created_at, now)

    def stale_at(self) -> datetime:
        return stale_at(self.window, self.last_success, self.created_at)


async def judged(pool: Pool, ids: Sequence[str] | None = None) -> list[Judged]:
    """Every task and connector that asks for freshness (or those of `ids`)."""
    rows = await pool.fetch(_SQL, list(ids) if ids is not None else None)
    return [
        Judged(
            watched=r["watched"],
            id=r["id"],
            name=r["name"],
            window=timedelta(seconds=r["freshness_s"]),
            created_at=r["created_at"],
            last_success=r["last_success"],
        )
        for r in rows
    ]
