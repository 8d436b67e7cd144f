"""Reliability under faults, on stacks of their own: a runner, PostgreSQL or NATS
killed mid-job (`kill -9`: the supervisor starts them again), NATS frozen longer than
the ack wait. No job is lost, none runs twice at once, and the history ends up complete."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.infra import external_services
from tests.support.procs import processes
from tests.support.stack import Stack, many_files, running_stack, stack_dir

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
    # A job's last lines may be stored after its end is (the history writes its batches
    # as they come; one held back by the outage is written again later): wait for them,
    # a lost line never comes.
    deadline = time.monotonic() + 30
    while True:
        rows = query(
            stack, "SELECT seq, line FROM job_output WHERE job_id = $1 ORDER BY seq", job_id
        )
        start = max(i for i, r in enumerate(rows) if ATTEMPT_LINE in r["line"])
        last = [r["line"] for r in rows[start:]]
        backed_up = {
            line.rsplit("/", 1)[1] for line in last if "OK ✓" in line and line.endswith(".bin")
        }
        if len(backed_up) == files or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len({r["seq"] for r in rows}) == len(rows)
    assert len(backed_up) == files, f"{len(backed_up)} of {files} files in the output"
    assert any("backup completed without errors" in line for line in last), last[-5:]
    return rows


def wait_for(ready: Callable[[], bool], timeout: float, every: float = 0.02) -> float:
    """Seconds until `ready()` held, asked `every` so many seconds; fails after
    `timeout`. A probe that connects to a server (a new session, its password checked)
    is asked less often: at every 20 ms it would take a good part of the machine from
    what it watches."""
    start = time.monotonic()
    while not ready():
        assert time.monotonic() - start < timeout, f"not ready after {timeout}s"
        time.sleep(every)
    return time.monotonic() - start


def wait_for_one(found: Callable[[], list[int]], timeout: float = 60) -> int:
    """The one process `found()` finds, once it finds one."""
    start = time.monotonic()
    while len(pids := found()) != 1:
        assert time.monotonic() - start < timeout, f"no one process after {timeout}s: {pids}"
        time.sleep(0.02)
    return pids[0]


def seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


@pytest.mark.timeout(180)
def test_runner_killed_mid_job_is_retried_once_elsewhere(tmp_path: Path) -> None:
    source = many_files(tmp_path / "src", FILES)
    with running_stack(stack_dir("faults"), runners=2) as stack:
        job_id = backup(stack, source, tmp_path / "store", "killed")
        # plakar's command line names the task (`-job killed`); its cache daemon's does not.
        with most_at_once(lambda: len(processes("backup", "killed"))) as at_once:
            stack.wait_running(job_id)
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


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the PostgreSQL server, once it accepts connections."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    ready = len(lines) >= 8 and lines[7].strip() == "ready"
    return int(lines[0]) if ready and Path(f"/proc/{lines[0]}").exists() else None


class HealthWatch:
    """Samples GET /health every 20 ms in the background: the statuses seen."""

    def __init__(self, stack: Stack) -> None:
        self.seen: list[tuple[int, dict[str, Any]]] = []
        self._url = f"{stack.endpoints['api_url']}/health"
        self._auth = {"Authorization": f"Bearer {stack.token}"}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        # One client: a new one costs a TLS context, some 20 ms of CPU a sample.
        with httpx.Client(headers=self._auth, timeout=10) as http:
            while not self._done.is_set():
                try:
                    r = http.get(self._url)
                    self.seen.append((r.status_code, r.json()))
                except httpx.HTTPError:
                    pass
                self._done.wait(0.02)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def small_jobs(stack: Stack, tmp_path: Path, name: str, count: int) -> list[str]:
    """`count` small backups of one task, queued now; returns their jobs."""
    source = stack.connector(f"{name}-src", "source", str(many_files(tmp_path / name, 20)))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store")
    body = {"type": "backup", "name": name, "source_id": source, "store_id": store}
    task = stack.post(
        "/tasks", {**body, "schedules": [{"recurrence": "daily", "enabled": False}]}, expect=201
    )
    return [
        stack.post(f"/tasks/{task['task']['id']}/run", expect=202)["job_id"] for _ in range(count)
    ]


def kill_and_heal(
    stack: Stack,
    tmp_path: Path,
    name: str,
    kill: Callable[[], None],
    restarted: Callable[[], bool],
    part: str,
) -> None:
    """Kill a part of the embedded stack (kill -9) while both runners run a long backup
    and small jobs wait in the queue; it must be back within 5 s, every job end with its
    true status (none lost, none run twice), and a job queued after the kill succeed."""
    source = many_files(tmp_path / "src", FILES)
    long_ones = {f"{name}-{i}": "" for i in (1, 2)}
    for task in long_ones:
        long_ones[task] = backup(stack, source, tmp_path / task, task)
    # No runner is killed here: every plakar of the stack stays one of its processes.
    up = stack.process.pid
    with (
        most_at_once(lambda: len(processes("backup", f"{name}-1", under=up))) as first_at_once,
        most_at_once(lambda: len(processes("backup", f"{name}-2", under=up))) as second_at_once,
    ):
        for job_id in long_ones.values():
            stack.wait_running(job_id)
        # Both long backups are held (SIGSTOP) while the small jobs are queued: however
        # fast plakar is, both runners are still busy when the small jobs are looked at.
        held = [wait_for_one(partial(processes, "backup", task, under=up)) for task in long_ones]
        for pid in held:
            os.kill(pid, signal.SIGSTOP)
        queued = small_jobs(stack, tmp_path, f"{name}-small", 3)
        assert {stack.get(f"/jobs/{j}")["status"] for j in queued} == {"queued"}
        with HealthWatch(stack) as health:
            killed = time.monotonic()
            kill()
            for pid in held:
                os.kill(pid, signal.SIGCONT)
            back = wait_for(restarted, timeout=5)
            after = backup(
                stack, many_files(tmp_path / "after", 20), tmp_path / "s2", f"{name}-after"
            )
            assert stack.wait_job(after, timeout=90)["status"] == "succeeded"
            new_job_s = time.monotonic() - killed
            wait_for(lambda: bool(health.seen) and health.seen[-1][0] == 200, timeout=30)
        for job_id in long_ones.values():
            job = stack.wait_job(job_id, timeout=120)
            assert job["status"] == "succeeded" and job["attempt"] == 1, job
            last_attempt_output(stack, job_id, FILES)
    assert first_at_once[0] == second_at_once[0] == 1, "two plakars ran one job at once"
    for job_id in [*queued, after]:
        job = stack.wait_job(job_id)
        assert job["status"] == "succeeded" and job["attempt"] == 1, job
        last_attempt_output(stack, job_id, 20)
    degraded = [body for code, body in health.seen if code == 503]
    assert degraded and all(body["status"] == "degraded" for body in degraded), health.seen[:3]
    assert any(not body[part] for body in degraded), degraded[:3]
    up_log = stack.up_log.read_text()
    exited = [line for line in up_log.splitlines() if " exited (" in line]
    assert len(exited) == 1 and exited[0].startswith(SUPERVISED[part]), exited
    print(
        f"\n{SUPERVISED[part]} killed: serving again in {back:.2f}s; a job queued right "
        f"after the kill succeeded {new_job_s:.1f}s after it; the 2 running and 3 queued "
        f"jobs all succeeded, each in one attempt"
    )


SUPERVISED = {"postgres": "postgres", "nats": "nats-server"}


@embedded_only
@pytest.mark.timeout(240)
def test_postgres_killed_is_restarted_and_no_job_is_lost(tmp_path: Path) -> None:
    with running_stack(stack_dir("faults"), runners=2) as stack:
        pgdata = stack.data_dir / "pg"
        before = postmaster_pid(pgdata)
        assert before is not None

        def kill() -> None:
            os.kill(before, signal.SIGKILL)

        def restarted() -> bool:
            pid = postmaster_pid(pgdata)
            return pid is not None and pid != before

        kill_and_heal(stack, tmp_path, "pgkill", kill, restarted, "postgres")


@embedded_only
@pytest.mark.timeout(240)
def test_nats_killed_is_restarted_and_no_job_is_lost(tmp_path: Path) -> None:
    with running_stack(stack_dir("faults"), runners=2) as stack:
        conf = str(stack.data_dir / "nats" / "nats.conf")
        (before,) = processes("-c", conf)
        port = int(stack.endpoints["events_nats_url"].rsplit(":", 1)[1])

        def kill() -> None:
            os.kill(before, signal.SIGKILL)

        def restarted() -> bool:
            if processes("-c", conf) in ([], [before]):
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as c:
                    return c.recv(4).startswith(b"INFO")
            except OSError:
                return False

        kill_and_heal(stack, tmp_path, "natskill", kill, restarted, "nats")


# Longer than a publish's timeout (5 s) and the tests' ack wait (6 s).
NATS_OUTAGE_S = 8.0


@embedded_only
@pytest.mark.timeout(180)
def test_nats_unresponsive_longer_than_the_ack_wait_loses_no_job(tmp_path: Path) -> None:
    """A NATS server that stops answering (frozen, not dead: nothing restarts it)."""
    source = many_files(tmp_path / "src", FILES)
    with running_stack(stack_dir("faults"), runners=2) as stack:
        conf = str(stack.data_dir / "nats" / "nats.conf")
        (pid,) = processes("-c", conf)
        job_id = backup(stack, source, tmp_path / "store", "natsfrozen")
        up = stack.process.pid  # no runner is killed: every plakar is one of the stack's
        with most_at_once(lambda: len(processes("backup", "natsfrozen", under=up))) as at_once:
            stack.wait_running(job_id)
            os.kill(pid, signal.SIGSTOP)
            time.sleep(NATS_OUTAGE_S)  # clients find nobody answering meanwhile
            os.kill(pid, signal.SIGCONT)
            resumed = time.monotonic()
            # The job running across the outage goes on where it was and ends whole.
            job = stack.wait_job(job_id, timeout=90)
        finished = time.monotonic() - resumed
        assert job["status"] == "succeeded" and job["attempt"] == 1, job
        assert at_once[0] == 1, "two plakar processes ran the job at once"
        last_attempt_output(stack, job_id, FILES)

        # Every service is back, and a job queued now runs and is recorded.
        small = many_files(tmp_path / "small", 20)
        after = backup(stack, small, tmp_path / "store2", "natsafter")
        assert stack.wait_job(after, timeout=60)["status"] == "succeeded"
        last_attempt_output(stack, after, 20)
        assert " exited (" not in stack.up_log.read_text(), "a service died"
        print(
            f"\nnats frozen {NATS_OUTAGE_S:.0f}s: the running job ended {finished:.1f}s after "
            f"NATS answered again; a new job succeeded {time.monotonic() - resumed:.1f}s after"
        )
