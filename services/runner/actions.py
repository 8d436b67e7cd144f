"""Connector actions answered over NATS request/reply (shared/rpc.py): test a connection,
initialize a store, list its snapshots, browse one, read a file of it, preview a prune,
look at the snapshot a restore task names."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg

from services.runner import plakar_args as pa
from services.runner import process
from services.runner.job import JobFailure, RunnerContext, check_connectors
from services.runner.plakar_cache import security_check_disabled
from services.runner.plakar_output import parse_dir, parse_ls
from services.runner.process import last_line
from services.runner.prune_plan import PlanReader, PlanUnreadable
from services.runner.restore_point import StoreUnreadable, Unresolved, locate
from services.runner.workspace import workspace
from shared import rpc
from shared import subjects as s
from shared.models import (
    ActionResult,
    Connector,
    FileEntry,
    FileList,
    PrunePlan,
    Retention,
    SnapshotInfo,
)
from shared.secrets import redact, secret_values

log = logging.getLogger("plakar_cp.runner")

# Actions one runner carries out at once (each runs plakar); more wait their turn.
CONCURRENT_ACTIONS = 4
# File reads apart: a slow download holds its slot as long as it lasts.
CONCURRENT_READS = 4
# How long a read waits for the api to take a chunk before it stops plakar: the api
# answers once its client has taken the chunk, and says stop when the client leaves, so
# this bounds only a client slower than 512 KiB in 5 min, or an api gone.
PULL_TIMEOUT_S = 300.0


class _Session:
    """One action on one connector: a private workspace and plakar runs in it."""

    def __init__(self, ctx: RunnerContext, connector: Connector, ws: pa.Workspace) -> None:
        self.ctx = ctx
        self.connector = connector
        self.ws = ws
        self.secrets = secret_values(connector.options)

    async def plakar(self, argv: list[str]) -> tuple[int, list[str]]:
        code, lines = await process.capture(argv)
        if code != 0:  # its cache's daemon may be the cause: the next run gets another
            self.ctx.daemons.stop(self.ws.cache_dir)
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


async def _with_session(
    ctx: RunnerContext, connector: Connector, work: Work, keep_cache: bool = False
) -> rpc.Reply:
    """`keep_cache`: read the store through its kept cache (plakar_cache.py), as jobs do;
    a connection test or an initialization starts from nothing."""
    try:
        await check_connectors([connector], ctx.policy)
    except JobFailure as e:
        return rpc.Failed(reason="refused", message=str(e))
    kept = ctx.daemons if keep_cache else None
    async with workspace(ctx.work_dir, _connector_set(connector), kept) as ws:
        session = _Session(ctx, connector, ws)
        if not security_check_disabled(ws.cache_dir):
            await session.plakar(pa.disable_security_check_argv(ctx.plakar, ws))
        return await work(session)


def _result(
    ok: bool, message: str, output: list[str], initialized: bool | None = None
) -> rpc.Result:
    return rpc.Result(
        result=ActionResult(ok=ok, message=message, output=output, initialized=initialized)
    )


def _stores_only(c: Connector, what: str) -> rpc.Failed | None:
    if c.role == "store":
        return None
    return rpc.Failed(reason="not_applicable", message=f"only a store {what}")


async def check_connection(ctx: RunnerContext, c: Connector) -> rpc.Reply:
    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.ping_argv(ctx.plakar, sess.ws, c.role))
        if code != 0:
            return _result(False, process.failure(code, lines), lines)
        if c.role != "store":
            return _result(True, "reachable", lines)
        code, info = await sess.plakar(pa.store_info_argv(ctx.plakar, sess.ws))
        if code == 0:
            return _result(True, "reachable; the store opens", lines, initialized=True)
        if code == 66:
            return _result(True, "reachable; not initialized yet", info, initialized=False)
        return _result(False, process.failure(code, info), info)

    return await _with_session(ctx, c, work)


async def initialize(ctx: RunnerContext, c: Connector) -> rpc.Reply:
    if wrong := _stores_only(c, "can be initialized"):
        return wrong
    encrypted = bool(c.options.get("passphrase"))

    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.create_argv(ctx.plakar, sess.ws, encrypted))
        if code == 0:
            kind = "encrypted" if encrypted else "plaintext"
            return _result(True, f"store initialized ({kind})", lines, initialized=True)
        # plakar never overwrites a store: if one opens there, say so plainly.
        if (await sess.plakar(pa.store_info_argv(ctx.plakar, sess.ws)))[0] == 0:
            message = "the store is initialized already; nothing was changed"
            return _result(False, message, lines, initialized=True)
        return rpc.Failed(reason="conflict", message=f"plakar create failed: {last_line(lines)}")

    return await _with_session(ctx, c, work)


async def list_snapshots(ctx: RunnerContext, c: Connector) -> rpc.Reply:
    if wrong := _stores_only(c, "has snapshots"):
        return wrong

    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.list_snapshots_argv(ctx.plakar, sess.ws))
        if code != 0:
            message = f"cannot list snapshots: {last_line(lines)}"
            return rpc.Failed(reason="conflict", message=message)
        found = [
            SnapshotInfo(
                id=e.id, created_at=_utc(e.created_at), tags=list(e.tags), size=e.size, root=e.root
            )
            for e in parse_ls(lines)
        ]
        return rpc.Snapshots(items=found)

    return await _with_session(ctx, c, work, keep_cache=True)


async def browse(ctx: RunnerContext, c: Connector, snapshot: str, path: str) -> rpc.Reply:
    if wrong := _stores_only(c, "has snapshots"):
        return wrong

    async def work(sess: _Session) -> rpc.Reply:
        code, lines = await sess.plakar(pa.browse_argv(ctx.plakar, sess.ws, snapshot, path))
        if code != 0:
            problem = last_line(lines).removeprefix(f"{ctx.plakar}: ")
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

    return await _with_session(ctx, c, work, keep_cache=True)


async def preview_prune(
    ctx: RunnerContext, c: Connector, labels: list[str], retention: Retention
) -> rpc.Reply:
    """What a prune would keep and delete now: plakar's dry run, which deletes nothing."""
    if wrong := _stores_only(c, "can be pruned"):
        return wrong

    async def work(sess: _Session) -> rpc.Reply:
        argv = pa.prune_plan_argv(ctx.plakar, sess.ws, labels, retention)
        code, lines = await sess.plakar(argv)
        if code != 0:
            problem = last_line(lines).removeprefix(f"{ctx.plakar}: ")
            return rpc.Failed(reason="conflict", message=f"plakar cannot plan the prune: {problem}")
        reader = PlanReader()
        for line in lines:
            reader.feed(line)
        try:
            plan = reader.plan()
        except PlanUnreadable as e:
            return rpc.Failed(reason="failed", message=str(e))
        return rpc.PrunePlanned(plan=PrunePlan(keep=plan.keep, delete=plan.delete))

    return await _with_session(ctx, c, work, keep_cache=True)


