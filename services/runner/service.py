"""Runner transport: the job work queue, job claims, heartbeats, cancel requests and
the connector actions answered over NATS request/reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from functools import partial

from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from services.runner.actions import register_actions
from services.runner.events_out import JobEventSink
from services.runner.job import Cancellation, RunnerContext, run_job
from shared import bus, claims
from shared import subjects as s
from shared.config_db import get_connectors
from shared.db import Pool, create_pool
from shared.events import JobDue, JobFinished, decode_job_due, decode_job_event
from shared.models import Connector
from shared.settings import Settings

log = logging.getLogger("plakar_cp.runner")

JOB_KINDS = ("queued", "started", "progress", "log", "finished")
# A job's events wait out a NATS restart this long (plakar waits meanwhile, its output
# unread) instead of failing the runner; under the streams' 120 s duplicate window.
PUBLISH_PATIENCE_S = 90.0


class Runner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx = RunnerContext(
            runner_id=settings.instance_id,
            plakar=settings.plakar_bin,
            work_dir=settings.work_dir,
            cancel_grace_s=settings.cancel_grace_s,
        )
        self.broker = NatsBroker(settings.nats_url, max_reconnect_attempts=-1)
        self.pool: Pool | None = None
        self.started_at: datetime | None = None  # of this process, as its presence says

    async def load_connectors(self, ids: list[str]) -> dict[str, Connector]:
        assert self.pool is not None
        return await get_connectors(self.pool, ids)

    async def main(self, stop: asyncio.Event) -> None:
        self.pool = await create_pool(self.settings.database_url, max_size=4)
        register_actions(self.broker, self.ctx, self.load_connectors)
        await self.broker.start()
        js = self.broker.connection.jetstream()
        claims_kv = await bus.kv(js, s.CLAIMS_BUCKET)
        presence = bus.Presence(js, "runner", self.ctx.runner_id)
        self.started_at = presence.info.started_at
        await presence.start()
        sub = await js.pull_subscribe_bind(durable=s.RUNNERS_DURABLE, stream=s.JOBS_STREAM)
        log.info("runner %s ready", self.ctx.runner_id)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(1, timeout=1)
                except TimeoutError:
                    continue
                except Exception as e:  # NATS reconnecting: try again shortly
                    log.warning("fetch failed: %s", e)
                    await asyncio.sleep(1)
                    continue
                for msg in msgs:
                    await self._handle(js, claims_kv, msg, stop)
        finally:
            await presence.stop()
            try:
                # A pull subscription left in place makes the broker's drain wait forever.
                await sub.unsubscribe()
                await self.broker.stop()
            except Exception as e:  # NATS already gone: nothing left to drain
                log.info("broker stop: %s", e)
            await self.pool.close()

    async def _handle(
        self, js: JetStreamContext, kv: KeyValue, msg: Msg, stop: asyncio.Event
    ) -> None:
        try:
            due = decode_job_due(msg.data)
        except Exception as e:
            log.error("dropping a job-due message that cannot be read: %s", e)
            await msg.term()
            return
        decision, revision = await self._claim(js, kv, due.job_id)
        if isinstance(decision, claims.Drop):
            await msg.ack_sync()
            return
        if isinstance(decision, claims.Wait):
            log.info("job %s: its runner is still on it; looking again later", due.job_id)
            await msg.nak(delay=self.settings.ack_wait_s)
            return
        publish = partial(bus.publish, js, patience=PUBLISH_PATIENCE_S)
        sink = JobEventSink(due.job_id, publish, await _next_seq(js, due.job_id))
        if isinstance(decision, claims.Finish):
            await sink.log("system", f"job {decision.status}: {decision.error}")
            await sink.emit(
                JobFinished(
                    job_id=due.job_id,
                    seq=sink.next_seq(),
                    status=decision.status,
                    attempt=decision.attempt,
                    error=decision.error,
                )
            )
            await _finish(kv, msg, due.job_id, claims.Claim(state="done", attempt=decision.attempt))
            return
        await self._run(kv, msg, due, decision.attempt, revision, sink, stop)

    async def _run(
        self,
        kv: KeyValue,
        msg: Msg,
        due: JobDue,
        attempt: int,
        revision: int | None,
        sink: JobEventSink,
        stop: asyncio.Event,
    ) -> None:
        cancel = Cancellation()
        job = asyncio.create_task(
            run_job(self.ctx, due, attempt, sink, self.load_connectors, cancel)
        )
        helpers = [
            asyncio.create_task(self._heartbeat(msg, kv, due.job_id, attempt, job)),
            asyncio.create_task(_watch_cancel(kv, due.job_id, cancel)),
        ]
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({job, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not job.done():
                # The runner is stopping: plakar is killed with the task and the job
                # goes back to the queue for another attempt.
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
                await sink.log(
                    "system", f"runner {self.ctx.runner_id} stopped; the job will be retried"
                )
                await sink.close()
                await msg.nak()
                return
            if job.cancelled():
                await msg.nak()  # lost the claim to another runner; it carries on
                return
            finished = job.result()
            done = claims.Claim(state="done", attempt=attempt, runner=self.ctx.runner_id)
            await _finish(kv, msg, due.job_id, done)
            log.info("job %s %s", due.job_id, finished.status)
        finally:
            stopping.cancel()
            for h in helpers:
                h.cancel()

    async def _heartbeat(
        self, msg: Msg, kv: KeyValue, job_id: str, attempt: int, job: asyncio.Task[JobFinished]
    ) -> None:
        """Keep the message ours while the job runs; stop if another runner took it over."""
        interval = max(1.0, self.settings.ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await msg.in_progress()
                entry = await kv.get(job_id)
                held = claims.decode(entry.value or b"")
                if held.attempt != attempt:
                    log.error("job %s: attempt %s took over; stopping ours", job_id, held.attempt)
                    job.cancel()
                    return
            except Exception as e:
                log.warning("heartbeat for job %s failed: %s", job_id, e)

    async def _claim(
        self, js: JetStreamContext, kv: KeyValue, job_id: str
    ) -> tuple[claims.Decision, int | None]:
        while True:
            try:
                entry = await kv.get(job_id)
                existing, revision = claims.decode(entry.value or b""), entry.revision
            except KeyNotFoundError:
                existing, revision = None, None
            alive = existing is not None and await _holder_alive(js, existing)
            decision = claims.decide(existing, self.settings.max_attempts, alive)
            if not isinstance(decision, claims.Run):
                return decision, revision
            mine = claims.encode(
                claims.Claim(
                    state="running",
                    attempt=decision.attempt,
                    runner=self.ctx.runner_id,
                    runner_since=self.started_at,
                )
            )
            try:
                if revision is None:
                    revision = await kv.create(job_id, mine)
                else:
                    revision = await kv.update(job_id, mine, last=revision)
                return decision, revision
            except KeyWrongLastSequenceError:
                continue  # someone changed the claim meanwhile (a cancel): look again


async def _holder_alive(js: JetStreamContext, claim: claims.Claim) -> bool:
    """Whether the very runner process that claimed a running job still announces itself
    (a runner restarted under the same id announces a later start)."""
    if claim.state != "running" or claim.runner_since is None:
        return False
    return any(
        info.kind == "runner" and info.id == claim.runner and info.started_at == claim.runner_since
        for info in await bus.live_services(js)
    )


async def _finish(kv: KeyValue, msg: Msg, job_id: str, done: claims.Claim) -> None:
    """Mark the job done, then acknowledge its message, riding out a NATS restart: a job
    whose claim is not marked done would run again."""
    await bus.patiently(
        lambda: kv.put(job_id, claims.encode(done)),
        PUBLISH_PATIENCE_S,
        f"marking job {job_id} done",
    )
    try:
        await msg.ack_sync()
    except Exception as e:  # redelivered later, the done claim drops it
        log.warning("job %s: ack failed: %s", job_id, e)


async def _watch_cancel(kv: KeyValue, job_id: str, cancel: Cancellation) -> None:
    watcher = await kv.watch(job_id)
    try:
        async for entry in watcher:
            if entry is None or not entry.value:
                continue
            claim = claims.decode(entry.value)
            if claim.state == "cancelled" and claim.cancel_at is not None:
                cancel.request(claim.cancel_by or "someone", claim.cancel_at)
                return
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]


async def _next_seq(js: JetStreamContext, job_id: str) -> int:
    """The seq after the last event of the job, so a new attempt continues its output."""
    last = 0
    for kind in JOB_KINDS:
        try:
            raw = await js.get_last_msg(s.EVENTS_STREAM, s.job_event(job_id, kind))
        except NotFoundError:
            continue
        if raw.data:
            last = max(last, decode_job_event(raw.data).seq)
    return last + 1
