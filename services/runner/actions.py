"""Connector actions answered over NATS request/reply (shared/rpc.py): test a connection,
initialize a store, list its snapshots, browse one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg

from services.runner import plakar_args as pa
from services.runner import process
from services.runner.job import JobFailure, LoadConnectors, RunnerContext, check_connectors
from services.runner.plakar_output import parse_dir, parse_ls
from services.runner.workspace import workspace
from shared import rpc
from shared import subjects as s
from shared.models import ActionResult, Connector, FileEntry, FileList, SnapshotInfo
from shared.secrets import redact, secret_values

log = logging.getLogger("plakar_cp.runner")

# Actions one runner carries out at once (each runs plakar); more wait their turn.
CONCURRENT_ACTIONS = 4


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


Work = Callable[[_Session], Awaitable[rpc.Reply]]


async def _with_session(ctx: RunnerContext, connector: Connector, work: Work) -> rpc.Reply:
    try:
        await check_connectors([connector], ctx.policy)
    except JobFailure as e:
        return rpc.Failed(reason="refused", message=str(e))
    with workspace(ctx.work_dir, _connector_set(connector)) as ws:
        session = _Session(ctx, connector, ws)
        await session.plakar(pa.disable_security_check_argv(ctx.plakar, ws))
        return await work(session)


def _tail(lines: list[str]) -> str:
    return lines[-1] if lines else ""


def _result(ok: bool, message: str, output: list[str]) -> rpc.Result:
    return rpc.Result(result=ActionResult(ok=ok, message=message, output=output))


def _stores_only(c: Connector, what: str) -> rpc.Failed | None:
    if c.role == "store":
        return None
    return rpc.Failed(reason="not_applicable", message=f"only a store {what}")


async def check_connection(ctx: RunnerContext, c: Connector) -> rpc.Reply:
    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.ping_argv(ctx.plakar, sess.ws, c.role))
        if code != 0:
            return _result(False, _tail(lines) or f"exit code {code}", lines)
        if c.role != "store":
            return _result(True, "reachable", lines)
        code, info = await sess.plakar(pa.store_info_argv(ctx.plakar, sess.ws))
        if code == 0:
            return _result(True, "reachable; the store opens", lines)
        if code == 66:
            return _result(True, "reachable; not initialized yet", info)
        return _result(False, _tail(info) or f"exit code {code}", info)

    return await _with_session(ctx, c, work)


async def initialize(ctx: RunnerContext, c: Connector) -> rpc.Reply:
    if wrong := _stores_only(c, "can be initialized"):
        return wrong
    encrypted = bool(c.options.get("passphrase"))

    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.create_argv(ctx.plakar, sess.ws, encrypted))
        if code != 0:
            return rpc.Failed(reason="conflict", message=f"plakar create failed: {_tail(lines)}")
        kind = "encrypted" if encrypted else "plaintext"
        return _result(True, f"store initialized ({kind})", lines)

    return await _with_session(ctx, c, work)


async def list_snapshots(ctx: RunnerContext, c: Connector) -> rpc.Reply:
    if wrong := _stores_only(c, "has snapshots"):
        return wrong

    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.list_snapshots_argv(ctx.plakar, sess.ws))
        if code != 0:
            return rpc.Failed(reason="conflict", message=f"cannot list snapshots: {_tail(lines)}")
        found = [
            SnapshotInfo(
                id=e.id, created_at=_utc(e.created_at), tags=list(e.tags), size=e.size, root=e.root
            )
            for e in parse_ls(lines)
        ]
        return rpc.Snapshots(items=found)

    return await _with_session(ctx, c, work)


async def browse(ctx: RunnerContext, c: Connector, snapshot: str, path: str) -> rpc.Reply:
    if wrong := _stores_only(c, "has snapshots"):
        return wrong

    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.browse_argv(ctx.plakar, sess.ws, snapshot, path))
        if code != 0:
            problem = _tail(lines).removeprefix(f"{ctx.plakar}: ")
            message = f"cannot list {path} of {snapshot}: {problem}"
            return rpc.Failed(reason="not_found", message=message)
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
        return rpc.Files(files=FileList(snapshot_id=snapshot, path=path, entries=entries))

    return await _with_session(ctx, c, work)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Actions:
    """Answers the connector actions of the api, several at once."""

    def __init__(self, ctx: RunnerContext, load: LoadConnectors) -> None:
        self.ctx = ctx
        self.load = load
        self._slots = asyncio.Semaphore(CONCURRENT_ACTIONS)
        self._running: set[asyncio.Task[None]] = set()

    async def serve(self, nc: Client) -> None:
        await nc.subscribe(s.RPC_CONNECTOR, queue=s.RUNNERS_QUEUE, cb=self._received)

    async def _received(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _answer(self, msg: Msg) -> None:
        try:
            request = rpc.decode_request(msg.data)
        except Exception as e:
            reply: rpc.Reply = rpc.Failed(reason="failed", message=f"not a request: {e}")
        else:
            async with self._slots:
                reply = await self.reply(request)
        try:
            await msg.respond(rpc.encode(reply))
        except Exception as e:  # the api gave up waiting, or NATS is away
            log.warning("could not answer a connector action: %s", e)

    async def reply(self, request: rpc.Request) -> rpc.Reply:
        if isinstance(request, rpc.Ping):
            return rpc.Pong(runner=self.ctx.runner_id)
        try:
            connector = (await self.load([request.connector_id])).get(request.connector_id)
            if connector is None:
                return rpc.Failed(reason="not_found", message="connector not found")
            if isinstance(request, rpc.CheckConnection):
                return await check_connection(self.ctx, connector)
            if isinstance(request, rpc.InitializeStore):
                return await initialize(self.ctx, connector)
            if isinstance(request, rpc.ListSnapshots):
                return await list_snapshots(self.ctx, connector)
            return await browse(self.ctx, connector, request.snapshot_id, request.path)
        except Exception as e:
            log.exception("connector action %s failed", type(request).__name__)
            return rpc.Failed(reason="failed", message=f"the runner failed: {e}")
