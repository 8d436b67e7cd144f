"""NATS connection and provisioning of the streams, consumers and buckets."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import msgspec
import nats
import nats.errors
import stamina
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import (
    BadRequestError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from shared import job_queues
from shared import subjects as s
from shared.events import utcnow
from shared.models import ServiceInfo
from shared.settings import Settings, nats_seeds

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENTS_MAX_AGE_S = float(os.environ.get("PLAKAR_CP_EVENTS_MAX_AGE", str(90 * 86400)))
SERVICE_TTL_S = 15.0
SCHEDULER_LEASE_TTL_S = 10.0


def connect_options(url: str) -> dict[str, Any]:
    """nats.connect's servers (every seed of `url`) and the seeds' credentials, which the
    servers a cluster announces (given without credentials) are signed in with too."""
    servers = nats_seeds(url)
    seed = urlsplit(servers[0]) if servers else None
    if seed is None or seed.username is None or seed.password is None:
        return {"servers": servers}
    return {
        "servers": servers,
        "user": unquote(seed.username),
        "password": unquote(seed.password),
    }


async def connect(url: str, name: str, inbox_prefix: str = "_INBOX") -> Client:
    """`inbox_prefix`: where the replies to this client's requests go (its NATS user
    may receive there)."""

    async def on_error(e: Exception) -> None:
        log.warning("nats: %s", e)

    return await nats.connect(
        **connect_options(url),
        name=name,
        inbox_prefix=inbox_prefix,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
    )


async def close(nc: Client) -> None:
    """Flush what was published (acks included), then close. Services handle messages
    one batch at a time, so there is nothing to drain."""
    try:
        if nc.is_connected:
            await nc.flush(timeout=2)
    except Exception as e:
        log.info("flush before close failed: %s", e)
    await nc.close()


# What a request to JetStream meets while the NATS server restarts (or recovers its
# streams after a crash). Publishing again with the same Nats-Msg-Id is safe within the
# streams' duplicate window (120 s).
class ClusterForming(Exception):
    """JetStream found too few servers for a stream's replicas: a cluster still forming
    (its servers starting, or not yet peers of each other)."""


# JetStream's "no suitable peers for placement".
_NO_SUITABLE_PEERS = 10005

NATS_AWAY = (
    ClusterForming,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionClosedError,
    NoStreamResponseError,
    ServiceUnavailableError,
)


def retrying(
    on: type[Exception] | tuple[type[Exception], ...],
    *,
    patience: float | None = None,
    wait_max: float = 1.0,
) -> AsyncIterable[stamina.Attempt]:
    """The one way the services try again: while `on` is raised, for `patience` seconds
    (None: until it works), waiting from 0.2 s up to `wait_max` between tries."""
    return stamina.retry_context(
        on=on, attempts=None, timeout=patience, wait_initial=0.2, wait_max=wait_max
    )


async def patiently(action: Callable[[], Awaitable[T]], patience: float, what: str) -> T:
    """Run action; while the NATS server is away, run it again (at most every second)
    for up to `patience` seconds after it first failed (the action must be safe to
    repeat)."""
    try:
        # Most calls work at once: no retry context is built for them (a job publishes
        # hundreds of events).
        return await action()
    except NATS_AWAY:
        if patience <= 0:
            raise
    async for attempt in retrying(NATS_AWAY, patience=patience):
        with attempt:
            log.warning("%s: trying again (attempt %d)", what, attempt.num + 1)
            return await action()
    raise AssertionError("unreachable: retry_context raises when it gives up")


async def publish(
    js: JetStreamContext, subject: str, payload: bytes, msg_id: str, *, patience: float = 0.0
) -> None:
    """Publish to a stream, deduplicated by msg_id, waiting for the server's ack; while
    the server is away, publish again for up to `patience` seconds."""
    headers = {"Nats-Msg-Id": msg_id}
    await patiently(
        lambda: js.publish(subject, payload, headers=headers, timeout=5),
        patience,
        f"publishing to {subject}",
    )


async def provision(js: JetStreamContext, settings: Settings, replicas: int = 1) -> None:
    """Create or update every stream, durable consumer and bucket, each kept on `replicas`
    servers of the cluster; safe to repeat (nothing changes when nothing differs)."""
    await job_queues.drop_legacy_consumer(js)
    streams = [
        js_api.StreamConfig(
            name=s.JOBS_STREAM,
            subjects=[s.JOBS_DUE_ALL],
            retention=js_api.RetentionPolicy.WORK_QUEUE,
            storage=js_api.StorageType.FILE,
            duplicate_window=120,
            num_replicas=replicas,
        ),
        events_stream(replicas=replicas),
        # The advisories NATS publishes when a job message was delivered as often as the
        # runners' consumer allows, kept until a runner has ended the job.
        js_api.StreamConfig(
            name=s.DEAD_JOBS_STREAM,
            subjects=[s.MAX_DELIVERIES_ADVISORY],
            retention=js_api.RetentionPolicy.WORK_QUEUE,
            storage=js_api.StorageType.FILE,
            max_age=30 * 86400.0,
            num_replicas=replicas,
        ),
    ]
    for config in streams:
        await _stream(js, config)

    # The runner groups' work queues (shared/job_queues.py), then the other consumers.
    await job_queues.provision_groups(js, settings)
    consumers = [
        (
            s.DEAD_JOBS_STREAM,
            js_api.ConsumerConfig(
                durable_name=s.RUNNERS_DURABLE,
                ack_policy=js_api.AckPolicy.EXPLICIT,
                ack_wait=30,
                filter_subject=s.MAX_DELIVERIES_ADVISORY,
            ),
        ),
        (
            s.EVENTS_STREAM,
            js_api.ConsumerConfig(
                durable_name=s.HISTORY_DURABLE,
                ack_policy=js_api.AckPolicy.EXPLICIT,
                ack_wait=30,
                max_ack_pending=20000,
                filter_subject=s.EVENTS_ALL,
            ),
        ),
    ]
    for stream, cconfig in consumers:
        # The server creates the durable, or updates its editable settings. Durables set
        # no replicas: they have their stream's (work-queue streams require it), and
        # follow it when the stream's replicas change.
        await js.add_consumer(stream, cconfig)

    for bucket, ttl in (
        (s.CLAIMS_BUCKET, 30 * 86400.0),
        (s.SERVICES_BUCKET, SERVICE_TTL_S),
        (s.SCHEDULER_LEASE_BUCKET, SCHEDULER_LEASE_TTL_S),
    ):
        await _bucket(js, bucket, ttl, replicas)


# How long provisioning waits for a stream whose replicas changed to be whole again (a
# stream still growing refuses new consumers).
REPLICATED_WITHIN_S = 60.0


def fully_replicated(info: js_api.StreamInfo | js_api.ConsumerInfo, replicas: int) -> bool:
    """Whether a stream or consumer has a leader and `replicas - 1` followers, all in
    step with it."""
    if replicas <= 1:
        return True
    cluster = info.cluster
    if cluster is None or not cluster.leader:
        return False
    peers = cluster.replicas or []
    return len(peers) == replicas - 1 and all(p.current and not p.offline for p in peers)


async def replicated(js: JetStreamContext, stream: str, replicas: int, within: float) -> None:
    """Wait until `stream` is fully replicated; raise TimeoutError after `within` s."""
    deadline = time.monotonic() + within
    info = await js.stream_info(stream)
    while not fully_replicated(info, replicas):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"stream {stream} not on {replicas} servers in step after {within:.0f}s: "
                f"{info.cluster}"
            )
        await asyncio.sleep(0.1)
        info = await js.stream_info(stream)


async def _placed(action: Awaitable[T]) -> T:
    """Await a stream's creation or update, telling a cluster still forming apart from
    a refusal (provisioning waits the first out)."""
    try:
        return await action
    except BadRequestError as e:
        if e.err_code == _NO_SUITABLE_PEERS:
            raise ClusterForming(e.description) from e
        raise


async def _stream(js: JetStreamContext, config: js_api.StreamConfig) -> None:
    """Create the stream, or update it (its replicas included) when it differs."""
    try:
        await _placed(js.add_stream(config))
    except BadRequestError:
        await _placed(js.update_stream(config))
    assert config.name is not None
    await replicated(js, config.name, config.num_replicas or 1, REPLICATED_WITHIN_S)


async def _bucket(js: JetStreamContext, bucket: str, ttl: float, replicas: int) -> None:
    """Create the bucket, or give the existing one `replicas` (its stream is KV_<bucket>)."""
    try:
        await _placed(js.create_key_value(bucket=bucket, ttl=ttl, history=1, replicas=replicas))
    except BadRequestError:  # it exists with other replicas
        config = (await js.stream_info(f"KV_{bucket}")).config
        config.num_replicas = replicas
        await _placed(js.update_stream(config))
    await replicated(js, f"KV_{bucket}", replicas, REPLICATED_WITHIN_S)


# How long a lingering consumer's second fetch waits when nothing more came.
LINGER_FETCH_S = 0.01


@dataclass(frozen=True)
class Linger:
    """A fetch of fewer than `below` messages, all of which `applies` to, waits `seconds`
    for more: they are handled together. A backlog comes in larger fetches and never
    waits."""

    seconds: float
    below: int
    applies: Callable[[list[Msg]], bool]


async def consume(
    sub: JetStreamContext.PullSubscription,
    batch: int,
    handle: Callable[[list[Msg]], Awaitable[None]],
    stop: asyncio.Event,
    wait: float = 1.0,
    linger: Linger | None = None,
) -> None:
    """Fetch up to `batch` messages at a time and hand them to `handle` until `stop`;
    while NATS is away, try again every second."""
    while not stop.is_set():
        msgs: list[Msg] = []
        async for attempt in retrying(Exception):
            with attempt:  # fails while NATS reconnects
                if stop.is_set():
                    return
                if attempt.num > 1:
                    log.warning("fetching again (attempt %d)", attempt.num)
                msgs = await _fetch(sub, batch, wait)
        if linger and 0 < len(msgs) < linger.below and linger.applies(msgs):
            await asyncio.sleep(linger.seconds)
            try:
                msgs += await _fetch(sub, batch - len(msgs), LINGER_FETCH_S)
            except Exception as e:  # NATS away: those fetched go alone, in order
                log.warning("fetching more failed: %s", e)
        if msgs:
            await handle(msgs)


async def _fetch(sub: JetStreamContext.PullSubscription, batch: int, wait: float) -> list[Msg]:
    try:
        return await sub.fetch(batch, timeout=wait)
    except (TimeoutError, nats.errors.TimeoutError):
        return []  # nothing to fetch


def events_stream(max_age: float = EVENTS_MAX_AGE_S, replicas: int = 1) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=s.EVENTS_STREAM,
        subjects=[s.EVENTS_ALL],
        retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE,
        duplicate_window=120,
        max_age=max_age,
        allow_direct=True,
        num_replicas=replicas,
    )


async def provision_readers(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update the external readers' own copy of the events (in their account,
    fed by the import of the event subjects); they may read it, not change it."""
    config = events_stream(replicas=replicas)
    config.deny_delete = True
    config.deny_purge = True
    await _stream(js, config)


