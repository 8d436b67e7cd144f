"""A one-off backup saved through the API runs for real on a runner."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import plakar_run
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PASSPHRASE = "correct-horse-battery-staple-8472"


def make_tree(root: Path) -> None:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "note.txt").write_text("hello plakar\n")
    (root / "data.bin").write_bytes(os.urandom(256 * 1024))


def test_one_off_backup_produces_a_real_snapshot(stack: Stack, plakar: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    source = stack.connector("e2e-src", "source", str(src))
    store = stack.store("e2e-store", tmp_path / "store", PASSPHRASE)

    started = time.monotonic()
    created = stack.post(
        "/tasks",
        {"type": "backup", "source_id": source, "store_id": store, "labels": ["nightly"]},
        expect=201,
    )
    assert created["task"]["type"] == "backup"
    job = stack.wait_job(created["job_id"])
    elapsed = time.monotonic() - started

    assert job["status"] == "succeeded", (job, stack.get(f"/jobs/{job['id']}/output"))
    assert job["exit_code"] == 0 and job["error"] is None
    assert job["trigger"] == "manual" and job["attempt"] == 1
    assert job["runner"].startswith("runner-")
    assert job["concurrency"] >= 1
    assert len(job["snapshot_id"]) == 64
    assert job["snapshot_url"].endswith(job["snapshot_id"])
    queued, begun, ended = (
        datetime.fromisoformat(job[k]) for k in ("queued_at", "started_at", "finished_at")
    )
    assert queued <= begun <= ended
    assert job["progress"]["percent"] == 100.0 and job["progress"]["files"] >= 2

    # plakar itself knows the snapshot, with the task's label as a tag.
    listing = plakar_run(
        plakar,
        tmp_path / "check",
        "at",
        str(tmp_path / "store"),
        "ls",
        "-uuid",
        "-tags",
        passphrase=PASSPHRASE,
    )
    assert job["snapshot_id"] in listing
    assert "tags=nightly" in listing

    output = stack.get(f"/jobs/{job['id']}/output")
    assert "backup completed without errors" in output
    assert f"{job['snapshot_id'][:8]}: OK ✓ {src}/data.bin" in output
    assert "$ " in output and " backup " in output
    assert PASSPHRASE not in output
    assert PASSPHRASE not in stack.logs()
    print(f"\nend-to-end backup: {elapsed:.2f}s from POST /tasks to succeeded")


def test_failed_open_is_a_clear_failure(stack: Stack, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    source = stack.connector("nostore-src", "source", str(src))
    # Never initialised: plakar cannot open it (exit code 66).
    store = stack.connector("nostore", "store", str(tmp_path / "missing"))
    job_id = stack.post(
        "/tasks", {"type": "backup", "source_id": source, "store_id": store}, expect=201
    )["job_id"]
    job = stack.wait_job(job_id)
    assert job["status"] == "failed"
    assert job["exit_code"] == 66
    assert job["error"].startswith("store cannot be opened")
    assert job["snapshot_id"] is None
