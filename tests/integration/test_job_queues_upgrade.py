"""`plakar-cp migrate` on a NATS provisioned by an earlier version (one work queue for all
runners, `runners` on `plakar.jobs.due`): the jobs still queued move to the default
group's queue, the earlier consumer goes, and provisioning again changes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from nats.js import api as js_api

from deploy.embedded import NatsServer, load_credentials
from shared import bus
from shared import subjects as s
from shared.settings import Settings
from tests.support.infra import external_services

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(external_services() is not None, reason="starts a NATS server of its own"),
]

LEGACY_ADVISORY = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{s.JOBS_STREAM}.runners"


async def earlier_version(url: str, jobs: list[bytes]) -> None:
    """The streams and consumers as the earlier version provisioned them, jobs queued."""
    nc = await bus.connect(url, "earlier")
    js = nc.jetstream()
    try:
        for name, subject in (
            (s.JOBS_STREAM, "plakar.jobs.due"),
            (s.DEAD_JOBS_STREAM, LEGACY_ADVISORY),
        ):
            await js.add_stream(
                js_api.StreamConfig(
                    name=name, subjects=[subject], retention=js_api.RetentionPolicy.WORK_QUEUE
                )
            )
            await js.add_consumer(
                name,
                js_api.ConsumerConfig(
                    durable_name="runners",
                    ack_policy=js_api.AckPolicy.EXPLICIT,
                    filter_subject=subject,
                ),
            )
        for n, payload in enumerate(jobs):
            await js.publish("plakar.jobs.due", payload, headers={"Nats-Msg-Id": f"due:{n}"})
    finally:
        await nc.close()


async def upgrade(url: str) -> tuple[list[str], str, list[bytes], list[str]]:
    nc = await bus.connect(url, "migrate")
    js = nc.jetstream()
    try:
        for _ in range(2):  # safe to repeat
            await bus.provision(js, Settings(nats_url=url))
        consumers = sorted(str(c.name) for c in await js.consumers_info(s.JOBS_STREAM))
        dead = await js.consumer_info(s.DEAD_JOBS_STREAM, s.RUNNERS_DURABLE)
        sub = await js.pull_subscribe_bind(
            durable=s.runners_durable("default"), stream=s.JOBS_STREAM
        )
        msgs = await sub.fetch(10, timeout=2)
        stream = await js.stream_info(s.JOBS_STREAM)
        return (
            consumers,
            dead.config.filter_subject or "",
            [m.data for m in msgs],
            list(stream.config.subjects or []),
        )
    finally:
        await nc.close()


def test_migrate_moves_an_earlier_single_queue_to_the_default_group(tmp_path: Path) -> None:
    creds = load_credentials(tmp_path / "credentials.json")
    server = NatsServer(tmp_path / "nats", creds)
    server.spawn()
    try:
        server.wait_ready()
        url = server.url("admin")
        jobs = [json.dumps({"job_id": f"job-{n}"}).encode() for n in range(3)]
        asyncio.run(earlier_version(url, jobs))
        consumers, dead_filter, queued, subjects = asyncio.run(upgrade(url))
    finally:
        server.stop()
    assert consumers == [s.runners_durable("default")]
    assert subjects == [s.JOBS_DUE_ALL]
    assert queued == jobs  # in their order, once each
    assert dead_filter == s.MAX_DELIVERIES_ADVISORY
