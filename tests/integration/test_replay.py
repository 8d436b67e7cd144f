"""Replaying the whole events stream into an empty database rebuilds the same job
history, and replaying it again changes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.msg import Msg

from services.history import store
from services.history.projection import needs_job, plan
from shared import db
from shared import subjects as s
from shared.events import AnyJobEvent, decode_job_event
from tests.support.stack import Stack, many_files, running_stack, stack_dir

pytestmark = pytest.mark.integration

TABLES = {
    "jobs": "id",
    "job_attempts": "job_id, attempt",
    "job_output": "job_id, seq",
    "job_connectors": "connector_id, queued_at, job_id",
}


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    """A stack of its own: nothing else adds jobs while the tables are compared."""
    with running_stack(stack_dir("replay"), runners=1) as s:
        yield s


def make_history(stack: Stack, tmp_path: Path) -> list[str]:
    """Jobs that end in every way: succeeded, failed, cancelled running and queued."""
    big = stack.connector("r-big", "source", str(many_files(tmp_path / "big", 10_000)))
    small = stack.connector("r-small", "source", str(many_files(tmp_path / "small", 5)))
    store_id = stack.store("r-store", tmp_path / "store")
    missing = stack.connector("r-missing", "store", str(tmp_path / "never-initialised"))

    def run(body: dict[str, Any]) -> str:
        job_id: str = stack.post("/tasks", body, expect=201)["job_id"]
        return job_id

    long_one = run({"type": "backup", "source_id": big, "store_id": store_id, "concurrency": 1})
    deadline = time.monotonic() + 60
    while stack.get(f"/jobs/{long_one}")["status"] != "running" or not stack.output_lines(long_one):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    waiting = run({"type": "backup", "source_id": small, "store_id": store_id})
    stack.post(f"/jobs/{waiting}/cancel", expect=200)  # one runner, busy: still queued
    stack.post(f"/jobs/{long_one}/cancel", expect=202)
    jobs = [
        long_one,
        waiting,
        run({"type": "backup", "source_id": small, "store_id": store_id, "labels": ["r"]}),
        run({"type": "backup", "source_id": small, "store_id": missing}),
        run({"type": "check", "store_id": store_id}),
    ]
    statuses = [stack.wait_job(j)["status"] for j in jobs]
    assert statuses == ["cancelled", "cancelled", "succeeded", "failed", "succeeded"]
    return jobs


async def all_events(stack: Stack) -> list[Msg]:
    """The whole stream, read with the read-only credentials as any tool can."""
    nc = await nats.connect(stack.endpoints["events_nats_url"])
    try:
        sub = await nc.jetstream().subscribe(s.EVENTS_ALL, ordered_consumer=True)
        msgs = [await sub.next_msg(timeout=10)]
        while msgs[-1].metadata.num_pending:
            msgs.append(await sub.next_msg(timeout=10))
        return msgs
    finally:
        await nc.close()


async def project(dsn: str, events: list[AnyJobEvent], batch: int) -> None:
    """What the history service does with each batch it fetches: the state events of a
    job not known yet are given again later, after the rest."""
    pool = await db.create_pool(dsn, max_size=1)
    try:
        while events:
            later: list[AnyJobEvent] = []
            for i in range(0, len(events), batch):
                part = events[i : i + batch]
                async with pool.acquire() as conn, conn.transaction():
                    unknown = await store.apply(conn, plan(part))
                later += [ev for ev in part if ev.job_id in unknown and needs_job(ev)]
            assert len(later) < len(events), f"jobs never queued: {later}"
            events = later
    finally:
        await pool.close()


async def tables(dsn: str) -> dict[str, list[dict[str, Any]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            t: [dict(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY {key}")]
            for t, key in TABLES.items()
        }
    finally:
        await conn.close()


async def test_replaying_the_stream_rebuilds_the_same_history(
    own_stack: Stack, tmp_path: Path
) -> None:
    jobs = make_history(own_stack, tmp_path)
    live = await tables(own_stack.database_url())
    assert sorted(str(row["id"]) for row in live["jobs"]) == sorted(jobs)

    name = f"replay_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(own_stack.database_url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    replica = own_stack.database_url(database=name)
    await db.migrate(replica)
    assert all(rows == [] for rows in (await tables(replica)).values())

    msgs = await all_events(own_stack)
    events = [decode_job_event(m.data) for m in msgs if s.is_job_event(m.subject)]
    await project(replica, events, batch=1000)
    assert await tables(replica) == live
    # Again, in other batches: replayed events change nothing.
    await project(replica, events, batch=7)
    assert await tables(replica) == live
    # Last first, into an empty database: each job's events come after its end (as a
    # fetch lost with a NATS server comes back after the ack wait).
    backwards = await own_stack.scratch_database()
    await project(backwards, events[::-1], batch=7)
    assert await tables(backwards) == live
    print(f"\nreplayed {len(msgs)} events: {sum(len(v) for v in live.values())} rows match")

    # The jobs of each connector, newest first, page by page.
    for connector in own_stack.get("/connectors"):
        listed, cursor = [], None
        while True:
            page = own_stack.get("/jobs", connector_id=connector["id"], limit=2, cursor=cursor)
            listed += [job["id"] for job in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        uses = [r for r in live["jobs"] if uuid.UUID(connector["id"]) in r["connector_ids"]]
        uses.sort(key=lambda r: (r["queued_at"], r["id"]), reverse=True)
        assert listed == [str(r["id"]) for r in uses]
