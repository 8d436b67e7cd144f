"""Runner transport: the job work queue, job claims, heartbeats, cancel requests and
the connector actions answered over NATS request/reply.

Whatever goes wrong with one job ends that job (failed, with the reason in its output)
and leaves the runner serving the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import get_args

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.runner import job_claims, job_connectors, plakar_cache
from services.runner.actions import Actions
from services.runner.cache_daemon import CacheDaemons
from services.runner.concurrency import recommended_concurrency
from services.runner.dead_letters import DeadLetters
from services.runner.job import Cancellation, RunnerContext, run_job
from services.runner.slots import run_in_slots
from services.runner.workspace import check_work_dir
from shared import bus, claims, job_queues, rpc
from shared import subjects as s
from shared.events import JobDue, JobFinished, decode_job_due, job_id_of
from shared.job_events import open_sink
from shared.models import Connector, TaskType
from shared.settings import Settings

log = logging.getLogger("plakar_cp.runner")

# How long a runner starting waits for JetStream to find (or create) its group's queue.
QUEUE_PATIENCE_S = 60.0
# A message that could not be handled for a passing reason (NATS away) comes back after.
RETRY_DELAY_S = 5.0
# How often a job whose holder looks alive is looked at again while its message is held.
WAIT_RECHECK_S = 1.0


class Runner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx = RunnerContext(
            runner_id=settings.instance_id,
            plakar=settings.plakar_bin,
            work_dir=settings.work_dir,
            cancel_grace_s=settings.cancel_grace_s,
            daemons=CacheDaemons(
                settings.plakar_bin, settings.cache_daemon_idle_s, settings.runner_slots
            ),
            policy=settings.policy(),
        )
        self.nc: Client | None = None
        self.presence: bus.Presence | None = None
        self.started_at: datetime | None = None  # of this process, as its presence says
        # How many of this process's slots hold each job: a message redelivered while its
        # job runs is handled (and let go) beside the slot running it.
        self.running: Counter[str] = Counter()

    async def job_connectors(self, msg: Msg, due: JobDue) -> dict[str, Connector]:
        """The connectors of a job this very process holds, as the api hands them over
        (the api reads which from the job's message, found by its stream sequence)."""
        assert self.nc is not None
        assert self.started_at is not None
        ask = rpc.JobConnectors(
            job_id=due.job_id,
            message=msg.metadata.sequence.stream,
            runner=self.ctx.runner_id,
            runner_since=self.started_at,
        )
        return await job_connectors.fetch(self.nc, ask, self.settings.runner_group)

    async def main(self, stop: asyncio.Event) -> None:
        check_work_dir(self.settings.work_dir)
        nc = await bus.connect(self.settings.nats_url, "runner", s.RUNNER_INBOX_PREFIX)
        self.nc = nc
        actions = Actions(self.ctx)
        group = self.settings.runner_group
        await actions.serve(nc, group)
        js = nc.jetstream()
        claims_kv = await bus.kv(js, s.CLAIMS_BUCKET)
        recommended = {t: recommended_concurrency(t, os.cpu_count()) for t in get_args(TaskType)}
        slots = self.settings.runner_slots
        self.presence = bus.Presence(
            js, "runner", self.ctx.runner_id, recommended, group=group, slots=slots
        )
        self.started_at = self.presence.info.started_at
        await self.presence.start()
        await bus.patiently(
            lambda: job_queues.ensure_group(js, self.settings, group),
            QUEUE_PATIENCE_S,
            f"finding the work queue of runner group {group}",
        )
        sub = await js.pull_subscribe_bind(durable=s.runners_durable(group), stream=s.JOBS_STREAM)
        dead = DeadLetters(js, claims_kv, self.settings.ack_wait_s)
        dead_letters = asyncio.create_task(dead.serve(stop))
        sweeping = asyncio.create_task(_sweep_caches(self.settings.work_dir, stop))
        idling = asyncio.create_task(_stop_idle_daemons(self.ctx.daemons, stop))
        log.info("runner %s ready: group %s, %d slots", self.ctx.runner_id, group, slots)

        async def handle(msg: Msg) -> None:
            await self._handle(js, claims_kv, msg, stop)

        try:
            await run_in_slots(slots, lambda: _fetch_one(sub, stop), handle, stop)
        finally:
            for task in (dead_letters, sweeping, idling):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.ctx.daemons.stop_all()
            await actions.stop()
            await self.presence.stop()
            await bus.close(nc)

    async def _handle(
        self, js: JetStreamContext, kv: KeyValue, msg: Msg, stop: asyncio.Event
    ) -> None:
        """Handle one job message; never raises (but for cancellation)."""
        try:
            due = decode_job_due(msg.data)
        except Exception as e:
            await self._unreadable(js, kv, msg, e)
            return
        try:
            await self._take(js, kv, msg, due, stop)
        except bus.NATS_AWAY as e:
            # Nothing is lost: the message comes back and the claim says where it stands.
            log.warning("job %s: NATS away (%s); it will be looked at again", due.job_id, e)
            with contextlib.suppress(Exception):
                await msg.nak(delay=RETRY_DELAY_S)
        except Exception as e:
            log.exception("job %s: the runner failed to handle it", due.job_id)
            await self._give_up(js, kv, msg, due.job_id, f"the runner failed: {e!r}")

    async def _take(
        self, js: JetStreamContext, kv: KeyValue, msg: Msg, due: JobDue, stop: asyncio.Event
    ) -> None:
        # Announced before it is claimed and while it runs: a runner that finds the
        # claim then sees its holder alive and on it.
        await self._announce(add=due.job_id)
        try:
            decision = await self._claim(js, kv, due.job_id)
            # A holder still announcing itself may have died less than the presence TTL
            # ago. Each nak spends one of the message's deliveries, so the message is
            # held (in progress) and the claim looked at again until that TTL has passed.
            patience = time.monotonic() + bus.SERVICE_TTL_S
            while isinstance(decision, claims.Wait) and time.monotonic() < patience:
                if stop.is_set():
                    break
                await asyncio.sleep(WAIT_RECHECK_S)
                await msg.in_progress()
                decision = await self._claim(js, kv, due.job_id)
            if isinstance(decision, claims.Run):
                await self._run(js, kv, msg, due, decision.attempt, stop)
            elif isinstance(decision, claims.Drop):
                await msg.ack_sync()
            elif isinstance(decision, claims.Wait):
                log.info("job %s: its runner is still on it; looking again later", due.job_id)
                await msg.nak(delay=self.settings.ack_wait_s)
            else:
                await job_claims.end(
                    js,
                    kv,
                    due.job_id,
                    status=decision.status,
                    attempt=decision.attempt,
                    error=decision.error,
                    runner=self.ctx.runner_id,
                )
                await _ack(msg, due.job_id)
        finally:
            await self._announce(discard=due.job_id)

    async def _unreadable(
        self, js: JetStreamContext, kv: KeyValue, msg: Msg, error: Exception
    ) -> None:
        """A job message that is not one: the job it names, unless it has a claim (a
        runner holds it, or it was cancelled), fails saying so; the message is dropped."""
        job_id = job_id_of(msg.data)
        log.error("job message %s cannot be read: %s", job_id or "without a job id", error)
        try:
            if job_id is not None:
                held = await job_claims.read(kv, job_id)
                if held.claim is None:  # nobody holds it (or its claim is garbage)
                    await job_claims.end(
                        js,
                        kv,
                        job_id,
                        status="failed",
                        attempt=0,
                        error=f"the job's message cannot be read: {error}",
                        runner=self.ctx.runner_id,
                    )
            await msg.ack_sync()
        except Exception as e:
            log.warning("dropping an unreadable job message failed (%s); later then", e)
            with contextlib.suppress(Exception):
                await msg.nak(delay=RETRY_DELAY_S)

    async def _give_up(
        self, js: JetStreamContext, kv: KeyValue, msg: Msg, job_id: str, error: str
    ) -> None:
        """End a job this runner could not handle when nobody else holds it; otherwise the
        message comes back later (and past the most deliveries, the job ends there)."""
        try:
            held = await job_claims.read(kv, job_id)
            claim = held.claim
            ours = claim is None or (
                claim.state == "running"
                and claim.runner == self.ctx.runner_id
                and claim.runner_since == self.started_at
            )
            if held.problem is None and ours:
                await job_claims.end(
                    js,
                    kv,
                    job_id,
                    status="failed",
                    attempt=claim.attempt if claim else 0,
                    error=error,
                    runner=self.ctx.runner_id,
                )
                await _ack(msg, job_id)
                return
        except Exception as e:
            log.warning("job %s: could not record its failure (%s)", job_id, e)
        with contextlib.suppress(Exception):
            await msg.nak(delay=RETRY_DELAY_S)

    async def _run(
        self,
        js: JetStreamContext,
        kv: KeyValue,
        msg: Msg,
        due: JobDue,
        attempt: int,
        stop: asyncio.Event,
    ) -> None:
        """Run the job to its end, or until another attempt takes it over or the runner
        stops; says which (Ended, TakenOver, Stopped) and acts on it."""
        sink = await open_sink(js, due.job_id, job_claims.PUBLISH_PATIENCE_S)
        cancel = Cancellation()
        taken_over = asyncio.Event()
        job = asyncio.create_task(
            run_job(self.ctx, due, attempt, sink, lambda: self.job_connectors(msg, due), cancel)
        )
        helpers = [
            asyncio.create_task(self._heartbeat(msg, kv, due.job_id, attempt, taken_over, cancel)),
            asyncio.create_task(_watch_cancel(kv, due.job_id, cancel)),
        ]
        try:
            outcome = await first_of(job, taken_over, stop, cancel.settled)
        finally:
            for h in helpers:
                h.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        if isinstance(outcome, Ended):
            await job_claims.mark_done(kv, due.job_id, attempt, self.ctx.runner_id)
            await _ack(msg, due.job_id)
            log.info("job %s %s", due.job_id, outcome.finished.status)
        elif isinstance(outcome, TakenOver):
            # Another attempt carries on (it publishes the job's events from now on).
            log.error("job %s: ended or taken over elsewhere; stopped ours", due.job_id)
            await msg.nak()
        else:
            await sink.log(
                "system", f"runner {self.ctx.runner_id} stopped; the job will be retried"
            )
            await sink.close()
            await msg.nak()

    async def _announce(self, *, add: str | None = None, discard: str | None = None) -> None:
        """Tell the services bucket which jobs this runner process is running."""
        if add:
            self.running[add] += 1
        if discard:
            self.running[discard] -= 1
        assert self.presence is not None
        await self.presence.set_jobs(list(+self.running))

    async def _heartbeat(
        self,
        msg: Msg,
        kv: KeyValue,
        job_id: str,
        attempt: int,
        taken_over: asyncio.Event,
        cancel: Cancellation,
    ) -> None:
        """Keep the message ours while the job runs; say so when another attempt took it
        over or it was ended elsewhere. It also sees a cancel request that the claim's
        watcher missed (NATS away)."""
        interval = max(1.0, self.settings.ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await msg.in_progress()
                held = (await job_claims.read(kv, job_id)).claim
                if held is None:
                    continue
                if held.state == "cancelled" and held.cancel_at is not None:
                    cancel.request(held.cancel_by or "someone", held.cancel_at)
                elif held.state == "done" or held.attempt != attempt:
                    taken_over.set()
                    return
            except Exception as e:
                log.warning("heartbeat for job %s failed: %s", job_id, e)

    async def _claim(self, js: JetStreamContext, kv: KeyValue, job_id: str) -> claims.Decision:
        while True:
            held = await job_claims.read(kv, job_id)
            if held.problem is not None:
                return claims.Finish(0, "failed", held.problem)
            existing = held.claim
            own = (
                existing is not None
                and existing.runner == self.ctx.runner_id
                and existing.runner_since == self.started_at
            )
            if own:
                alive = self.running[job_id] > 1  # another slot of this process runs it
            else:
                alive = existing is not None and await job_claims.holder_alive(js, existing, job_id)
            decision = claims.decide(existing, self.settings.max_attempts, alive, own)
            if not isinstance(decision, claims.Run):
                return decision
            mine = claims.encode(
                claims.Claim(
                    state="running",
                    attempt=decision.attempt,
                    runner=self.ctx.runner_id,
                    runner_since=self.started_at,
                )
            )
            try:
                if held.revision is None:
                    await kv.create(job_id, mine)
                else:
                    await kv.update(job_id, mine, last=held.revision)
                return decision
            except KeyWrongLastSequenceError:
                continue  # someone changed the claim meanwhile (a cancel): look again


@dataclass(frozen=True)
class Ended:
    finished: JobFinished


@dataclass(frozen=True)
class TakenOver:
    """Another attempt holds the job now."""


@dataclass(frozen=True)
class Stopped:
    """The runner is stopping: the job goes back to the queue."""


async def first_of(
    job: asyncio.Task[JobFinished],
    taken_over: asyncio.Event,
    stop: asyncio.Event,
    settled: asyncio.Event,
) -> Ended | TakenOver | Stopped:
    """How the job's run ends. Taken over, or stopped before plakar was done, the run is
    cancelled (plakar is killed) and awaited; what it raised itself is raised here.
    Stopped once the outcome is known, the job still reports it: cancelled halfway, its
    end could reach the history and the job run again elsewhere."""
    waits = {asyncio.create_task(taken_over.wait()), asyncio.create_task(stop.wait())}
    try:
        await asyncio.wait({job, *waits}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    if job.done() or (settled.is_set() and not taken_over.is_set()):
        return Ended(await job)
    job.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await job
    return TakenOver() if taken_over.is_set() else Stopped()


async def _fetch_one(sub: JetStreamContext.PullSubscription, stop: asyncio.Event) -> list[Msg]:
    """The next job message, if one comes within a second; while NATS is away, try
    again every second (none once stopping)."""
    async for attempt in bus.retrying(Exception):
        with attempt:
            if stop.is_set():
                return []
            if attempt.num > 1:
                log.warning("fetching again (attempt %d)", attempt.num)
            try:
                return await sub.fetch(1, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                return []
    raise AssertionError("unreachable: retrying tries until it works")


async def _ack(msg: Msg, job_id: str) -> None:
    try:
        await msg.ack_sync()
    except Exception as e:  # redelivered later, the done claim drops it
        log.warning("job %s: ack failed: %s", job_id, e)


async def _watch_cancel(kv: KeyValue, job_id: str, cancel: Cancellation) -> None:
    """Pass a cancel request on to the job as soon as its claim says so; watch again
    after a NATS restart."""
    async for attempt in bus.retrying(Exception):
        with attempt:
            if attempt.num > 1:
                log.warning("job %s: watching its claim again (attempt %d)", job_id, attempt.num)
            watcher = await kv.watch(job_id)
            try:
                async for entry in watcher:
                    if entry is None or not entry.value:
                        continue
                    try:
                        claim = claims.decode(entry.value)
                    except claims.Unreadable as e:
                        log.warning("job %s: %s", job_id, e)
                        continue
                    if claim.state == "cancelled" and claim.cancel_at is not None:
                        cancel.request(claim.cancel_by or "someone", claim.cancel_at)
                        return
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]


async def _sweep_caches(root: Path, stop: asyncio.Event) -> None:
    """Remove the plakar caches no job has used for a long time (plakar_cache.sweep), at
    start and every few hours."""
    while not stop.is_set():
        try:
            removed = await asyncio.to_thread(plakar_cache.sweep, root, time.time())
        except OSError as e:
            log.warning("sweeping plakar's kept caches failed: %s", e)
        else:
            for cache in removed:
                days = plakar_cache.UNUSED_S / 86400
                log.info("removed the plakar cache %s: no job used it for %.0f days", cache, days)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), plakar_cache.SWEEP_EVERY_S)


async def _stop_idle_daemons(daemons: CacheDaemons, stop: asyncio.Event) -> None:
    """Stop the cache daemons no job has used for their idle time (a quarter of it late
    at most)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), daemons.idle_s / 4)
        plakar_cache.stop_idle(daemons)
