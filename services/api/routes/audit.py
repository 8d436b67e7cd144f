"""The audit trail, read-only: no route changes or deletes a record."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.datastructures import State
from litestar.params import Parameter

from services.api import audit
from services.api.openapi import errors, stated
from services.api.validation import Invalid, check_period
from shared.models import AuditPage


@get("/api/v1/audit", tags=["audit"], responses=errors(422))
async def audit_trail(
    state: State,
    action: str | None = None,
    object_kind: str | None = None,
    object_id: str | None = None,
    token_name: str | None = None,
    since: Annotated[str | None, stated(format="date-time")] = None,
    until: Annotated[str | None, stated(format="date-time")] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> AuditPage:
    """Newest first: every change made through the api (`action` as `<kind>.<verb>`),
    filtered by action, object, token name and time (RFC 3339; `until` excluded)."""
    start, end = check_period(since, until)
    before = None
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 19:
            raise Invalid("cursor", "cursor is not one this api returned")
        before = int(cursor)
    items, following = await audit.page(
        state.deps.pool,
        action=action,
        object_kind=object_kind,
        object_id=object_id,
        token_name=token_name,
        since=start,
        until=end,
        before_seq=before,
        limit=limit,
    )
    return AuditPage(items=items, next_cursor=str(following) if following else None)