def cluster_size(nc: Client) -> int:
    """How many servers the connected server's cluster has (1 when it has none): the
    client URLs the cluster announces, one per server. JetStream's own account info
    says nothing of the cluster, and the servers' inventory is for the system account."""
    info: dict[str, Any] = nc._server_info
    return max(1, len(info.get("connect_urls") or ()))


def default_replicas(nc: Client) -> int:
    """The cluster's size up to 3: a stream on 3 servers survives the loss of any one."""
    return min(3, cluster_size(nc))


async def kv(js: JetStreamContext, bucket: str) -> KeyValue:
    return await js.key_value(bucket)


class Presence:
    """Announces a live service in the services bucket until stopped; a runner also
    announces the jobs it is running (see `set_jobs`), the concurrency it gives a job of
    each type that sets none, its group and how many jobs it runs at once (slots)."""

    def __init__(
        self,
        js: JetStreamContext,
        kind: str,
        instance_id: str,
        concurrency: dict[str, int] | None = None,
        *,
        group: str | None = None,
        slots: int | None = None,
    ) -> None:
        self._js = js
        self.info = ServiceInfo(
            kind=kind,
            id=instance_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=utcnow(),
            concurrency=concurrency or {},
            group=group,
            slots=slots,
        )
        self._task: asyncio.Task[None] | None = None
        self._bucket: KeyValue | None = None
        self._key = f"{kind}.{instance_id}"

    async def start(self) -> None:
        self._bucket = await kv(self._js, s.SERVICES_BUCKET)
        await self._bucket.put(self._key, msgspec.json.encode(self.info))
        self._task = asyncio.create_task(self._refresh(self._bucket))

    async def set_jobs(self, jobs: list[str]) -> None:
        """Announce at once which jobs this process runs (the refresh repeats it)."""
        self.info = msgspec.structs.replace(self.info, jobs=sorted(jobs))
        assert self._bucket is not None, "start first"
        try:
            await self._bucket.put(self._key, msgspec.json.encode(self.info))
        except Exception as e:  # the next refresh says it
            log.warning("presence update failed: %s", e)

    async def _refresh(self, bucket: KeyValue) -> None:
        while True:
            await asyncio.sleep(SERVICE_TTL_S / 3)
            try:
                await bucket.put(self._key, msgspec.json.encode(self.info))
            except Exception as e:  # keep announcing through NATS hiccups
                log.warning("presence refresh failed: %s", e)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        try:
            bucket = await kv(self._js, s.SERVICES_BUCKET)
            await asyncio.wait_for(bucket.delete(self._key), 2)
        except Exception as e:
            log.info("presence removal failed: %s", e)


