"""The scheduler against APScheduler 3.x, in the same run.

Burst: SCHEDULES schedules of as many distinct tasks due at one instant (so every firing
queues a job), against APScheduler firing as many jobs that each publish one deduplicated
message to JetStream. Lateness (fire instant - due instant) is taken as each firing
begins (ours: as its queued event is built, the job's `queued_at`); "acknowledged" is when
the last job of the burst was acknowledged (ours: its job-due, as logged by the scheduler;
the peer: its one message). The tasks are of a runner group with no runner, so
their jobs stay queued and leave the CPU to the scheduler.

Idle: IDLE_SCHEDULES enabled schedules armed, none due soon; the CPU time of the active
scheduler process over IDLE_S seconds (one reconciliation period, from /proc), against an
APScheduler process holding as many jobs over the same seconds.

The schedules are written to the database in bulk and announced on NATS as the api
announces a change (one event per schedule): creating 100,000 through the api would take
longer than the whole benchmark."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bench.common import Row, median, percentile
from deploy.embedded import NatsServer, load_credentials, nats_url
from shared import bus, subjects
from shared.events import ScheduleChanged, encode
from tests.support.schedules import minute_ahead
from tests.support.stack import Stack, running_stack, stack_dir

SCHEDULES = int(os.environ.get("BENCH_SCHEDULES", "10000"))
IDLE_SCHEDULES = int(os.environ.get("BENCH_IDLE_SCHEDULES", "100000"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "60"))
PEER = "APScheduler 3.x, in-memory"
# No runner serves it: the burst's jobs stay queued.
GROUP = "bench-no-runner"
TICK = os.sysconf("SC_CLK_TCK")

# Logged by the scheduler once a batch is published and confirmed in the journal.
BATCH_LOG = re.compile(
    r"fired (\d+) schedules .*, jobs acknowledged ([\d.-]+)s after the last due, "
    r"everything ([\d.-]+)s after"
)


async def _add_schedules(
    stack: Stack, count: int, per_task: int, start: datetime, spread_minutes: int
) -> list[str]:
    """`count` enabled daily schedules (`per_task` to a task), the i-th starting
    `i % spread_minutes` minutes after `start`, announced as the api does; their ids."""
    conn = await asyncpg.connect(stack.database_url())
    try:
        connectors = await conn.fetchrow(
            """SELECT (SELECT id FROM connectors WHERE role = 'source' LIMIT 1),
                      (SELECT id FROM connectors WHERE role = 'store' LIMIT 1)"""
        )
        assert connectors is not None
        source, store = connectors
        rows = await conn.fetch(
            """WITH t AS (
                   INSERT INTO tasks (id, type, source_id, store_id, runner_group)
                   SELECT gen_random_uuid(), 'backup', $1, $2, $3
                   FROM generate_series(1, $4::int)
                   RETURNING id)
               INSERT INTO schedules (id, task_id, recurrence, interval_minutes, start_at)
               SELECT gen_random_uuid(), t.id, 'daily', 1440,
                      $5::timestamptz + ((row_number() OVER () - 1) % $7) * interval '1 minute'
               FROM t, generate_series(1, $6::int)
               RETURNING id::text""",
            source,
            store,
            GROUP,
            count // per_task,
            start,
            per_task,
            spread_minutes,
        )
    finally:
        await conn.close()
    ids = [r["id"] for r in rows]
    nc = await bus.connect(_nats_admin(stack), "bench")
    try:
        for schedule_id in ids:
            event = ScheduleChanged(schedule_id=schedule_id, deleted=False)
            await nc.publish(subjects.schedule_event(schedule_id, "changed"), encode(event))
        await nc.flush(timeout=30)
    finally:
        await nc.close()
    return ids


def _nats_admin(stack: Stack) -> str:
    listen = json.loads((stack.data_dir / "nats" / "nats.conf").read_text())["listen"]
    host, port = listen.rsplit(":", 1)
    return nats_url(host, int(port), "admin", stack.credentials()["admin"])


async def _wait_armed(stack: Stack, count: int, within: float) -> float:
    """Seconds until the journal holds the current revision of `count` schedules."""
    started = time.monotonic()
    conn = await asyncpg.connect(stack.database_url())
    try:
        while True:
            armed = await conn.fetchval(
                """SELECT count(*) FROM schedules s JOIN schedule_journal j
                   ON j.schedule_id = s.id AND j.revision = s.revision WHERE s.enabled"""
            )
            if armed >= count:
                return time.monotonic() - started
            if time.monotonic() - started > within:
                raise RuntimeError(f"{armed} of {count} schedules armed after {within} s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _burst_jobs(stack: Stack, due: datetime, count: int) -> list[float]:
    """The lateness of the burst's jobs, once the history has all of them."""
    conn = await asyncpg.connect(stack.database_url())
    try:
        deadline = time.monotonic() + 120
        while True:
            rows = await conn.fetch(
                """SELECT EXTRACT(EPOCH FROM queued_at - due_at)::float8 AS late
                   FROM jobs WHERE due_at = $1 AND status = 'queued'""",
                due,
            )
            if len(rows) >= count or time.monotonic() > deadline:
                return [r["late"] for r in rows]
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def _confirmed(stack: Stack, count: int) -> tuple[float, float]:
    """Seconds from the due instant until the last job of the burst was acknowledged, and
    until its last message (the schedules' fired events) was."""
    deadline = time.monotonic() + 30
    while True:
        batches = [(int(m[1]), float(m[2]), float(m[3])) for m in BATCH_LOG.finditer(stack.logs())]
        if sum(n for n, _, _ in batches) >= count:
            return max(b[1] for b in batches), max(b[2] for b in batches)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the scheduler logged {batches}, not {count} firings")
        time.sleep(0.2)


