"""History transport: a batched pull consumer on the events stream; acks after commit."""

from __future__ import annotations

import asyncio
import logging

from asyncpg.exceptions import ConnectionDoesNotExistError
from nats.aio.msg import Msg

from services.history import store
from services.history.projection import needs_job, plan
from shared import bus
from shared import subjects as s
from shared.db import TRANSIENT, Pool, create_pool
from shared.events import UNREADABLE_EVENT, AnyJobEvent, read_job_event
from shared.settings import Settings

log = logging.getLogger("plakar_cp.history")

BATCH = 1000
# A job's state event that comes before the job's queued event (out of order, see
# store.py) is given again this much later, as long as it has come fewer times than
# this: some minutes, well beyond the ack wait that brings a lost queued event back.
UNKNOWN_DELAY_S = 2.0
UNKNOWN_DELIVERIES = 150
# A few events of lines alone (no job changed state) wait this long for more, written
# together: a job printing as plakar does (thousands of lines a second, in some hundred
# events) then costs a transaction per linger, not one per event. Nothing live waits for
# it: the api streams output from NATS; a job's queued, started or finished event, and a
# backlog, are written at once.
LINES = bus.Linger(0.05, 10, lambda msgs: all(s.is_job_log(m.subject) for m in msgs))


class History:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def main(self, stop: asyncio.Event) -> None:
        pool = await create_pool(self.settings.database_url, max_size=2)
        nc = await bus.connect(self.settings.nats_url, "history")
        js = nc.jetstream()
        presence = bus.Presence(js, "history", self.settings.instance_id)
        await presence.start()
        sub = await js.pull_subscribe_bind(durable=s.HISTORY_DURABLE, stream=s.EVENTS_STREAM)
        log.info("history %s ready", self.settings.instance_id)
        try:
            await bus.consume(
                sub, BATCH, lambda msgs: self._project(pool, msgs, stop), stop, linger=LINES
            )
        finally:
            await presence.stop()
            await bus.close(nc)
            await pool.close()

    async def _project(self, pool: Pool, msgs: list[Msg], stop: asyncio.Event) -> None:
        read: list[tuple[Msg, AnyJobEvent]] = []
        for msg in msgs:
            if not s.is_job_event(msg.subject):
                continue  # schedule events are for other readers
            try:
                ev = read_job_event(msg.subject, msg.data)
            except UNREADABLE_EVENT as e:
                log.error("skipping event %s: %s", msg.subject, e)
                continue
            read.append((msg, ev))
        # While PostgreSQL is away the batch is tried again (its messages renewed) rather
        # than left to come back after the ack wait (30 s): events stay in order and the
        # history catches up as soon as PostgreSQL is back.
        async for attempt in bus.retrying(TRANSIENT, wait_max=1.0):
            with attempt:
                if attempt.num > 1:
                    if stop.is_set():
                        return  # not acked: the batch comes back to the next history
                    log.warning("writing %d events again", len(read))
                    await _keep(msgs)
                unknown = await _write(pool, [ev for _, ev in read])
        early = {id(msg) for msg, ev in read if ev.job_id in unknown and needs_job(ev)}
        for msg in msgs:
            if id(msg) not in early:
                await msg.ack()
            elif msg.metadata.num_delivered < UNKNOWN_DELIVERIES:
                await msg.nak(delay=UNKNOWN_DELAY_S)
            else:
                log.error("skipping %s: its job was never queued", msg.subject)
                await msg.ack()


async def _write(pool: Pool, events: list[AnyJobEvent]) -> set[str]:
    """Write the events in one transaction; when that fails for another reason than a
    transient one, write them one by one and skip (with an error in the log) those that
    cannot be written, so one bad event never stops the history. Returns the jobs not
    known yet (store.apply)."""
    try:
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    return await store.apply(conn, plan(events))
            except TRANSIENT:
                raise
            except Exception as e:
                # PostgreSQL killed mid-write can surface as an InterfaceError ("the
                # underlying connection is closed"): the events are not at fault.
                if conn.is_closed():
                    raise ConnectionDoesNotExistError(f"connection lost: {e}") from e
                raise
    except TRANSIENT:
        raise
    except Exception:
        unknown: set[str] = set()
        if len(events) > 1:
            log.warning("writing %d events failed; writing them one by one", len(events))
            for ev in events:
                unknown |= await _write(pool, [ev])
        elif events:
            log.exception("skipping event %s of job %s", type(ev := events[0]).__name__, ev.job_id)
        return unknown


async def _keep(msgs: list[Msg]) -> None:
    """Renew the ack wait of messages still being worked on."""
    try:
        for msg in msgs:
            await msg.in_progress()
    except Exception as e:  # NATS reconnecting: they may come back later, still unacked
        log.warning("renewing %d events failed: %s", len(msgs), e)
