"""The api hands a runner the connectors of a job it holds (shared/rpc.py JobConnectors):
runners hold no database credential. Every api process answers, as one queue group.

What it answers is decided by services/api/grant.py from the job's message in the jobs
stream and the job's claim, both read from the streams' leaders (a claim a runner has
just written is what the api sees). A request that is not one, or names a job the asker
does not hold, gets `Failed`; the api logs it and carries on.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.api.grant import granted
from shared import claims, rpc
from shared import subjects as s
from shared.config_db import get_connectors
from shared.db import Pool
from shared.events import JobDue, decode_job_due

log = logging.getLogger("plakar_cp.api")

# Requests answered at once by one api process (each reads NATS twice and PostgreSQL
# once); more wait in NATS's buffer for this subscription.
CONCURRENT = 32
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


class JobConnectorsServer:
    def __init__(self, pool: Pool, nc: Client, js: JetStreamContext) -> None:
        self.pool = pool
        self.nc = nc
        self.js = js
        self._slots = asyncio.Semaphore(CONCURRENT)
        self._sub: Subscription | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(
            s.RPC_JOB_CONNECTORS_ALL, queue=s.API_QUEUE, cb=self._received
        )

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _received(self, msg: Msg) -> None:
        if not msg.reply:
            return  # nobody to answer
        task = asyncio.create_task(self._answer(msg))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, msg: Msg) -> None:
        async with self._slots:
            reply = await self.reply(msg.data, s.group_of_subject(msg.subject))
        try:
            await msg.respond(rpc.encode(reply))
        except Exception as e:  # the runner gave up waiting, or NATS is away
            log.warning("could not answer a request for a job's connectors: %s", e)

    async def reply(self, data: bytes, group: str) -> rpc.ConnectorsReply:
        """The answer to a request made under `group`'s subject."""
        try:
            ask = rpc.decode_job_connectors(data)
        except _DECODE_ERRORS as e:
            log.warning("a request for a job's connectors that is not one: %s", e)
            return rpc.Failed(
                reason="refused", message=f"not a request for a job's connectors: {e}"
            )
        try:
            due, claim = await self._due(ask.message), await self._claim(ask.job_id)
            ids = granted(ask, group, due, claim)
            if isinstance(ids, rpc.Failed):
                log.warning(
                    "runner %s asked for job %s's connectors: %s",
                    ask.runner,
                    ask.job_id,
                    ids.message,
                )
                return ids
            found = await get_connectors(self.pool, ids)
        except Exception as e:  # PostgreSQL or NATS away: the runner asks again
            log.warning("job %s's connectors could not be looked up: %s", ask.job_id, e)
            return rpc.Failed(reason="failed", message=f"the api could not look the job up: {e}")
        return rpc.Connectors(items=[found[i] for i in ids if i in found])

    async def _due(self, seq: int) -> JobDue | None:
        """The job-due message at that sequence of the jobs stream, if it is one."""
        try:
            raw = await self.js.get_msg(s.JOBS_STREAM, seq=seq)
        except NotFoundError:
            return None
        try:
            return decode_job_due(raw.data or b"")
        except _DECODE_ERRORS:
            return None

    async def _claim(self, job_id: str) -> claims.Claim | None:
        """The job's claim (job_id is a UUID, checked: no wildcard reaches the subject)."""
        try:
            raw = await self.js.get_last_msg(
                f"KV_{s.CLAIMS_BUCKET}", f"$KV.{s.CLAIMS_BUCKET}.{job_id}"
            )
        except NotFoundError:
            return None
        if (raw.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
            return None
        try:
            return claims.decode(raw.data or b"")
        except claims.Unreadable:
            return None
