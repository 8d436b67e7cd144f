"""Connectors: CRUD, and actions carried out by a runner."""

from __future__ import annotations

from contextlib import aclosing
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.response import Stream

from services.api import audit, files, roles, schedules_store, store
from services.api.auth import CallerRequest
from services.api.deps import Deps, parse_id
from services.api.errors import conflict, not_found
from services.api.freshness import judged_now
from services.api.openapi import errors, stated
from services.api.roles import OPERATOR
from services.api.rpc import ask, read_file
from services.api.runner_groups import with_waiting
from services.api.validation import (
    TASK_TYPES,
    Invalid,
    check_freshness,
    check_group,
    check_name,
    check_snapshot_id,
    check_snapshot_path,
)
from shared import connector_check, groups, lifecycle, locations, retention, rpc
from shared.config_db import get_connector, get_connectors
from shared.groups import group_of
from shared.locations import Policy, Role, is_secret
from shared.models import (
    NOTICE_MEANINGS,
    SNAPSHOT_PATH,
    SNAPSHOT_REF,
    ActionResult,
    Connector,
    ConnectorCreate,
    ConnectorJobs,
    ConnectorKind,
    ConnectorPatch,
    ConnectorRules,
    FileList,
    FilePreview,
    JobState,
    NoticeKindInfo,
    OptionInfo,
    RetentionRule,
    RetentionRules,
    RoleInfo,
    Rules,
    RunnerGroupRules,
    Schedule,
    SlotInfo,
    SnapshotInfo,
    Task,
    TaskKind,
)
from shared.secrets import MASK, mask_options


@get("/api/v1/rules", tags=["rules"], responses=errors())
async def rules(state: State) -> Rules:
    """What the api accepts and what a job goes through: the connector kinds, the options
    each role takes with each, the limits; the task types and the connectors each takes;
    the states of a job and their labels."""
    return Rules(
        connectors=_connector_rules(state.deps.settings.policy()),
        tasks=[
            TaskKind(
                type=kind,
                description=description,
                slots=[SlotInfo(field=s.field, role=s.role, label=s.label) for s in slots],
            )
            for kind, (description, slots) in TASK_TYPES.items()
        ],
        job_states=[
            JobState(
                status=s,
                label=lifecycle.LABELS[s],
                terminal=s in lifecycle.TERMINAL,
                retryable=s in lifecycle.RETRYABLE,
            )
            for s in lifecycle.STATUSES
        ],
        runner_groups=RunnerGroupRules(
            pattern=groups.GROUP_PATTERN,
            description=groups.GROUP_RULE,
            default=groups.DEFAULT_GROUP,
        ),
        notifications=[NoticeKindInfo(kind=k, meaning=m) for k, m in NOTICE_MEANINGS.items()],
        roles=[RoleInfo(role=r, may=m) for r, m in roles.MEANINGS.items()],
        retention=RetentionRules(
            counts=[RetentionRule(key=k, help=text) for k, (_, text) in retention.RULES.items()],
            max=retention.MAX_COUNT,
        ),
    )


def _connector_rules(policy: Policy) -> ConnectorRules:
    return ConnectorRules(
        kinds=[
            ConnectorKind(
                kind=rule.kind,
                prefixes=list(locations.PREFIXES[rule.kind]),
                example=rule.example,
                options={
                    role: [
                        OptionInfo(key=o.key, secret=o.secret, help=o.help, pattern=o.pattern)
                        for o in options
                    ]
                    for role, options in rule.options.items()
                },
            )
            for rule in locations.KINDS.values()
        ],
        non_secret=sorted(locations.NON_SECRET),
        allowed_paths=list(policy.allowed),
        max_location=locations.MAX_LOCATION,
        max_option_value=locations.MAX_OPTION_VALUE,
        max_options=locations.MAX_OPTIONS,
    )


# The routes that ask a runner.
RUNNER = errors(404, 409, 422, 502, 504)


