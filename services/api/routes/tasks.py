"""Tasks: CRUD and run-now. A task saved without schedules runs once at once."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State

from services.api import audit, schedules_store, store
from services.api.auth import Caller, CallerRequest
from services.api.deps import PUBLISH_PATIENCE_S, Deps, parse_id
from services.api.errors import not_found
from services.api.freshness import judged_now
from services.api.openapi import errors
from services.api.restore_points import looked_at
from services.api.roles import OPERATOR
from services.api.routes.schedules import announce
from services.api.rpc import ask
from services.api.validation import (
    ALL_SLOTS,
    Invalid,
    check_confirmed,
    check_schedule,
    check_task,
)
from shared import rpc
from shared.config_db import get_connectors
from shared.dispatch import queue_job
from shared.models import (
    PrunePlan,
    RunStarted,
    Task,
    TaskCreate,
    TaskCreated,
    TaskCreateWithSchedules,
    TaskPatch,
)


async def _validated(deps: Deps, body: TaskCreate) -> TaskCreate:
    ids = [getattr(body, f) for f in ALL_SLOTS if getattr(body, f) is not None]
    for field in ALL_SLOTS:
        value = getattr(body, field)
        if value is not None:
            try:
                parse_id(value, "connector")
            except Exception:
                raise Invalid(field, f"connector {value} does not exist") from None
    return check_task(body, await get_connectors(deps.pool, ids))


async def load(deps: Deps, task_id: str) -> Task:
    found = await store.get_task(deps.pool, parse_id(task_id, "task"))
    if found is None:
        raise not_found("task")
    return found


async def shown(deps: Deps, task: Task) -> Task:
    """As answered: with its freshness now."""
    [judged] = await judged_now(deps.pool, [task])
    return judged


async def run_now(deps: Deps, task: Task, caller: Caller) -> str:
    """Queue a job of the task now, asked for by the caller (the job names its token),
    and record it in the audit trail."""
    job_id = await queue_job(
        deps.js, task, "manual", patience=PUBLISH_PATIENCE_S, requested_by=caller.holder.name
    )
    await audit.record(deps.pool, caller, "task.run", task.id, after={"job_id": job_id})
    # Answer once the history knows the job, so a GET right after finds it.
    await store.wait_for_job(deps.pool, job_id)
    return job_id


class TaskController(Controller):
    path = "/api/v1/tasks"
    tags = ["tasks"]

    @post("/", responses=errors(409, 422, 502, 503, 504))
    async def create(self, request: CallerRequest, data: TaskCreateWithSchedules) -> TaskCreated:
        deps: Deps = request.app.state.deps
        specs = [check_schedule(s, f"schedules[{i}].") for i, s in enumerate(data.schedules)]
        body = await _validated(deps, data)
        check_confirmed(body)
        await store.room_for(deps.pool, "tasks", deps.settings.max_tasks)
        await store.room_for(deps.pool, "schedules", deps.settings.max_schedules, len(specs))
        body, point = await looked_at(deps, body)
        if not specs:
            task = await store.insert_task(deps.pool, body, point)
            await audit.record(deps.pool, request.user, "task.create", task.id, after=task)
            job_id = await run_now(deps, task, request.user)
            return TaskCreated(task=await shown(deps, task), job_id=job_id)
        # A scheduled task does not run one-off: its schedules run it.
        async with deps.pool.acquire() as conn, conn.transaction():
            task = await store.insert_task(conn, body, point)
            schedule_ids = await schedules_store.insert(conn, task.id, specs)
            after = {**msgspec.to_builtins(task), "schedule_ids": schedule_ids}
            await audit.record(conn, request.user, "task.create", task.id, after=after)
        await announce(deps, schedule_ids)
        return TaskCreated(task=await shown(deps, task), job_id=None)

    @post("/preview", status_code=200, responses=errors(409, 422, 502, 503, 504))
    async def preview(self, state: State, data: TaskCreate) -> PrunePlan:
        """What a prune task would keep and delete if it ran now (plakar's dry run), before
        it is saved: nothing is deleted. `confirm` is not needed here."""
        deps: Deps = state.deps
        body = await _validated(deps, data)
        if body.type != "prune" or body.store_id is None or body.retention is None:
            raise Invalid("type", "only a prune task has a preview")
        found = await get_connectors(deps.pool, [body.store_id])
        # Asked of the runners the task's jobs would run on.
        connector = msgspec.structs.replace(found[body.store_id], runner_group=body.runner_group)
        request = rpc.PreviewPrune(
            connector=connector, labels=body.labels, retention=body.retention
        )
        return (await ask(deps, request, rpc.PrunePlanned)).plan

    @get("/", responses=errors())
    async def list_all(self, state: State) -> list[Task]:
        return await judged_now(state.deps.pool, await store.list_tasks(state.deps.pool))

    @get("/{task_id:str}", responses=errors(404))
    async def get_one(self, state: State, task_id: str) -> Task:
        return await shown(state.deps, await load(state.deps, task_id))

    @patch("/{task_id:str}", responses=errors(404, 422, 502, 503, 504))
    async def update(self, request: CallerRequest, task_id: str, data: TaskPatch) -> Task:
        deps: Deps = request.app.state.deps
        current = await load(deps, task_id)
        merged = TaskCreate(
            type=current.type,
            **{
                f: getattr(data, f)
                if getattr(data, f) is not msgspec.UNSET
                else getattr(current, f)
                for f in TaskPatch.__struct_fields__
            },
        )
        body = await _validated(deps, merged)
        check_confirmed(body, current)
        body, point = await looked_at(deps, body, current)
        updated = await store.update_task(deps.pool, current.id, body, point)
        if updated is None:
            raise not_found("task")
        await audit.record(deps.pool, request.user, "task.update", current.id, current, updated)
        return await shown(deps, updated)

    @delete("/{task_id:str}", responses=errors(404))
    async def remove(self, request: CallerRequest, task_id: str) -> None:
        deps: Deps = request.app.state.deps
        current = await load(deps, task_id)
        if not await store.delete_task(deps.pool, current.id):
            raise not_found("task")
        await audit.record(deps.pool, request.user, "task.delete", current.id, current)

    @post("/{task_id:str}/run", status_code=202, responses=errors(404), opt=OPERATOR)
    async def run(self, request: CallerRequest, task_id: str) -> RunStarted:
        deps: Deps = request.app.state.deps
        return RunStarted(job_id=await run_now(deps, await load(deps, task_id), request.user))
