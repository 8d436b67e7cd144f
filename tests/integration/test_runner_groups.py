"""Runner slots and runner groups ("run on"), with runners of the tests' own started
beside the shared stack's as `plakar-cp runner --group NAME --slots K` (real plakar)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.procs import argv, children
from tests.support.runners import extra_runner, live_group
from tests.support.stack import Stack, many_files, stop

pytestmark = pytest.mark.integration

# Files of a backup that takes a few seconds at concurrency 1.
FILES = 4000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what}: not after {timeout}s"
        time.sleep(0.05)


def task(stack: Stack, tmp_path: Path, name: str, group: str | None, files: int = 5) -> str:
    """A backup task of `group` (its connectors name none), with a disabled schedule so
    that saving it runs nothing; returns its id."""
    body = {
        "type": "backup",
        "name": name,
        "source_id": stack.connector(f"{name}-src", "source", str(many_files(tmp_path, files))),
        "store_id": stack.store(f"{name}-store", tmp_path.with_name(f"{tmp_path.name}-store")),
        "concurrency": 1,
        "runner_group": group,
        "schedules": [{"recurrence": "daily", "enabled": False}],
    }
    created = stack.post("/tasks", body, expect=201)["task"]
    assert created["runner_group"] == group
    task_id: str = created["id"]
    return task_id


def run(stack: Stack, task_id: str) -> str:
    job_id: str = stack.post(f"/tasks/{task_id}/run", expect=202)["job_id"]
    return job_id


def attempts(stack: Stack, job_ids: list[str]) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(stack.database_url())
        try:
            return await conn.fetch(
                """SELECT job_id::text, attempt, runner, status, started_at, finished_at
                   FROM job_attempts WHERE job_id = ANY($1::uuid[]) ORDER BY started_at""",
                job_ids,
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    most = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


def test_a_task_of_a_group_runs_only_on_that_groups_runners(stack: Stack, tmp_path: Path) -> None:
    group = unique("b")
    task_id = task(stack, tmp_path / "src", "group-only", group)
    with extra_runner(stack, tmp_path / "runners", f"{group}-r1", group):
        jobs = [run(stack, task_id) for _ in range(3)]
        ended = [stack.wait_job(j) for j in jobs]
    assert [(j["status"], j["runner"], j["runner_group"]) for j in ended] == [
        ("succeeded", f"{group}-r1", group)
    ] * 3
    # Without a group, a task's jobs stay on the default group's runners.
    default = task(stack, tmp_path / "src2", "group-default", None)
    job = stack.wait_job(run(stack, default))
    assert job["status"] == "succeeded" and job["runner"].startswith("runner-"), job
    assert job["runner_group"] is None


def test_a_group_without_live_runners_says_why_its_job_and_actions_wait(
    stack: Stack, tmp_path: Path
) -> None:
    group = unique("later")
    task_id = task(stack, tmp_path / "src", "group-later", group)
    job_id = run(stack, task_id)
    reason = f"no runner of group {group} is live"
    job = stack.get(f"/jobs/{job_id}")
    assert (job["status"], job["waiting"]) == ("queued", reason)
    listed = stack.get("/jobs", task_id=task_id)["items"]
    assert [(j["id"], j["waiting"]) for j in listed] == [(job_id, reason)]
    store = stack.connector(f"{group}-store", "store", str(tmp_path / "s"))
    assert stack.client.patch(f"/connectors/{store}", json={"runner_group": group}).is_success
    asked = time.monotonic()
    r = stack.client.post(f"/connectors/{store}/initialize")
    assert r.status_code == 503 and group in r.json()["error"], r.text
    assert time.monotonic() - asked < 5, "no live runner of the group: answered at once"
    time.sleep(1)  # still queued: nobody else takes it
    assert stack.get(f"/jobs/{job_id}")["status"] == "queued"

    with extra_runner(stack, tmp_path / "runners", f"{group}-r1", group):
        job = stack.wait_job(job_id)
        assert (job["status"], job["runner"], job["waiting"]) == (
            "succeeded",
            f"{group}-r1",
            None,
        )
        assert stack.post(f"/connectors/{store}/initialize", expect=200)["ok"] is True
        idle = {"name": group, "runners": 1, "slots": 1, "running": 0}
        wait_until(lambda: live_group(stack, group) == idle, 10, "the runner says it is idle")
    wait_until(lambda: live_group(stack, group) is None, 10, "the stopped runner leaves")


def test_a_task_and_its_connectors_agree_on_their_group(stack: Stack, tmp_path: Path) -> None:
    near, far = unique("near"), unique("far")
    source = stack.connector("agree-src", "source", str(tmp_path))
    assert stack.client.patch(f"/connectors/{source}", json={"runner_group": near}).is_success
    store = stack.connector("agree-store", "store", str(tmp_path / "store"))  # any group
    body: dict[str, Any] = {"type": "backup", "source_id": source, "store_id": store}
    schedules = [{"recurrence": "daily", "enabled": False}]
    r = stack.client.post("/tasks", json={**body, "runner_group": far, "schedules": schedules})
    assert r.status_code == 422 and r.json()["field"] == "runner_group", r.text
    assert near in r.json()["error"] and far in r.json()["error"]
    # Naming none, the task takes its source's group.
    created = stack.post("/tasks", {**body, "schedules": schedules}, expect=201)["task"]
    assert created["runner_group"] == near
    # The source cannot move to another group while a task of its group uses it.
    r = stack.client.patch(f"/connectors/{source}", json={"runner_group": far})
    assert r.status_code == 422 and r.json()["field"] == "runner_group", r.text
    bad = stack.client.post("/tasks", json={**body, "runner_group": "Not A Group"})
    assert bad.status_code == 422 and bad.json()["field"] == "runner_group", bad.text
    rule = stack.get("/rules")["runner_groups"]
    assert rule["default"] == "default" and rule["pattern"].startswith("^")


def test_a_runner_with_two_slots_runs_two_jobs_at_once_and_gives_both_back_on_stop(
    stack: Stack, tmp_path: Path
) -> None:
    group = unique("slots")
    task_id = task(stack, tmp_path / "src", "slots", group, files=FILES)
    runners = tmp_path / "runners"
    with extra_runner(stack, runners, f"{group}-r1", group, slots=2) as first:
        jobs = [run(stack, task_id) for _ in range(4)]

        def running() -> list[str]:
            return [j for j in jobs if stack.get(f"/jobs/{j}")["status"] == "running"]

        wait_until(lambda: len(running()) == 2, 60, "two jobs running")
        held = running()

        # Both plakar backups are stopped (SIGSTOP) once begun: however fast plakar is,
        # the runner's stop finds them running. The runner's SIGKILL ends them anyway.
        def backups() -> list[int]:
            return [pid for pid in children(first.pid) if "backup" in argv(pid)]

        wait_until(lambda: len(backups()) == 2, 60, "two plakar backups at once")
        for pid in backups():
            os.kill(pid, signal.SIGSTOP)
        queued = [stack.get(f"/jobs/{j}") for j in jobs if j not in held]
        assert {(j["status"], j["waiting"]) for j in queued} == {
            ("queued", f"its runner is busy: 2 of 2 jobs at once (group {group})")
        }
        assert live_group(stack, group) == {"name": group, "runners": 1, "slots": 2, "running": 2}
        stop(first)  # SIGTERM: both running jobs go back to the queue
    said = f"runner {group}-r1 stopped; the job will be retried"

    def told(job: str) -> bool:
        return any(said in line for line in stack.output_lines(job))

    for j in held:
        # The runner has published it; the history writes it a moment later.
        wait_until(partial(told, j), 10, said)
        assert stack.get(f"/jobs/{j}")["status"] in ("queued", "running")

    with extra_runner(stack, runners, f"{group}-r2", group, slots=2):
        ended = [stack.wait_job(j, timeout=120) for j in jobs]
    assert [j["status"] for j in ended] == ["succeeded"] * 4, ended
    rows = attempts(stack, jobs)
    assert {(r["job_id"], r["status"]) for r in rows if r["runner"] == f"{group}-r1"} == {
        (j, "lost") for j in held
    }
    second = [r for r in rows if r["runner"] == f"{group}-r2"]
    assert sorted(r["job_id"] for r in second) == sorted(jobs)
    assert all(r["status"] == "succeeded" for r in second)
    assert most_at_once([(r["started_at"], r["finished_at"]) for r in second]) == 2