async def locate_restore(
    ctx: RunnerContext, c: Connector, snapshot_id: str, path: str | None
) -> rpc.Reply:
    """The snapshot a restore task names and what it holds at its path, as the task is
    saved (restore_point.py)."""
    if wrong := _stores_only(c, "has snapshots"):
        return wrong

    async def work(sess: _Session) -> rpc.Reply:
        try:
            found = await locate(sess.plakar, ctx.plakar, sess.ws, snapshot_id, [], path)
        except Unresolved as e:
            return rpc.Unresolved(field=e.field, message=str(e))
        except StoreUnreadable as e:
            return rpc.Failed(reason="conflict", message=str(e))
        return rpc.RestoreLocated(snapshot_id=found.snapshot_id, point=found.point)

    return await _with_session(ctx, c, work, keep_cache=True)


# Sends a chunk to the api; whether it wants the next one.
Send = Callable[[rpc.Chunk], Awaitable[bool]]


async def read_file(
    ctx: RunnerContext, c: Connector, snapshot: str, path: str, send: Send
) -> rpc.Reply:
    """Stream a file of a snapshot in chunks. On failure plakar writes its error line on
    stdout too: the last (short) chunk is sent only once plakar has exited 0."""
    if wrong := _stores_only(c, "has snapshots"):
        return wrong

    async def work(sess: _Session) -> rpc.Reply:
        size = 0
        async with process.output(pa.cat_argv(ctx.plakar, sess.ws, snapshot, path)) as out:
            while len(data := await out.read(rpc.CHUNK_BYTES)) == rpc.CHUNK_BYTES:
                size += len(data)
                if not await send(rpc.Chunk(data=data)):
                    return rpc.FileEnd(size=size)  # the api stopped reading
            code, errors = await out.finish()
        if code != 0:
            return _unreadable(path, [redact(e, sess.secrets) for e in errors], code)
        if data and not await send(rpc.Chunk(data=data)):
            return rpc.FileEnd(size=size)
        return rpc.FileEnd(size=size + len(data))

    return await _with_session(ctx, c, work, keep_cache=True)