async def _read_request(deps: Deps, connector_id: str, snapshot_id: str, path: str) -> rpc.ReadFile:
    c = await load(deps, connector_id)
    if c.role != "store":
        raise conflict("only a store has snapshots", "role")
    return rpc.ReadFile(
        connector=c,
        snapshot_id=check_snapshot_id(snapshot_id),
        path=check_snapshot_path(path),
    )


def masked(c: Connector) -> Connector:
    return msgspec.structs.replace(c, options=mask_options(c.options))


async def shown(deps: Deps, connectors: list[Connector]) -> list[Connector]:
    """As answered: secrets masked, what is known of each store's initialization, and
    their freshness now."""
    stores = [c.id for c in connectors if c.role == "store"]
    known = await store.initialized_stores(deps.pool, stores) if stores else {}
    return await judged_now(
        deps.pool,
        [msgspec.structs.replace(masked(c), initialized=known.get(c.id)) for c in connectors],
    )


# Tasks a refusal to delete a connector names, at most.
NAMED_TASKS = 3


async def _in_use(deps: Deps, connector_id: str) -> str:
    """Why the connector cannot be deleted: the tasks that use it, by name or route."""
    tasks = await store.tasks_using(deps.pool, connector_id)
    used = await get_connectors(deps.pool, [i for t in tasks for i in t.connector_ids()])
    names = {i: c.name for i, c in used.items()}
    if not tasks:  # deleted since
        return "a task uses this connector; delete or change the task first"
    titles = [f'"{_title(t, names)}"' for t in tasks[:NAMED_TASKS]]
    if len(tasks) > NAMED_TASKS:
        titles.append(f"{len(tasks) - NAMED_TASKS} more")
    if len(titles) == 1:
        return f"the task {titles[0]} uses this connector; delete or change it first"
    listed = f"{', '.join(titles[:-1])} and {titles[-1]}"
    return f"the tasks {listed} use this connector; delete or change them first"


def _title(task: Task, names: dict[str, str]) -> str:
    """A task as the UI names it: its name, or its type and connectors ("Backup web → nas")."""
    if task.name:
        return task.name
    _, slots = TASK_TYPES[task.type]
    route = " → ".join(names.get(getattr(task, s.field) or "", "?") for s in slots)
    return f"{task.type.capitalize()} {route}"


async def load(deps: Deps, connector_id: str) -> Connector:
    found = await get_connector(deps.pool, parse_id(connector_id, "connector"))
    if found is None:
        raise not_found("connector")
    return found


async def _check(deps: Deps, role: Role, location: str, options: dict[str, str]) -> None:
    if found := await connector_check.problem(role, location, options, deps.settings.policy()):
        raise Invalid(*found)


async def _learned(deps: Deps, c: Connector, result: ActionResult) -> None:
    """Keep what a runner found of a store, for the UI to offer Initialize only when due."""
    if c.role == "store" and result.initialized is not None:
        await store.record_initialized(deps.pool, c.id, result.initialized)


async def _group_change(deps: Deps, connector_id: str, group: str | None) -> str | None:
    """A connector moves to another group only if the tasks using it run there (a
    connector of no group goes with any)."""
    if group is None:
        return None
    for task in await store.tasks_using(deps.pool, connector_id):
        if task.runner_group != group:
            used = await get_connectors(deps.pool, task.connector_ids())
            title = _title(task, {i: c.name for i, c in used.items()})
            raise Invalid(
                "runner_group",
                f'the task "{title}" runs on runner group {group_of(task.runner_group)}; '
                f"change its group first",
            )
    return group


def _duplicate(body_role: str) -> Exception:
    return conflict(f"a {body_role} connector with this name exists", "name")


