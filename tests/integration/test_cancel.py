"""Cancel: a running backup stops (SIGINT, then SIGKILL) and no plakar is left; a
queued job never starts; a finished one answers 409."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.procs import processes
from tests.support.stack import Stack, many_files

pytestmark = pytest.mark.integration


def run_cache_dir(stack: Stack, job_id: str) -> str:
    """The cache directory of the job's plakar, from the command line in its output."""
    for line in stack.output_lines(job_id):
        if line.startswith("$ ") and " backup " in line:
            args = line.split()
            return args[args.index("-cachedir") + 1]
    raise AssertionError("no plakar command in the output")


def test_cancel_running_queued_and_finished_jobs(stack: Stack, tmp_path: Path) -> None:
    src = stack.connector("cancel-src", "source", str(many_files(tmp_path / "src", 30_000)))
    stores = [stack.store(f"cancel-store-{i}", tmp_path / f"store{i}") for i in range(3)]

    def backup(store: str) -> str:
        body = {"type": "backup", "source_id": src, "store_id": store, "concurrency": 1}
        job_id: str = stack.post("/tasks", body, expect=201)["job_id"]
        return job_id

    # Two long backups keep both runners busy; the third waits in the queue.
    running = [backup(stores[0]), backup(stores[1])]
    for job_id in running:
        stack.wait_running(job_id)
    queued = backup(stores[2])
    assert stack.get(f"/jobs/{queued}")["status"] == "queued"

    answer = stack.post(f"/jobs/{queued}/cancel", {"by": "ops on call"}, expect=200)
    assert answer["status"] == "cancelled" and answer["by"] == "ops on call"

    cache_dirs = [run_cache_dir(stack, job_id) for job_id in running]
    assert all(processes(d) for d in cache_dirs), "plakar should be running"
    asked = time.monotonic()
    first = stack.post(f"/jobs/{running[0]}/cancel", {"by": "ann"}, expect=202)
    assert first["status"] == "cancelling"
    assert stack.post(f"/jobs/{running[1]}/cancel", expect=202)["by"] == "admin (plakar-cp up)"
    assert "being cancelled" in stack.post(f"/jobs/{running[0]}/cancel", expect=409)["error"]

    for job_id, who in zip(running, ("ann", "admin (plakar-cp up)"), strict=True):
        job = stack.wait_job(job_id, timeout=30)
        assert job["status"] == "cancelled", job
        took = time.monotonic() - asked
        assert took < 10, "cancel must end the job within 10 s"
        print(f"\ncancel -> {job['status']} in {took:.2f}s")
        assert job["error"] == f"cancelled by {who}"
        assert any(
            line.startswith(f"cancelled by {who} at ") for line in stack.output_lines(job_id)
        )
    for cache_dir in cache_dirs:
        deadline = time.monotonic() + 5
        while processes(cache_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes(cache_dir) == [], "no plakar process may outlive the job"

    # The runners are free again and take the queue in order: once a later job has
    # run, the cancelled one's turn has come and gone without it starting.
    small = stack.connector("cancel-small", "source", str(many_files(tmp_path / "small", 3)))
    later = stack.post(
        "/tasks", {"type": "backup", "source_id": small, "store_id": stores[2]}, expect=201
    )["job_id"]
    assert stack.wait_job(later)["status"] == "succeeded"
    job = stack.get(f"/jobs/{queued}")
    assert job["status"] == "cancelled" and job["attempt"] == 0
    assert job["started_at"] is None and job["runner"] is None
    assert job["error"] == "cancelled by ops on call"
    (line,) = stack.output_lines(queued)
    assert line.startswith("cancelled by ops on call at ") and "before it started" in line

    for job_id in (queued, running[0], later):
        refused = stack.post(f"/jobs/{job_id}/cancel", expect=409)
        assert refused["error"].startswith("job already")


def test_cancel_bad_requests(stack: Stack) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert stack.post(f"/jobs/{unknown}/cancel", expect=404)["error"] == "job not found"
    assert stack.post("/jobs/nope/cancel", expect=404)["error"] == "job not found"
    assert stack.post(f"/jobs/{unknown}/cancel", {"by": " "}, expect=422)["field"] == "by"
    assert stack.post(f"/jobs/{unknown}/cancel", {"who": "x"}, expect=400)["error"]