def _unreadable(path: str, errors: list[str], code: int) -> rpc.Failed:
    # plakar says `error: cat: PATH: no such file` or `…: not a regular file`.
    problem = last_line(errors).removeprefix("error: cat: ") or f"plakar exited with code {code}"
    if problem.endswith("not a regular file"):
        return rpc.Failed(reason="not_applicable", message=f"{path} is not a regular file")
    reason: rpc.FailReason = "not_found" if "no such file" in problem else "failed"
    return rpc.Failed(reason=reason, message=f"cannot read {path}: {problem}")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Actions:
    """Answers the connector actions of the api, several at once. Each request carries
    its connector (the runner holds no database)."""

    def __init__(self, ctx: RunnerContext) -> None:
        self.ctx = ctx
        self._slots = asyncio.Semaphore(CONCURRENT_ACTIONS)
        self._reads = asyncio.Semaphore(CONCURRENT_READS)
        self._nc: Client | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def serve(self, nc: Client, group: str) -> None:
        """Answer the actions on the connectors of `group`, shared with its other runners."""
        self._nc = nc
        await nc.subscribe(s.rpc_connector(group), queue=s.RUNNERS_QUEUE, cb=self._received)

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
            slots = self._reads if isinstance(request, rpc.ReadFile) else self._slots
            async with slots:
                reply = await self.reply(request, self._sender(msg.reply))
        try:
            await msg.respond(rpc.encode(reply))
        except Exception as e:  # the api gave up waiting, or NATS is away
            log.warning("could not answer a connector action: %s", e)

    def _sender(self, reply_to: str) -> Send:
        async def send(chunk: rpc.Chunk) -> bool:
            assert self._nc is not None
            try:
                answer = await self._nc.request(reply_to, rpc.encode(chunk), PULL_TIMEOUT_S)
                return rpc.decode_pull(answer.data).more
            except Exception as e:  # the api gave up (its client left), or NATS is away
                log.info("a file read stopped: %s", e)
                return False

        return send

    async def reply(self, request: rpc.Request, send: Send) -> rpc.Reply:
        """The answer to a request; `send` streams a file's chunks to the asker."""
        if isinstance(request, rpc.Ping):
            return rpc.Pong(runner=self.ctx.runner_id)
        try:
            connector = request.connector
            if isinstance(request, rpc.CheckConnection):
                return await check_connection(self.ctx, connector)
            if isinstance(request, rpc.InitializeStore):
                return await initialize(self.ctx, connector)
            if isinstance(request, rpc.ListSnapshots):
                return await list_snapshots(self.ctx, connector)
            if isinstance(request, rpc.PreviewPrune):
                return await preview_prune(self.ctx, connector, request.labels, request.retention)
            if isinstance(request, rpc.LocateRestore):
                snapshot, path = request.snapshot_id, request.path
                return await locate_restore(self.ctx, connector, snapshot, path)
            if isinstance(request, rpc.ReadFile):
                snapshot, path = request.snapshot_id, request.path
                return await read_file(self.ctx, connector, snapshot, path, send)
            return await browse(self.ctx, connector, request.snapshot_id, request.path)
        except Exception as e:
            log.exception("connector action %s failed", type(request).__name__)
            return rpc.Failed(reason="failed", message=f"the runner failed: {e}")