class ConnectorController(Controller):
    path = "/api/v1/connectors"
    tags = ["connectors"]

    @post("/", responses=errors(409, 422))
    async def create(self, request: CallerRequest, data: ConnectorCreate) -> Connector:
        deps: Deps = request.app.state.deps
        location = data.location
        await _check(deps, data.role, location, data.options)
        body = ConnectorCreate(
            name=check_name(data.name),
            role=data.role,
            location=location,
            options=data.options,
            runner_group=check_group(data.runner_group),
            freshness=check_freshness(data.freshness),
        )
        await store.room_for(deps.pool, "connectors", deps.settings.max_connectors)
        try:
            [created] = await shown(deps, [await store.insert_connector(deps.pool, body)])
        except store.Duplicate:
            raise _duplicate(body.role) from None
        await audit.record(deps.pool, request.user, "connector.create", created.id, after=created)
        return created

    @get("/", responses=errors())
    async def list_all(
        self,
        state: State,
        role: Annotated[
            Literal["source", "store", "destination"] | None, Parameter(query="role")
        ] = None,
    ) -> list[Connector]:
        return await shown(state.deps, await store.list_connectors(state.deps.pool, role))

    @get("/{connector_id:str}", responses=errors(404))
    async def get_one(self, state: State, connector_id: str) -> Connector:
        [found] = await shown(state.deps, [await load(state.deps, connector_id)])
        return found

    @patch("/{connector_id:str}", responses=errors(404, 409, 422))
    async def update(
        self, request: CallerRequest, connector_id: str, data: ConnectorPatch
    ) -> Connector:
        deps: Deps = request.app.state.deps
        current = await load(deps, connector_id)
        options = dict(current.options)
        for key, value in (data.options or {}).items():
            if value == "":
                options.pop(key, None)
            elif not (is_secret(key) and value == MASK):  # a masked secret is kept
                options[key] = value
        name = check_name(data.name) if data.name is not None else current.name
        location = data.location if data.location is not None else current.location
        await _check(deps, current.role, location, options)
        group = current.runner_group
        if data.runner_group is not msgspec.UNSET:
            group = await _group_change(deps, current.id, check_group(data.runner_group))
        freshness = current.freshness
        if data.freshness is not msgspec.UNSET:
            freshness = check_freshness(data.freshness)
        try:
            updated = await store.update_connector(
                deps.pool, current.id, name, location, options, group, freshness
            )
        except store.Duplicate:
            raise _duplicate(current.role) from None
        if updated is None:
            raise not_found("connector")
        [before, found] = await shown(deps, [current, updated])
        await audit.record(deps.pool, request.user, "connector.update", current.id, before, found)
        return found

    @delete("/{connector_id:str}", responses=errors(404, 409))
    async def remove(self, request: CallerRequest, connector_id: str) -> None:
        deps: Deps = request.app.state.deps
        cid = parse_id(connector_id, "connector")
        [before] = await shown(deps, [await load(deps, cid)])
        try:
            removed = await store.delete_connector(deps.pool, cid)
        except store.InUse:
            raise conflict(await _in_use(deps, cid)) from None
        if not removed:
            raise not_found("connector")
        await audit.record(deps.pool, request.user, "connector.delete", cid, before)

    @post("/{connector_id:str}/test", status_code=200, responses=RUNNER, opt=OPERATOR)
    async def test(self, state: State, connector_id: str) -> ActionResult:
        c = await load(state.deps, connector_id)
        result = (await ask(state.deps, rpc.CheckConnection(connector=c), rpc.Result)).result
        await _learned(state.deps, c, result)
        return result

    @post("/{connector_id:str}/initialize", status_code=200, responses=RUNNER)
    async def initialize(self, request: CallerRequest, connector_id: str) -> ActionResult:
        deps: Deps = request.app.state.deps
        c = await load(deps, connector_id)
        if c.role != "store":
            raise conflict("only a store can be initialized", "role")
        result = (await ask(deps, rpc.InitializeStore(connector=c), rpc.Result)).result
        await _learned(deps, c, result)
        outcome = {"ok": result.ok, "message": result.message}
        await audit.record(deps.pool, request.user, "connector.initialize", c.id, after=outcome)
        if not result.ok:  # plakar found a store there already, and left it alone
            raise conflict(result.message)
        return result

    @get("/{connector_id:str}/snapshots", responses=RUNNER)
    async def snapshots(self, state: State, connector_id: str) -> list[SnapshotInfo]:
        c = await load(state.deps, connector_id)
        if c.role != "store":
            raise conflict("only a store has snapshots", "role")
        request = rpc.ListSnapshots(connector=c)
        return (await ask(state.deps, request, rpc.Snapshots)).items

    @get("/{connector_id:str}/snapshots/{snapshot_id:str}/files", responses=RUNNER)
    async def files(
        self,
        state: State,
        connector_id: str,
        snapshot_id: Annotated[str, stated(pattern=SNAPSHOT_REF)],
        path: Annotated[str, stated(pattern=SNAPSHOT_PATH)] = "/",
    ) -> FileList:
        c = await load(state.deps, connector_id)
        if c.role != "store":
            raise conflict("only a store has snapshots", "role")
        request = rpc.BrowseSnapshot(
            connector=c,
            snapshot_id=check_snapshot_id(snapshot_id),
            path=check_snapshot_path(path),
        )
        return (await ask(state.deps, request, rpc.Files)).files

    @get("/{connector_id:str}/snapshots/{snapshot_id:str}/preview", responses=RUNNER)
    async def preview(
        self,
        state: State,
        connector_id: str,
        snapshot_id: Annotated[str, stated(pattern=SNAPSHOT_REF)],
        path: Annotated[str, stated(pattern=SNAPSHOT_PATH)],
    ) -> FilePreview:
        """The start of a file (at most 1 MiB), as text when it is text."""
        request = await _read_request(state.deps, connector_id, snapshot_id, path)
        chunks = await read_file(state.deps, request)
        async with aclosing(chunks):
            data, truncated = await files.head(chunks, files.PREVIEW_BYTES)
        return FilePreview(
            snapshot_id=request.snapshot_id,
            path=request.path,
            limit=files.PREVIEW_BYTES,
            size=len(data),
            truncated=truncated,
            text=files.as_text(data, complete=not truncated),
        )

    @get(
        "/{connector_id:str}/snapshots/{snapshot_id:str}/download",
        media_type="application/octet-stream",
        responses=RUNNER,
    )
    async def download(
        self,
        state: State,
        connector_id: str,
        snapshot_id: Annotated[str, stated(pattern=SNAPSHOT_REF)],
        path: Annotated[str, stated(pattern=SNAPSHOT_PATH)],
    ) -> Stream:
        """The file's bytes, streamed from the runner (any size: the api holds one
        chunk of 512 KiB at a time). A failure after the first bytes breaks the transfer
        off, so an incomplete file never looks complete."""
        request = await _read_request(state.deps, connector_id, snapshot_id, path)
        chunks = await read_file(state.deps, request)
        return Stream(
            chunks,
            media_type="application/octet-stream",
            headers={"Content-Disposition": files.attachment(request.path)},
        )

    @get("/{connector_id:str}/jobs", responses=errors(404))
    async def jobs(self, state: State, connector_id: str) -> ConnectorJobs:
        """The newest jobs involving the connector, and the runs coming in 30 days."""
        c = await load(state.deps, connector_id)
        past, _ = await store.list_jobs(
            state.deps.pool,
            status=None,
            task_id=None,
            connector_id=c.id,
            limit=schedules_store.PAST_JOBS,
            after=None,
        )
        upcoming, until = await schedules_store.upcoming_for_connector(state.deps.pool, c.id)
        past = await with_waiting(state.deps, past)
        return ConnectorJobs(past=past, upcoming=upcoming, upcoming_until=until)

    @get("/{connector_id:str}/schedules", responses=errors(404))
    async def schedules(self, state: State, connector_id: str) -> list[Schedule]:
        c = await load(state.deps, connector_id)
        return await schedules_store.list_all(state.deps.pool, None, c.id)
