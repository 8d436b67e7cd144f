"""The audit trail: each change made through the api, recorded as it is made, with its
caller and the object before and after it (as the api answers it: secrets masked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from services.api.auth import Caller
from shared.db import Pool
from shared.models import AuditRecord


def _plain(value: Any) -> Any:
    return None if value is None else msgspec.to_builtins(value)


async def record(
    db: Any,
    caller: Caller,
    action: str,
    object_id: str | None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Record `action` ("<kind>.<verb>") on an object; `db` a pool or the connection of
    the change's transaction. `before` and `after` as answered (masked)."""
    await db.execute(
        """INSERT INTO audit_log (token_id, token_name, role, via, action, object_kind,
                                  object_id, before, after)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        caller.holder.id,
        caller.holder.name,
        caller.holder.role,
        caller.via,
        action,
        action.split(".", 1)[0],
        object_id,
        _plain(before),
        _plain(after),
    )


async def page(
    pool: Pool,
    *,
    action: str | None,
    object_kind: str | None,
    object_id: str | None,
    token_name: str | None,
    since: datetime | None,
    until: datetime | None,
    before_seq: int | None,
    limit: int,
) -> tuple[list[AuditRecord], int | None]:
    """Newest first, from `before_seq` (excluded); and the cursor of the next page."""
    rows = await pool.fetch(
        """SELECT seq, at, token_id::text, token_name, role, via, action, object_kind,
                  object_id, before, after
           FROM audit_log
           WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR object_kind = $2)
             AND ($3::text IS NULL OR object_id = $3) AND ($4::text IS NULL OR token_name = $4)
             AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
             AND ($7::bigint IS NULL OR seq < $7)
           ORDER BY seq DESC LIMIT $8""",
        action,
        object_kind,
        object_id,
        token_name,
        since,
        until,
        before_seq,
        limit + 1,
    )
    items = [AuditRecord(**dict(r)) for r in rows[:limit]]
    return items, (items[-1].seq if len(rows) > limit else None)
