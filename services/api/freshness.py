"""The freshness of tasks and connectors as answered: judged at the time of the answer."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from shared import freshness_db
from shared.db import Pool
from shared.events import utcnow
from shared.models import Connector, Task

T = TypeVar("T", Task, Connector)


async def judged_now(pool: Pool, items: list[T]) -> list[T]:
    """`items` with their `freshness_state` now (those without a rule keep null)."""
    ids = [i.id for i in items if i.freshness is not None]
    if not ids:
        return items
    found = {j.id: j for j in await freshness_db.judged(pool, ids)}
    now = utcnow()
    return [
        msgspec.structs.replace(i, freshness_state=found[i.id].state(now)) if i.id in found else i
        for i in items
    ]
