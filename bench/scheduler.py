"""Scheduler lateness (fire instant - due instant) with many schedules due at once,
against APScheduler 3.x firing as many jobs that each publish to JetStream.

Two figures each: when each firing began (ours: the instant its event was built,
the job's `queued_at`), and when the last publish of the burst was acknowledged
(ours: once the journal marks the burst published, as the scheduler logs it)."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bench.common import Row, median, percentile
from deploy.embedded import NatsServer, load_credentials
from shared import bus
from tests.support.schedules import iso, lateness, minute_ahead
from tests.support.stack import Stack, running_stack, stack_dir

SCHEDULES = int(os.environ.get("BENCH_SCHEDULES", "1000"))
TASKS = max(1, SCHEDULES // 10)


# Logged by the scheduler once a batch is published and confirmed in the journal.
BATCH_LOG = re.compile(r"fired (\d+) schedules .*, [\d.]+-([\d.]+)s late")


def _ours(root: Path) -> tuple[list[float], float]:
    """Every schedule due at the same minute: one burst of SCHEDULES firings (per task,
    one job queued and the others skipped as overlaps, a firing either way)."""
    with running_stack(stack_dir("bench-scheduler"), runners=1) as stack:
        source = stack.connector("bench-src", "source", str(root))
        # Never initialised: the few jobs that run fail at once, leaving the CPU to the scheduler.
        store = stack.connector("bench-store", "store", str(root / "no-store"))
        per_task = SCHEDULES // TASKS
        start = minute_ahead(10 + SCHEDULES / 100)
        schedule = {"recurrence": "daily", "start_at": iso(start)}
        for _ in range(TASKS):
            body = {"type": "backup", "source_id": source, "store_id": store}
            stack.post("/tasks", {**body, "schedules": [schedule] * per_task}, expect=201)
        jobs = _wait_all(stack, per_task * TASKS, start + timedelta(seconds=120))
        confirmed = _confirmed(stack, per_task * TASKS)
    return [lateness(j) for j in jobs], confirmed


def _confirmed(stack: Stack, count: int) -> float:
    """Seconds from the due instant until the last batch of the burst was confirmed."""
    deadline = time.monotonic() + 30
    while True:
        batches = [(int(m[1]), float(m[2])) for m in BATCH_LOG.finditer(stack.logs())]
        if sum(n for n, _ in batches) >= count:
            return max(late for _, late in batches)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the scheduler logged {batches}, not {count} firings")
        time.sleep(0.2)


def _wait_all(stack: Stack, count: int, until: datetime) -> list[dict[str, object]]:
    while True:
        jobs: list[dict[str, object]] = []
        cursor = None
        while True:
            page = stack.get("/jobs", limit=500, **({"cursor": cursor} if cursor else {}))
            jobs += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        if len(jobs) >= count or datetime.now(UTC) > until:
            return jobs
        time.sleep(1)


async def _apscheduler(root: Path) -> tuple[list[float], float]:
    nats = NatsServer(root / "peer-nats", load_credentials(root / "peer-credentials.json"))
    nats.start()
    nc = await bus.connect(nats.url("admin"), "bench")
    try:
        js = nc.jetstream()
        await js.add_stream(name="BENCH", subjects=["bench.>"])
        late: list[float] = []
        published = 0
        done = asyncio.Event()
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)

        async def fire(i: int) -> None:
            nonlocal published
            late.append((datetime.now(UTC) - due).total_seconds())
            await js.publish("bench.due", b"{}", headers={"Nats-Msg-Id": f"{i}"})
            # Done once every publish is acknowledged, not merely started.
            published += 1
            if published == SCHEDULES:
                done.set()

        scheduler = AsyncIOScheduler(timezone=UTC)
        for i in range(SCHEDULES):
            scheduler.add_job(
                fire, "date", run_date=due, args=[i], misfire_grace_time=None, max_instances=1
            )
        scheduler.start()
        await asyncio.wait_for(done.wait(), 120)
        acknowledged = (datetime.now(UTC) - due).total_seconds()
        scheduler.shutdown(wait=False)
        return late, acknowledged
    finally:
        await nc.close()
        nats.stop()


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="pcp-bench-sched-") as tmp:
        root = Path(tmp)
        ours, ours_acked = _ours(root)
        peer, peer_acked = asyncio.run(_apscheduler(root))
    name = "APScheduler 3.x, in-memory"
    rows = [
        Row(f"{SCHEDULES} schedules due at once: firings", len(ours), name, len(peer), "count"),
    ]
    for label, fn in (
        ("lateness median", median),
        ("lateness p95", lambda xs: percentile(xs, 95)),
        ("lateness max", max),
    ):
        rows.append(Row(label, fn(ours), name, fn(peer), "s"))
    rows.append(Row("whole burst acknowledged", ours_acked, name, peer_acked, "s"))
    return rows