async def _apscheduler_burst(root: Path) -> tuple[list[float], float]:
    nats = NatsServer(root / "peer-nats", load_credentials(root / "peer-credentials.json"))
    nats.start()
    nc = await bus.connect(nats.url("admin"), "bench")
    try:
        js = nc.jetstream()
        await js.add_stream(name="BENCH", subjects=["bench.>"])
        late: list[float] = []
        published = 0
        done = asyncio.Event()
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)

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
        assert datetime.now(UTC) < due, "APScheduler took the whole lead to add its jobs"
        await asyncio.wait_for(done.wait(), 120)
        acknowledged = (datetime.now(UTC) - due).total_seconds()
        scheduler.shutdown(wait=False)
        return late, acknowledged
    finally:
        await nc.close()
        nats.stop()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _idle_cpu(pids: list[int], seconds: float) -> list[float]:
    """Percent of a core each process used over the same `seconds`."""
    before = [_cpu_s(p) for p in pids]
    time.sleep(seconds)
    return [100 * (_cpu_s(p) - b) / seconds for p, b in zip(pids, before, strict=True)]


def _active_scheduler_pid(stack: Stack) -> int:
    health = stack.get("/health")
    pid: int = next(s["pid"] for s in health["schedulers"] if s["id"] == health["active_scheduler"])
    return pid


async def _idle_peer(count: int) -> None:
    """An APScheduler holding `count` daily jobs, none due soon; says when it holds them."""

    async def fire() -> None:
        raise AssertionError("not due during the benchmark")

    scheduler = AsyncIOScheduler(timezone=UTC)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
    for i in range(count):
        at = start + timedelta(minutes=i % 1380)
        scheduler.add_job(fire, "interval", days=1, start_date=at, misfire_grace_time=None)
    scheduler.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def _with_peer_idle(stack: Stack) -> tuple[float, float, int]:
    """Idle CPU of the active scheduler and of the peer, and how many schedules."""
    peer = subprocess.Popen(
        [sys.executable, "-m", "bench.scheduler", "idle-peer", str(IDLE_SCHEDULES)],
        stdout=subprocess.PIPE,
    )
    try:
        more = IDLE_SCHEDULES - SCHEDULES
        # Due in an hour and more: nothing fires while measured.
        start = minute_ahead(3600)
        asyncio.run(_add_schedules(stack, more, 100, start, 1380))
        enabled = SCHEDULES + more
        asyncio.run(_wait_armed(stack, enabled, 300))
        assert peer.stdout is not None
        assert peer.stdout.readline().strip() == b"ready"
        time.sleep(2)  # the last changes handled
        ours, theirs = _idle_cpu([_active_scheduler_pid(stack), peer.pid], IDLE_S)
        return ours, theirs, enabled
    finally:
        peer.kill()
        peer.wait()


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="pcp-bench-sched-") as tmp:
        root = Path(tmp)
        with running_stack(stack_dir("bench-scheduler"), runners=1) as stack:
            stack.connector("bench-src", "source", str(root))
            # Never initialised, never used: the jobs wait for a runner group with no runner.
            stack.connector("bench-store", "store", str(root / "no-store"))
            due = minute_ahead(20)
            asyncio.run(_add_schedules(stack, SCHEDULES, 1, due, 1))
            arm_s = asyncio.run(_wait_armed(stack, SCHEDULES, 120))
            # The peer runs while ours waits for its minute, when there is time for it.
            lead = (due - datetime.now(UTC)).total_seconds()
            peer = asyncio.run(_apscheduler_burst(root)) if lead > 30 else None
            ours = asyncio.run(_burst_jobs(stack, due, SCHEDULES))
            ours_acked, ours_all = _confirmed(stack, SCHEDULES)
            if peer is None:
                peer = asyncio.run(_apscheduler_burst(root))
            idle, peer_idle, enabled = _with_peer_idle(stack)
    late, peer_acked = peer
    rows = [
        Row(f"{SCHEDULES} tasks' schedules due at once: jobs", len(ours), PEER, len(late), "count"),
        Row("  arming them as announced (setup)", arm_s, "-", None, "s"),
    ]
    for label, fn in (
        ("lateness median", median),
        ("lateness p95", lambda xs: percentile(xs, 95)),
        ("lateness p99", lambda xs: percentile(xs, 99)),
        ("lateness max", max),
    ):
        rows.append(Row(f"  {label}", fn(ours), PEER, fn(late), "s"))
    rows.append(Row("  every job acknowledged (<= 1 s)", ours_acked, PEER, peer_acked, "s"))
    rows.append(Row("  and the schedules' fired events", ours_all, "-", None, "s"))
    rows.append(
        Row(
            f"idle, {enabled} enabled schedules, {IDLE_S:.0f} s (< 2 %)",
            idle,
            f"{PEER}, {IDLE_SCHEDULES} jobs",
            peer_idle,
            "% of a core",
        )
    )
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["idle-peer"]:
    asyncio.run(_idle_peer(int(sys.argv[2])))
