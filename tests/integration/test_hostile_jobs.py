"""One bad job never takes a runner down: messages that are not jobs, claims that are
not claims, a plakar that cannot start, output lines of kilobytes, a job NATS gives up
on. Each ends its own job `failed` with the reason, and the runners serve the next."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from shared import subjects as s
from shared.dispatch import job_messages
from shared.ids import new_id
from shared.models import Task
from tests.support.infra import external_services
from tests.support.stack import Stack, many_files, running_stack, stack_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(external_services() is not None, reason="needs the embedded NATS users"),
]

# Low enough to reach in a test: two deliveries of a job message, then NATS gives up.
MAX_DELIVERIES = 2


@pytest.fixture(scope="module")
def hostile() -> Iterator[Stack]:
    data = stack_dir("hostile")
    env = {"PLAKAR_CP_MAX_DELIVERIES": str(MAX_DELIVERIES), "PLAKAR_CP_MAX_ATTEMPTS": "5"}
    with running_stack(data, runners=2, env=env) as stack:
        yield stack


def admin_url(stack: Stack) -> str:
    """NATS as its admin user: able to publish anything, as a compromised service could."""
    password = json.loads((stack.data_dir / "credentials.json").read_text())["admin"]
    host_port = stack.endpoints["events_nats_url"].rsplit("@", 1)[1]
    return f"nats://admin:{password}@{host_port}"


def publish(
    stack: Stack, messages: list[tuple[str, bytes]], claim: tuple[str, bytes] | None = None
) -> None:
    async def run() -> None:
        nc = await nats.connect(admin_url(stack))
        try:
            js = nc.jetstream()
            if claim is not None:
                kv = await js.key_value(s.CLAIMS_BUCKET)
                await kv.put(*claim)
            for subject, payload in messages:
                await js.publish(subject, payload)
        finally:
            await nc.close()

    asyncio.run(run())


def a_task(stack: Stack, tmp_path: Path, name: str) -> Task:
    """A real backup task that runs only when asked (a disabled schedule)."""
    source = stack.connector(f"{name}-src", "source", str(many_files(tmp_path / name, 5)))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store")
    body = {"type": "backup", "name": name, "source_id": source, "store_id": store}
    disabled = [{"recurrence": "daily", "enabled": False}]
    created = stack.post("/tasks", {**body, "schedules": disabled}, expect=201)
    return msgspec.convert(created["task"], Task)


def queue(stack: Stack, task: Task, due: bytes | None = None, claim: bytes | None = None) -> str:
    """A job queued as the api queues it, with its job-due message replaced by `due`
    and its claim already set to `claim` when given."""
    job_id = new_id()
    queued, real_due = job_messages(task, "manual", job_id)
    publish(
        stack,
        [(queued.subject, queued.payload), (s.JOB_DUE, due or real_due.payload)],
        claim=(job_id, claim) if claim is not None else None,
    )
    return job_id


def runners_still_serve(stack: Stack, task: Task) -> None:
    job_id = stack.post(f"/tasks/{task.id}/run", expect=202)["job_id"]
    assert stack.wait_job(job_id)["status"] == "succeeded"
    assert " exited (" not in stack.up_log.read_text()


def failed_with(stack: Stack, job_id: str, reason: str) -> dict[str, Any]:
    job = stack.wait_job(job_id, timeout=90)
    assert job["status"] == "failed", job
    assert reason in (job["error"] or ""), job
    assert any(reason in line for line in stack.output_lines(job_id))
    return job


def test_messages_that_are_not_jobs(hostile: Stack, tmp_path: Path) -> None:
    task = a_task(hostile, tmp_path, "garbled")
    publish(hostile, [(s.JOB_DUE, b"\xff\xfe not json"), (s.JOB_DUE, b'{"job_id": "../x"}')])
    job_id = new_id()
    queued, _ = job_messages(task, "manual", job_id)
    garbled = json.dumps({"job_id": job_id, "task": "not a task"}).encode()
    publish(hostile, [(queued.subject, queued.payload), (s.JOB_DUE, garbled)])
    failed_with(hostile, job_id, "the job's message cannot be read")
    runners_still_serve(hostile, task)


def test_a_claim_that_is_not_a_claim(hostile: Stack, tmp_path: Path) -> None:
    task = a_task(hostile, tmp_path, "badclaim")
    job_id = queue(hostile, task, claim=b"\x00garbage")
    failed_with(hostile, job_id, "the job's claim cannot be read")
    runners_still_serve(hostile, task)


def test_a_plakar_that_cannot_start(hostile: Stack, tmp_path: Path) -> None:
    """Thousands of labels (the api refuses more than 32) make plakar's argument list
    longer than the kernel takes: exec fails with E2BIG."""
    task = a_task(hostile, tmp_path, "e2big")
    huge = msgspec.structs.replace(task, labels=[f"{i:05d}-{'x' * 58}" for i in range(3000)])
    job_id = queue(hostile, huge)
    failed_with(hostile, job_id, "could not start plakar: Argument list too long")
    runners_still_serve(hostile, task)


def deep_tree(root: Path, files: int) -> Path:
    """Files at the end of a path of about 3,500 bytes: plakar prints a line of that
    length for each, some 2 MiB per 500 lines (twice NATS's max payload)."""
    deep = root
    for level in range(14):
        deep /= f"{level:02d}" + "d" * 240
    deep.mkdir(parents=True)
    for i in range(files):
        (deep / (f"{i:04d}" + "f" * 200)).write_text(str(i))
    return root


def test_output_lines_of_kilobytes(hostile: Stack, tmp_path: Path) -> None:
    source = hostile.connector("deep-src", "source", str(deep_tree(tmp_path / "deep", 800)))
    store = hostile.store("deep-store", tmp_path / "deep-store")
    body = {"type": "backup", "source_id": source, "store_id": store}
    job_id = hostile.post("/tasks", body, expect=201)["job_id"]
    job = hostile.wait_job(job_id, timeout=120)
    assert job["status"] == "succeeded", job
    lines = hostile.output_lines(job_id)
    files = [line for line in lines if "OK ✓" in line and line.endswith("f" * 200)]
    assert len(files) == 800
    assert max(len(line.encode()) for line in lines) > 3500


def test_a_job_nats_gives_up_on(hostile: Stack, tmp_path: Path) -> None:
    """Its runner killed at each delivery: after the most deliveries NATS gives up on the
    message, and a runner records the job failed instead of leaving it running."""
    source = hostile.connector("given-src", "source", str(many_files(tmp_path / "src", 4000)))
    store = hostile.store("given-store", tmp_path / "given-store")
    body = {"type": "backup", "source_id": source, "store_id": store, "concurrency": 1}
    job_id = hostile.post("/tasks", body, expect=201)["job_id"]
    for attempt in range(1, MAX_DELIVERIES + 1):
        deadline = time.monotonic() + 60
        while (job := hostile.get(f"/jobs/{job_id}"))["attempt"] != attempt:
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        hostile.wait_running(job_id, lines=10)
        runners = hostile.get("/health", expect=None)["runners"]
        pid = next(r["pid"] for r in runners if r["id"] == job["runner"])
        os.kill(pid, signal.SIGKILL)
    job = failed_with(hostile, job_id, f"delivered {MAX_DELIVERIES} times, the most allowed")
    assert job["attempt"] == MAX_DELIVERIES
    task_id = job["task_id"]
    again = hostile.post(f"/tasks/{task_id}/run", expect=202)["job_id"]
    assert hostile.wait_job(again, timeout=120)["status"] == "succeeded"
