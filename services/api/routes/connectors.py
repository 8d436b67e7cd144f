"""Connectors: CRUD, and actions carried out by a runner."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import Parameter

from services.api import schedules_store, store
from services.api.deps import Deps, parse_id
from services.api.errors import conflict, not_found
from services.api.openapi import errors, stated
from services.api.rpc import ask
from services.api.validation import (
    TASK_TYPES,
    Invalid,
    check_name,
    check_snapshot_id,
    check_snapshot_path,
)
from shared import connector_check, lifecycle, locations, rpc
from shared.config_db import get_connector
from shared.locations import Policy, Role, is_secret
from shared.models import (
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
    JobState,
    OptionInfo,
    Rules,
    Schedule,
    SlotInfo,
    SnapshotInfo,
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
            JobState(status=s, label=lifecycle.LABELS[s], terminal=s in lifecycle.TERMINAL)
            for s in lifecycle.STATUSES
        ],
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


def masked(c: Connector) -> Connector:
    return msgspec.structs.replace(c, options=mask_options(c.options))


async def load(deps: Deps, connector_id: str) -> Connector:
    found = await get_connector(deps.pool, parse_id(connector_id, "connector"))
    if found is None:
        raise not_found("connector")
    return found


async def _check(deps: Deps, role: Role, location: str, options: dict[str, str]) -> None:
    if found := await connector_check.problem(role, location, options, deps.settings.policy()):
        raise Invalid(*found)


def _duplicate(body_role: str) -> Exception:
    return conflict(f"a {body_role} connector with this name exists", "name")


class ConnectorController(Controller):
    path = "/api/v1/connectors"
    tags = ["connectors"]

    @post("/", responses=errors(409, 422))
    async def create(self, state: State, data: ConnectorCreate) -> Connector:
        deps: Deps = state.deps
        location = data.location
        await _check(deps, data.role, location, data.options)
        body = ConnectorCreate(
            name=check_name(data.name), role=data.role, location=location, options=data.options
        )
        await store.room_for(deps.pool, "connectors", deps.settings.max_connectors)
        try:
            return masked(await store.insert_connector(deps.pool, body))
        except store.Duplicate:
            raise _duplicate(body.role) from None

    @get("/", responses=errors())
    async def list_all(
        self,
        state: State,
        role: Annotated[
            Literal["source", "store", "destination"] | None, Parameter(query="role")
        ] = None,
    ) -> list[Connector]:
        return [masked(c) for c in await store.list_connectors(state.deps.pool, role)]

    @get("/{connector_id:str}", responses=errors(404))
    async def get_one(self, state: State, connector_id: str) -> Connector:
        return masked(await load(state.deps, connector_id))

    @patch("/{connector_id:str}", responses=errors(404, 409, 422))
    async def update(self, state: State, connector_id: str, data: ConnectorPatch) -> Connector:
        deps: Deps = state.deps
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
        try:
            updated = await store.update_connector(deps.pool, current.id, name, location, options)
        except store.Duplicate:
            raise _duplicate(current.role) from None
        if updated is None:
            raise not_found("connector")
        return masked(updated)

    @delete("/{connector_id:str}", responses=errors(404, 409))
    async def remove(self, state: State, connector_id: str) -> None:
        deps: Deps = state.deps
        try:
            removed = await store.delete_connector(deps.pool, parse_id(connector_id, "connector"))
        except store.InUse:
            raise conflict("a task uses this connector; delete or change the task first") from None
        if not removed:
            raise not_found("connector")

    @post("/{connector_id:str}/test", status_code=200, responses=RUNNER)
    async def test(self, state: State, connector_id: str) -> ActionResult:
        c = await load(state.deps, connector_id)
        return (await ask(state.deps, rpc.CheckConnection(connector_id=c.id), rpc.Result)).result

    @post("/{connector_id:str}/initialize", status_code=200, responses=RUNNER)
    async def initialize(self, state: State, connector_id: str) -> ActionResult:
        c = await load(state.deps, connector_id)
        if c.role != "store":
            raise conflict("only a store can be initialized", "role")
        request = rpc.InitializeStore(connector_id=c.id)
        return (await ask(state.deps, request, rpc.Result)).result

    @get("/{connector_id:str}/snapshots", responses=RUNNER)
    async def snapshots(self, state: State, connector_id: str) -> list[SnapshotInfo]:
        c = await load(state.deps, connector_id)
        if c.role != "store":
            raise conflict("only a store has snapshots", "role")
        request = rpc.ListSnapshots(connector_id=c.id)
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
            connector_id=c.id,
            snapshot_id=check_snapshot_id(snapshot_id),
            path=check_snapshot_path(path),
        )
        return (await ask(state.deps, request, rpc.Files)).files

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
        upcoming = await schedules_store.upcoming_for_connector(state.deps.pool, c.id)
        return ConnectorJobs(past=past, upcoming=upcoming)

    @get("/{connector_id:str}/schedules", responses=errors(404))
    async def schedules(self, state: State, connector_id: str) -> list[Schedule]:
        c = await load(state.deps, connector_id)
        return await schedules_store.list_all(state.deps.pool, None, c.id)
