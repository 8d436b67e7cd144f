"""A restore task that names a snapshot is looked at in its store as it is saved: a runner
finds the snapshot (the task keeps its full id; no match, or several for a prefix, is
refused) and what it holds at the task's path (shared/models.py RestorePoint), so that
its jobs only restore, in one opening of the store. A snapshot never changes: what was
learnt stays true as long as the task names the same snapshot, path and store."""

from __future__ import annotations

import msgspec

from services.api.deps import Deps
from services.api.rpc import ask
from shared import rpc
from shared.config_db import get_connectors
from shared.models import RestorePoint, Task, TaskCreate


def _names(task: Task | TaskCreate) -> tuple[str | None, ...]:
    return task.store_id, task.snapshot_id, task.restore_path


async def looked_at(
    deps: Deps, body: TaskCreate, current: Task | None = None
) -> tuple[TaskCreate, RestorePoint | None]:
    """The task as saved (its snapshot's full id) and what its snapshot holds; raises
    ApiError (422 naming the field) when the store has no such snapshot or path."""
    if body.type != "restore" or body.snapshot_id is None or body.store_id is None:
        return body, None
    if current is not None and current.restore_point and _names(current) == _names(body):
        return body, current.restore_point
    found = await get_connectors(deps.pool, [body.store_id])
    # Asked of the runners the task's jobs would run on.
    store = msgspec.structs.replace(found[body.store_id], runner_group=body.runner_group)
    request = rpc.LocateRestore(
        connector=store, snapshot_id=body.snapshot_id.lower(), path=body.restore_path
    )
    answer = await ask(deps, request, rpc.RestoreLocated)
    return msgspec.structs.replace(body, snapshot_id=answer.snapshot_id), answer.point
