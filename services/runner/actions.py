"""Connector actions answered over NATS request/reply: test, initialize, list snapshots."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import msgspec
from faststream.nats import NatsBroker, NatsMessage

from services.runner import plakar_args as pa
from services.runner import process
from services.runner.job import JobFailure, LoadConnectors, RunnerContext, check_connectors
from services.runner.plakar_output import parse_dir, parse_ls
from services.runner.workspace import workspace
from shared import subjects as s
from shared.models import (
    ActionError,
    ActionResult,
    Connector,
    ConnectorAction,
    FileEntry,
    FileList,
    SnapshotInfo,
    SnapshotList,
)
from shared.secrets import redact, secret_values

log = logging.getLogger("plakar_cp.runner")

Handler = Callable[[Connector, ConnectorAction], Awaitable[msgspec.Struct]]


class _Session:
    """One action on one connector: a private workspace and plakar runs in it."""

    def __init__(self, ctx: RunnerContext, connector: Connector, ws: pa.Workspace) -> None:
        self.ctx = ctx
        self.connector = connector
        self.ws = ws
        self.secrets = secret_values(connector.options)

    async def plakar(self, argv: list[str]) -> tuple[int, list[str]]:
        code, lines = await process.capture(argv)
        return code, [redact(line, self.secrets) for line in lines]


def _connector_set(c: Connector) -> pa.ConnectorSet:
    # A workspace always names a store; other roles are added under their own name.
    if c.role == "store":
        return pa.ConnectorSet(store=c)
    placeholder = Connector(
        id="", name="", role="store", location="/nonexistent", created_at=c.created_at
    )
    if c.role == "source":
        return pa.ConnectorSet(store=placeholder, source=c)
    return pa.ConnectorSet(store=placeholder, destination=c)


async def _with_session(
    ctx: RunnerContext, connector: Connector, work: Callable[[_Session], Awaitable[msgspec.Struct]]
) -> msgspec.Struct:
    try:
        await check_connectors([connector], ctx.policy)
    except JobFailure as e:
        return ActionError(error=str(e), status=422)
    with workspace(ctx.work_dir, _connector_set(connector)) as ws:
        session = _Session(ctx, connector, ws)
        await session.plakar(pa.disable_security_check_argv(ctx.plakar, ws))
        return await work(session)


def _tail(lines: list[str]) -> str:
    return lines[-1] if lines else ""


async def check_connection(ctx: RunnerContext, c: Connector, _: ConnectorAction) -> msgspec.Struct:
    async def work(sess: _Session) -> msgspec.Struct:
        code, lines = await sess.plakar(pa.ping_argv(ctx.plakar, sess.ws, c.role))
        if code != 0:
            return ActionResult(ok=False, message=_tail(lines) or f"exit code {code}", output=lines)
        if c.role != "store":
            return ActionResult(ok=True, message="reachable", output=lines)
        code, info = await sess.plakar(pa.store_info_argv(ctx.plakar, sess.ws))
        if code == 0:
            return ActionResult(ok=True, message="reachable; the store opens", output=lines)
        if code == 66:
            return ActionResult(ok=True, message="reachable; not initialized yet", output=info)
        return ActionResult(ok=False, message=_tail(info) or f"exit code {code}", output=info)

    return await _with_session(ctx, c, work)


async def initialize(ctx: RunnerContext, c: Connector, _: ConnectorAction) -> msgspec.Struct:
    if c.role != "store":
        return ActionError(error="only a store can be initialized", status=409)
    encrypted = bool(c.options.get("passphrase"))

    async def work(sess: _Session) -> msgspec.Struct:
        code, lines = await sess.plakar(pa.create_argv(ctx.plakar, sess.ws, encrypted))
        if code != 0:
            return ActionError(error=f"plakar create failed: {_tail(lines)}", status=409)
        kind = "encrypted" if encrypted else "plaintext"
        return ActionResult(ok=True, message=f"store initialized ({kind})", output=lines)

    return await _with_session(ctx, c, work)


async def list_snapshots(ctx: RunnerContext, c: Connector, _: ConnectorAction) -> msgspec.Struct:
    if c.role != "store":
        return ActionError(error="only a store has snapshots", status=409)

    async def work(sess: _Session) -> msgspec.Struct:
        code, lines = await sess.plakar(pa.list_snapshots_argv(ctx.plakar, sess.ws))
        if code != 0:
            return ActionError(error=f"cannot list snapshots: {_tail(lines)}", status=409)
        found = [
            SnapshotInfo(
                id=e.id,
                created_at=_utc(e.created_at),
                tags=list(e.tags),
                size=e.size,
                root=e.root,
            )
            for e in parse_ls(lines)
        ]
        return SnapshotList(items=found)

    return await _with_session(ctx, c, work)


async def browse(ctx: RunnerContext, c: Connector, req: ConnectorAction) -> msgspec.Struct:
    if c.role != "store":
        return ActionError(error="only a store has snapshots", status=409)
    snapshot, path = req.snapshot_id or "", req.path or "/"

    async def work(sess: _Session) -> msgspec.Struct:
        code, lines = await sess.plakar(pa.browse_argv(ctx.plakar, sess.ws, snapshot, path))
        if code != 0:
            problem = _tail(lines).removeprefix(f"{ctx.plakar}: ")
            return ActionError(error=f"cannot list {path} of {snapshot}: {problem}", status=404)
        entries = [
            FileEntry(
                name=e.name,
                type=e.kind,
                mode=e.mode,
                size=e.size,
                modified_at=_utc(e.modified_at),
                target=e.target,
            )
            for e in parse_dir(lines)
        ]
        return FileList(snapshot_id=snapshot, path=path, entries=entries)

    return await _with_session(ctx, c, work)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


ACTIONS = {
    "test": check_connection,
    "initialize": initialize,
    "snapshots": list_snapshots,
    "files": browse,
}


def register_actions(broker: NatsBroker, ctx: RunnerContext, load: LoadConnectors) -> None:
    for name, action in ACTIONS.items():
        _register(broker, ctx, load, name, action)

    @broker.subscriber(s.connector_rpc("ping"), queue=s.RUNNERS_QUEUE)
    async def ping() -> bytes:
        """Answers that a runner serves connector actions (the api's health asks)."""
        return ctx.runner_id.encode()


def _register(
    broker: NatsBroker,
    ctx: RunnerContext,
    load: LoadConnectors,
    name: str,
    action: Callable[[RunnerContext, Connector, ConnectorAction], Awaitable[msgspec.Struct]],
) -> None:
    @broker.subscriber(s.connector_rpc(name), queue=s.RUNNERS_QUEUE)
    async def handle(msg: NatsMessage) -> bytes:
        try:
            req = msgspec.json.decode(msg.body, type=ConnectorAction)
        except msgspec.DecodeError as e:
            return msgspec.json.encode(ActionError(error=f"bad request: {e}", status=400))
        try:
            connector = (await load([req.connector_id])).get(req.connector_id)
            if connector is None:
                return msgspec.json.encode(ActionError(error="connector not found", status=404))
            return msgspec.json.encode(await action(ctx, connector, req))
        except Exception as e:
            log.exception("connector action %s failed", name)
            return msgspec.json.encode(ActionError(error=f"{name} failed: {e}", status=502))
