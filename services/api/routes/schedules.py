"""Schedules: attach to a task, list, change, delete. Every change is announced
on NATS, so the active scheduler re-arms the schedule at once."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State

from services.api import audit, schedules_store, store
from services.api.auth import CallerRequest
from services.api.deps import Deps, parse_id
from services.api.errors import ApiError, not_found
from services.api.openapi import errors
from services.api.roles import OPERATOR, allows
from services.api.validation import check_schedule
from shared import subjects
from shared.events import ScheduleChanged, encode
from shared.models import Interval, Schedule, ScheduleCreate, SchedulePatch


async def announce(deps: Deps, schedule_ids: list[str], deleted: bool = False) -> None:
    for schedule_id in schedule_ids:
        event = ScheduleChanged(schedule_id=schedule_id, deleted=deleted)
        subject = subjects.schedule_event(schedule_id, "changed")
        await deps.publish(subject, encode(event), event.event_id)


async def load(deps: Deps, schedule_id: str) -> Schedule:
    found = await schedules_store.get(deps.pool, parse_id(schedule_id, "schedule"))
    if found is None:
        raise not_found("schedule")
    return found


def _merged(current: Schedule, patch: SchedulePatch) -> ScheduleCreate:
    recurrence = current.recurrence if patch.recurrence is msgspec.UNSET else patch.recurrence
    interval: Interval | None = None
    if patch.interval is not msgspec.UNSET:
        interval = patch.interval
    elif recurrence == "custom" == current.recurrence:
        interval = current.interval
    return ScheduleCreate(
        recurrence=recurrence,
        interval=interval,
        start_at=current.start_at if patch.start_at is msgspec.UNSET else patch.start_at,
        journalised=(
            current.journalised if patch.journalised is msgspec.UNSET else patch.journalised
        ),
        enabled=current.enabled if patch.enabled is msgspec.UNSET else patch.enabled,
    )


class ScheduleController(Controller):
    path = "/api/v1"
    tags = ["schedules"]

    @post("/tasks/{task_id:str}/schedules", responses=errors(404, 409, 422))
    async def create(self, request: CallerRequest, task_id: str, data: ScheduleCreate) -> Schedule:
        deps: Deps = request.app.state.deps
        task = await store.get_task(deps.pool, parse_id(task_id, "task"))
        if task is None:
            raise not_found("task")
        spec = check_schedule(data)
        await store.room_for(deps.pool, "schedules", deps.settings.max_schedules)
        [schedule_id] = await schedules_store.insert(deps.pool, task.id, [spec])
        await announce(deps, [schedule_id])
        created = await load(deps, schedule_id)
        await audit.record(deps.pool, request.user, "schedule.create", schedule_id, after=created)
        return created

    @get("/schedules", responses=errors())
    async def list_all(
        self, state: State, task_id: UUID | None = None, connector_id: UUID | None = None
    ) -> list[Schedule]:
        return await schedules_store.list_all(
            state.deps.pool,
            str(task_id) if task_id else None,
            str(connector_id) if connector_id else None,
        )

    @get("/schedules/{schedule_id:str}", responses=errors(404))
    async def get_one(self, state: State, schedule_id: str) -> Schedule:
        return await load(state.deps, schedule_id)

    @patch("/schedules/{schedule_id:str}", responses=errors(404, 422), opt=OPERATOR)
    async def update(
        self, request: CallerRequest, schedule_id: str, data: SchedulePatch
    ) -> Schedule:
        """An operator may only turn a schedule on or off (`enabled`); an admin change
        anything."""
        deps: Deps = request.app.state.deps
        role = request.user.holder.role
        others = [f for f in SchedulePatch.__struct_fields__ if f != "enabled"]
        if not allows(role, "admin") and any(getattr(data, f) is not msgspec.UNSET for f in others):
            raise ApiError(403, f"the {role} role may only turn a schedule on or off (enabled)")
        current = await load(deps, schedule_id)
        spec = check_schedule(_merged(current, data))
        if not await schedules_store.update(deps.pool, current.id, spec):
            raise not_found("schedule")
        await announce(deps, [current.id])
        updated = await load(deps, current.id)
        await audit.record(deps.pool, request.user, "schedule.update", current.id, current, updated)
        return updated

    @delete("/schedules/{schedule_id:str}", responses=errors(404))
    async def remove(self, request: CallerRequest, schedule_id: str) -> None:
        deps: Deps = request.app.state.deps
        current = await load(deps, schedule_id)
        if not await schedules_store.delete(deps.pool, current.id):
            raise not_found("schedule")
        await announce(deps, [current.id], deleted=True)
        await audit.record(deps.pool, request.user, "schedule.delete", current.id, current)
