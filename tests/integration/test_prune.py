"""Prune tasks for real: plakar's dry run as a preview, nothing deleted before the
operator confirms, exactly the planned snapshots deleted, and the job's record of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PASSPHRASE = "prune-store-passphrase-2207"


def snapshot_ids(stack: Stack, store: str) -> set[str]:
    return {s["id"] for s in stack.get(f"/connectors/{store}/snapshots")}


def backup(stack: Stack, task: str) -> str:
    job = stack.wait_job(stack.post(f"/tasks/{task}/run", expect=202)["job_id"])
    assert job["status"] == "succeeded", job
    snapshot: str = job["snapshot_id"]
    return snapshot


def test_a_prune_previews_then_deletes_exactly_what_it_showed(stack: Stack, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    store = stack.store("prune-store", tmp_path / "store", PASSPHRASE)
    source = stack.connector("prune-src", "source", str(src))

    def backup_task(label: str) -> str:
        body = {
            "type": "backup",
            "source_id": source,
            "store_id": store,
            "labels": [label],
            # Run on demand only: a task saved without schedules runs once at once.
            "schedules": [{"recurrence": "daily", "enabled": False}],
        }
        task: str = stack.post("/tasks", body, expect=201)["task"]["id"]
        return task

    daily, other = backup_task("daily"), backup_task("other")
    made = []
    for n in range(3):
        (src / "file").write_text(f"version {n}\n")
        made.append(backup(stack, daily))
    untouched = backup(stack, other)
    everything = {*made, untouched}
    assert snapshot_ids(stack, store) == everything

    body: dict[str, Any] = {
        "type": "prune",
        "store_id": store,
        "labels": ["daily"],
        "retention": {"per_day": 1},
    }
    # The preview: the newest of the day kept, the two older deleted; the snapshot the
    # labels do not select is in neither list. Nothing is deleted.
    preview = stack.post("/tasks/preview", body, expect=200)
    assert preview == {"keep": [made[2]], "delete": [made[1], made[0]]}
    assert snapshot_ids(stack, store) == everything

    # Not saved (nor run) until the operator confirms.
    tasks_before = len(stack.get("/tasks"))
    refused = stack.post("/tasks", body, expect=422)
    assert refused["field"] == "confirm" and "preview" in refused["error"]
    assert len(stack.get("/tasks")) == tasks_before
    assert snapshot_ids(stack, store) == everything

    created = stack.post("/tasks", {**body, "confirm": True}, expect=201)
    task = created["task"]
    assert task["retention"] == {"per_day": 1} and "confirm" not in task
    job = stack.wait_job(created["job_id"])
    assert job["status"] == "succeeded", (job, stack.get(f"/jobs/{job['id']}/output"))
    assert job["prune"] == {"kept": [made[2]], "deleted": [made[1], made[0]]}
    assert snapshot_ids(stack, store) == {made[2], untouched}
    commands = [line for line in stack.output_lines(job["id"]) if line.startswith("$ ")]
    assert [" prune " in c and "-apply" not in c for c in commands[:1]] == [True]
    assert " rm -apply " in commands[1] and PASSPHRASE not in "\n".join(commands)

    # Run again: nothing more to delete, and it says so.
    again = stack.wait_job(stack.post(f"/tasks/{task['id']}/run", expect=202)["job_id"])
    assert again["status"] == "succeeded"
    assert again["prune"] == {"kept": [made[2]], "deleted": []}

    # A change of what it deletes needs confirming again; a change of its name does not.
    path = f"/tasks/{task['id']}"
    answer = stack.client.patch(path, json={"retention": {"days": 1, "per_day": 2}})
    assert answer.status_code == 422 and answer.json()["field"] == "confirm", answer.text
    assert stack.client.patch(path, json={"name": "tidy"}).status_code == 200
    answer = stack.client.patch(path, json={"retention": {"days": 1}, "confirm": True})
    assert answer.status_code == 200 and answer.json()["retention"] == {"days": 1}


def test_a_prune_that_cannot_plan_deletes_nothing(stack: Stack, tmp_path: Path) -> None:
    store = stack.store("prune-locked", tmp_path / "store", PASSPHRASE)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    source = stack.connector("prune-locked-src", "source", str(src))
    made = stack.wait_job(
        stack.post(
            "/tasks", {"type": "backup", "source_id": source, "store_id": store}, expect=201
        )["job_id"]
    )
    assert made["status"] == "succeeded"
    # The same store under a wrong passphrase: plakar cannot read it.
    wrong = stack.connector(
        "prune-wrong", "store", str(tmp_path / "store"), passphrase="not-the-passphrase-0000"
    )
    body = {"type": "prune", "store_id": wrong, "retention": {"days": 1}}
    failed = stack.client.post("/tasks/preview", json=body)
    assert failed.status_code in (409, 502), failed.text
    job = stack.wait_job(stack.post("/tasks", {**body, "confirm": True}, expect=201)["job_id"])
    assert job["status"] == "failed" and job["prune"] is None, job
    assert snapshot_ids(stack, store) == {made["snapshot_id"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "check"}, "type"),
        ({"type": "prune"}, "retention"),
        ({"type": "prune", "retention": {"weeks": 2}}, None),  # an unknown key: 400
        ({"type": "prune", "retention": {"per_day": 0}}, "retention.per_day"),
        ({"type": "prune", "retention": {"days": 1}, "excludes": ["x"]}, "excludes"),
    ],
)
def test_a_preview_takes_only_a_valid_prune(
    stack: Stack, tmp_path: Path, body: dict[str, Any], field: str | None
) -> None:
    store = stack.store(f"prune-rules-{tmp_path.name}", tmp_path / "store")
    answer = stack.client.post("/tasks/preview", json={**body, "store_id": store})
    if field is None:
        assert answer.status_code == 400, answer.text
    else:
        assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