async def live_services(js: JetStreamContext) -> list[ServiceInfo]:
    bucket = await kv(js, s.SERVICES_BUCKET)
    # The keys as the stream's subjects: KeyValue.keys() (a watcher) now and then ends
    # before the first entry and finds none, which would pass for "nobody is alive".
    prefix = f"$KV.{s.SERVICES_BUCKET}."
    try:
        info = await js.stream_info(f"KV_{s.SERVICES_BUCKET}", subjects_filter=f"{prefix}>")
    except NotFoundError:
        return []
    keys = [subject.removeprefix(prefix) for subject in info.state.subjects or {}]
    found: list[ServiceInfo] = []
    for key in keys:
        try:
            entry = await bucket.get(key)
        except NotFoundError:
            continue
        if not entry.value:
            continue
        try:
            found.append(msgspec.json.decode(entry.value, type=ServiceInfo))
        except (msgspec.DecodeError, msgspec.ValidationError) as e:  # not a service's
            log.warning("ignoring an unreadable entry %s in %s: %s", key, s.SERVICES_BUCKET, e)
    return found


async def run_until_stopped(
    main: Callable[[asyncio.Event], Awaitable[Any]],
) -> None:
    """Run a service's main coroutine until SIGINT or SIGTERM sets the stop event."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await main(stop)
