"""Jobs whose message NATS gave up on.

The runners' consumer delivers a job message at most `max_deliveries` times; then NATS
publishes an advisory, which the `PLAKAR_DEAD_JOBS` stream keeps. A runner reads it and
ends the job (`claims.exhausted` decides how), so that no job stays queued or running
forever, then deletes the message from the work queue, where NATS leaves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from services.runner import job_claims
from shared import bus, claims
from shared import subjects as s
from shared.events import job_id_of

log = logging.getLogger("plakar_cp.runner")


class MaxDeliveries(msgspec.Struct):
    """The part of NATS's advisory `io.nats.jetstream.advisory.v1.max_deliver` used here."""

    stream_seq: int
    deliveries: int


class DeadLetters:
    def __init__(self, js: JetStreamContext, kv: KeyValue, recheck_s: float) -> None:
        self.js = js
        self.kv = kv
        # A job whose runner is still on it is looked at again this much later.
        self.recheck_s = recheck_s

    async def serve(self, stop: asyncio.Event) -> None:
        # Not provisioned yet (an older `plakar-cp migrate`), or NATS away: try again.
        async for attempt in bus.retrying(Exception, wait_max=30.0):
            with attempt:
                if attempt.num > 1:
                    log.error("cannot read dead letters yet (attempt %d)", attempt.num)
                sub = await self.js.pull_subscribe_bind(
                    durable=s.RUNNERS_DURABLE, stream=s.DEAD_JOBS_STREAM
                )

        async def handle(msgs: list[Msg]) -> None:
            for msg in msgs:
                await self._handle(msg)

        try:
            await bus.consume(sub, 10, handle, stop, wait=5)
        finally:
            await sub.unsubscribe()

    async def _handle(self, msg: Msg) -> None:
        try:
            advisory = msgspec.json.decode(msg.data, type=MaxDeliveries)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            log.error("dropping an unreadable max-deliveries advisory: %s", e)
            await msg.ack()
            return
        try:
            if await self._end(advisory):
                await msg.ack_sync()
            else:
                await msg.nak(delay=self.recheck_s)
        except Exception as e:  # it comes back after the ack wait
            log.warning("dead letter %d: %s; again later", advisory.stream_seq, e)

    async def _end(self, advisory: MaxDeliveries) -> bool:
        """End the job of the given-up message; False when its runner is still on it."""
        try:
            raw = await self.js.get_msg(s.JOBS_STREAM, advisory.stream_seq)
        except NotFoundError:
            return True  # handled already
        job_id = job_id_of(raw.data or b"")
        if job_id is not None:
            held = await job_claims.read(self.kv, job_id)
            if held.problem is not None:
                decision: claims.Decision = claims.Finish(0, "failed", held.problem)
            else:
                alive = held.claim is not None and await job_claims.holder_alive(
                    self.js, held.claim, job_id
                )
                decision = claims.exhausted(held.claim, alive, advisory.deliveries)
            if isinstance(decision, claims.Wait):
                return False
            if isinstance(decision, claims.Finish):
                await job_claims.end(
                    self.js,
                    self.kv,
                    job_id,
                    status=decision.status,
                    attempt=decision.attempt,
                    error=decision.error,
                    runner=None,
                )
        else:
            log.error("dropping given-up message %d: it names no job", advisory.stream_seq)
        with contextlib.suppress(NotFoundError):
            await self.js.delete_msg(s.JOBS_STREAM, advisory.stream_seq)
        return True
