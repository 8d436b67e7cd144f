"""The events stream for external tools: the read-only NATS user can follow and
replay it but publish nothing; `plakar-cp events`; the AsyncAPI document."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import api as js_api

from shared import subjects as s
from tests.support.infra import external_services
from tests.support.stack import REPO, Stack, many_files

pytestmark = pytest.mark.integration

JOB_KINDS = ["queued", "started", "log", "finished"]


class Reader:
    """A client with the read-only credentials, remembering the errors NATS reports."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Client | None = None
        self._more = asyncio.Event()

    async def on_error(self, e: Exception) -> None:
        self.errors.append(str(e))
        self._more.set()

    async def wait_errors(self, count: int) -> None:
        """The server reports each refusal on its own, after the fact."""
        async with asyncio.timeout(5):
            while len(self.errors) < count:
                self._more.clear()
                await self._more.wait()

    async def connect(self, url: str, **options: Any) -> Client:
        self.nc = await nats.connect(url, error_cb=self.on_error, **options)
        return self.nc


@pytest.fixture
async def reader(stack: Stack) -> AsyncIterator[Reader]:
    r = Reader()
    await r.connect(stack.endpoints["events_nats_url"])
    yield r
    assert r.nc is not None
    await r.nc.close()


def run_backup(stack: Stack, tmp_path: Path, name: str) -> str:
    source = stack.connector(f"{name}-src", "source", str(many_files(tmp_path / "src", 5)))
    store = stack.store(f"{name}-store", tmp_path / "store")
    job_id: str = stack.post(
        "/tasks", {"type": "backup", "source_id": source, "store_id": store}, expect=201
    )["job_id"]
    return job_id


def kinds_in_order(events: list[dict[str, Any]]) -> list[str]:
    seen = [e["kind"] for e in events]
    return [k for i, k in enumerate(seen) if k not in seen[:i] and k != "progress"]


async def test_read_only_user_follows_and_replays_a_new_job(
    stack: Stack, reader: Reader, tmp_path: Path
) -> None:
    assert reader.nc is not None
    js = reader.nc.jetstream()
    live = await js.subscribe(
        s.EVENTS_ALL, ordered_consumer=True, deliver_policy=js_api.DeliverPolicy.NEW
    )
    job_id = run_backup(stack, tmp_path, "events")
    followed: list[dict[str, Any]] = []
    while not followed or followed[-1]["kind"] != "finished":
        msg = await live.next_msg(timeout=60)
        event = json.loads(msg.data)
        if event.get("job_id") == job_id:
            assert msg.subject == s.job_event(job_id, event["kind"])
            followed.append(event)
    assert kinds_in_order(followed) == JOB_KINDS
    assert followed[-1]["status"] == "succeeded"
    assert [e["seq"] for e in followed] == sorted({e["seq"] for e in followed})

    # The same events, replayed from the stream.
    replay = await js.subscribe(s.job_events(job_id), ordered_consumer=True)
    replayed = [json.loads((await replay.next_msg(timeout=10)).data) for _ in followed]
    assert replayed == followed
    assert reader.errors == []


async def test_readers_publish_nothing(reader: Reader) -> None:
    """What a reader may do at all (test_security.py tries the rest, as an attacker)."""
    if external_services():
        pytest.skip("the containers' NATS has no accounts")
    assert reader.nc is not None
    nc = reader.nc
    await nc.publish(s.JOB_DUE, b"{}")
    await nc.publish(s.job_event("00000000-0000-4000-8000-000000000000", "finished"), b"{}")
    await nc.flush()
    await reader.wait_errors(2)
    refused = "\n".join(reader.errors).lower()
    assert f'permissions violation for publish to "{s.JOB_DUE}"' in refused
    assert 'permissions violation for publish to "plakar.events.job.' in refused


def plakar_cp_events(stack: Stack, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "events", "--data-dir", str(stack.data_dir), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_plakar_cp_events_prints_json_lines(stack: Stack, tmp_path: Path) -> None:
    job_id = run_backup(stack, tmp_path, "cli")
    # Started after the job: the job's stored events first, then the live ones.
    follower = plakar_cp_events(stack, "--follow", "--job", job_id)
    try:
        assert follower.stdout is not None
        followed = [json.loads(follower.stdout.readline())]
        while followed[-1]["kind"] != "finished":
            followed.append(json.loads(follower.stdout.readline()))
    finally:
        follower.terminate()
        follower.wait(10)
    assert kinds_in_order(followed) == JOB_KINDS
    assert {e["job_id"] for e in followed} == {job_id}

    # Without --follow: what is stored, then exit.
    done = plakar_cp_events(stack, "--job", job_id)
    out, err = done.communicate(timeout=30)
    assert done.returncode == 0, err
    assert [json.loads(line) for line in out.splitlines()] == followed

    bad = plakar_cp_events(stack, "--job", "x.>")
    _, err = bad.communicate(timeout=30)
    assert bad.returncode == 2 and b"--job" in err


def test_asyncapi_document(stack: Stack) -> None:
    doc = stack.get("/asyncapi.json")
    assert doc["asyncapi"] == "3.0.0"
    channels = {"jobEvents", "scheduleEvents", "freshnessEvents", "jobStream", "eventFeed"}
    assert set(doc["channels"]) == {*channels, "notifications"}
    assert doc["channels"]["jobEvents"]["address"] == "plakar.events.job.{job_id}.{kind}"
    freshness = doc["channels"]["freshnessEvents"]["address"]
    assert freshness == "plakar.events.freshness.{watched}.{id}.{change}"
    assert {"JobFinished", "FreshnessLost"} <= set(doc["components"]["schemas"])
    # What a webhook receives, sent by the control plane.
    assert doc["operations"]["sendNotification"]["action"] == "send"
    webhook = set(doc["channels"]["notifications"]["messages"])
    assert webhook == {
        "JobFailedNotice",
        "JobRecoveredNotice",
        "FreshnessLost",
        "FreshnessRestored",
    }
    assert stack.endpoints["events_nats_url"].split("@")[0] not in json.dumps(doc)
