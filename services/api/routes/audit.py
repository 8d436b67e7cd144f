"""The audit trail, read-only: no route changes or deletes a record."""

from __future__ import annotations

import re
from typing import Annotated

from litestar import get
from litestar.datastructures import State
from litestar.params import Parameter

from services.api import audit
from services.api.openapi import errors, stated
from services.api.validation import Invalid, check_period
from shared.models import AuditPage
from shared.text import ONE_LINE, is_one_line

# A filter is one line of text, as what it matches is.
MAX_FILTER = 256
Filter = Annotated[str | None, stated(max_length=MAX_FILTER, pattern=ONE_LINE)]
CURSOR = r"^[0-9]{0,18}$"


def _filter(value: str | None, field: str) -> str | None:
    if value is not None and (len(value) > MAX_FILTER or not is_one_line(value)):
        raise Invalid(field, f"{field} must be one line of at most {MAX_FILTER} characters")
    return value or None


@get("/api/v1/audit", tags=["audit"], responses=errors(422))
async def audit_trail(
    state: State,
    action: Filter = None,
    object_kind: Filter = None,
    object_id: Filter = None,
    token_name: Filter = None,
    since: Annotated[str | None, stated(format="date-time")] = None,
    until: Annotated[str | None, stated(format="date-time")] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, stated(pattern=CURSOR)] = None,
) -> AuditPage:
    """Newest first: every change made through the api (`action` as `<kind>.<verb>`),
    filtered by action, object, token name and time (RFC 3339; `until` excluded). An
    empty filter or cursor is none."""
    start, end = check_period(since, until)
    before = None
    if cursor:
        if not re.fullmatch(CURSOR, cursor):
            raise Invalid("cursor", "cursor is not one this api returned")
        before = int(cursor)
    items, following = await audit.page(
        state.deps.pool,
        action=_filter(action, "action"),
        object_kind=_filter(object_kind, "object_kind"),
        object_id=_filter(object_id, "object_id"),
        token_name=_filter(token_name, "token_name"),
        since=start,
        until=end,
        before_seq=before,
        limit=limit,
    )
    return AuditPage(items=items, next_cursor=str(following) if following else None)
