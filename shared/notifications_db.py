"""Recording the events rules may notify (shared/notifications.py), once each: by the
history as it projects a job's end, by the scheduler as it journals a freshness change.
The api fans them out to targets and delivers them (services/api/notify/)."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.notifications import Notice, kind_of


async def record(conn: Any, notices: list[tuple[Notice, str | None, list[str]]]) -> None:
    """Record each (notice, its task, its connectors); one told before is left as it is."""
    if not notices:
        return
    await conn.executemany(
        """INSERT INTO notification_events (event_id, kind, at, task_id, connector_ids, body)
           VALUES ($1, $2, $3, $4, $5::uuid[], $6) ON CONFLICT DO NOTHING""",
        [
            (n.event_id, kind_of(n), n.ts, task, connectors, msgspec.to_builtins(n))
            for n, task, connectors in notices
        ],
    )
