"""Backup, restore, sync and check for real, with labels, windows and encrypted stores."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import plakar_run, snapshot_paths
from tests.support.plakar import damage_file_data
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PASS_A = "first-store-passphrase-5931"
PASS_B = "second-store-passphrase-7720"


def digest(root: Path) -> dict[str, str]:
    """Every regular file under root, by relative path, with the hash of its bytes."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def write_tree(root: Path, version: int) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "version").write_text(f"v{version}\n")
    (root / f"only-in-v{version}.bin").write_bytes(os.urandom(64 * 1024))
    (root / "big.bin").write_bytes(os.urandom(512 * 1024 + version))


def run(stack: Stack, task_id: str) -> dict[str, Any]:
    job_id = stack.post(f"/tasks/{task_id}/run", expect=202)["job_id"]
    job = stack.wait_job(job_id)
    assert job["status"] == "succeeded", (job, stack.get(f"/jobs/{job_id}/output"))
    return job


def test_backup_restore_latest_labelled_and_older_by_id(stack: Stack, tmp_path: Path) -> None:
    src = tmp_path / "src"
    store = stack.store("ops-store", tmp_path / "store", PASS_A)
    source = stack.connector("ops-src", "source", str(src))
    write_tree(src, 1)
    first_digest = digest(src)
    # Saved without schedules: the POST runs it once.
    created = stack.post(
        "/tasks",
        {"type": "backup", "source_id": source, "store_id": store, "labels": ["weekly"]},
        expect=201,
    )
    weekly = created["task"]["id"]
    first = stack.wait_job(created["job_id"])
    assert first["status"] == "succeeded", stack.get(f"/jobs/{first['id']}/output")
    write_tree(src, 2)
    second_digest = digest(src)
    second = run(stack, weekly)
    # A newer snapshot without the label must not be the one restored.
    daily = stack.post(
        "/tasks",
        {"type": "backup", "source_id": source, "store_id": store, "labels": ["daily"]},
        expect=201,
    )
    write_tree(src, 3)
    assert stack.wait_job(daily["job_id"])["status"] == "succeeded"

    latest_dest = tmp_path / "restore-latest"
    dest = stack.connector("ops-dest-latest", "destination", str(latest_dest))
    restore = stack.post(
        "/tasks",
        {
            "type": "restore",
            "store_id": store,
            "destination_id": dest,
            "labels": ["weekly"],
            "restore_mode": "overwrite",
        },
        expect=201,
    )
    job = stack.wait_job(restore["job_id"])
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    assert job["snapshot_id"] == second["snapshot_id"]
    assert digest(latest_dest) == second_digest
    # One label: plakar picks the latest snapshot carrying it by itself.
    commands = [line for line in stack.output_lines(job["id"]) if line.startswith("$ ")]
    assert len(commands) == 1 and " -tag weekly " in commands[0], commands

    older_dest = tmp_path / "restore-older"
    dest2 = stack.connector("ops-dest-older", "destination", str(older_dest))
    prefix = first["snapshot_id"][:12]
    by_id = stack.post(
        "/tasks",
        {
            "type": "restore",
            "store_id": store,
            "destination_id": dest2,
            "snapshot_id": prefix,
            "restore_mode": "overwrite",
        },
        expect=201,
    )
    job = stack.wait_job(by_id["job_id"])
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    assert job["snapshot_id"] == first["snapshot_id"]
    assert digest(older_dest) == first_digest
    # The prefix was looked up as the task was saved: the job only restores.
    assert by_id["task"]["snapshot_id"] == first["snapshot_id"]
    commands = [line for line in stack.output_lines(job["id"]) if line.startswith("$ ")]
    assert len(commands) == 1 and " restore " in commands[0], commands

    # Snapshots of the store, newest first, as the API lists them.
    snaps = stack.get(f"/connectors/{store}/snapshots")
    assert [s["id"] for s in snaps][:3] == [
        stack.get(f"/jobs/{daily['job_id']}")["snapshot_id"],
        second["snapshot_id"],
        first["snapshot_id"],
    ]
    assert snaps[1]["tags"] == ["weekly"]
    listing = stack.get(
        f"/connectors/{store}/snapshots/{first['snapshot_id']}/files", path=str(src)
    )
    names = {e["name"]: e for e in listing["entries"]}
    assert names["etc"]["type"] == "directory"
    assert names["only-in-v1.bin"]["size"] == 64 * 1024


def test_sync_copies_only_the_window_and_the_labels(
    stack: Stack, plakar: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_tree(src, 1)
    origin = tmp_path / "origin"
    store = stack.store("sync-from", origin, PASS_A)
    target = stack.store("sync-to", tmp_path / "target", PASS_B)
    # Three snapshots made with plakar directly: an old labelled one, a recent labelled
    # one and a recent one without the label.
    old = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = tmp_path / "plakar"
    at = ["at", str(origin)]
    plakar_run(
        plakar,
        work,
        *at,
        "backup",
        "-force-timestamp",
        old,
        "-tag",
        "prod",
        str(src),
        passphrase=PASS_A,
    )
    plakar_run(plakar, work, *at, "backup", "-tag", "prod", str(src), passphrase=PASS_A)
    plakar_run(plakar, work, *at, "backup", "-tag", "test", str(src), passphrase=PASS_A)
    listing = plakar_run(plakar, work, *at, "ls", "-uuid", "-tags", passphrase=PASS_A)
    wanted = [ln.split()[1] for ln in listing.splitlines() if "prod" in ln and old not in ln]
    assert len(wanted) == 1

    sync = stack.post(
        "/tasks",
        {
            "type": "sync",
            "store_id": store,
            "target_store_id": target,
            "window": "1d",
            "labels": ["prod"],
        },
        expect=201,
    )
    assert sync["task"]["window"] == "1d"
    job = stack.wait_job(sync["job_id"])
    output = stack.get(f"/jobs/{job['id']}/output")
    assert job["status"] == "succeeded", output
    copied = plakar_run(
        plakar,
        tmp_path / "plakar2",
        "at",
        str(tmp_path / "target"),
        "ls",
        "-uuid",
        passphrase=PASS_B,
    )
    assert [ln.split()[1] for ln in copied.splitlines()] == wanted
    assert "1 snapshots synchronized" in output
    assert PASS_B not in output and PASS_A not in output


def test_check_healthy_then_damaged(stack: Stack, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_tree(src, 1)
    path = tmp_path / "store"
    # Plaintext, so that the test can find a file's bytes in the packfiles.
    store = stack.store("check-store", path)
    source = stack.connector("check-src", "source", str(src))
    backup = stack.post(
        "/tasks", {"type": "backup", "source_id": source, "store_id": store}, expect=201
    )
    assert stack.wait_job(backup["job_id"])["status"] == "succeeded"
    check = stack.post("/tasks", {"type": "check", "store_id": store, "window": "P1D"}, expect=201)
    job = stack.wait_job(check["job_id"])
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    assert "check completed without errors" in stack.get(f"/jobs/{job['id']}/output")
    # It checked the one snapshot there is, and says which.
    assert job["snapshot_id"] == stack.get(f"/jobs/{backup['job_id']}")["snapshot_id"]

    damage_file_data(path, (src / "big.bin").read_bytes())
    job = stack.wait_job(stack.post(f"/tasks/{check['task']['id']}/run", expect=202)["job_id"])
    assert job["status"] == "failed"
    assert job["exit_code"] == 65, stack.get(f"/jobs/{job['id']}/output")
    assert job["error"].startswith("check found corruption")


def test_connector_test_action(stack: Stack, tmp_path: Path) -> None:
    src = stack.connector("probe-src", "source", str(tmp_path))
    assert stack.post(f"/connectors/{src}/test", expect=200)["ok"] is True
    fresh = stack.connector("probe-store", "store", str(tmp_path / "s"), passphrase=PASS_A)
    answer = stack.post(f"/connectors/{fresh}/test", expect=200)
    assert answer["ok"] is True and "not initialized" in answer["message"]
    stack.post(f"/connectors/{fresh}/initialize", expect=200)
    assert "opens" in stack.post(f"/connectors/{fresh}/test", expect=200)["message"]
    # A second initialize must not wipe or re-create the store.
    r = stack.client.post(f"/connectors/{fresh}/initialize")
    assert r.status_code == 409


def test_wrong_passphrases_fail_clearly_and_concurrency_is_passed(
    stack: Stack, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_tree(src, 1)
    store = stack.store("pp-store", tmp_path / "store", PASS_A)
    source = stack.connector("pp-src", "source", str(src))
    backup = stack.post(
        "/tasks",
        {"type": "backup", "source_id": source, "store_id": store, "concurrency": 3},
        expect=201,
    )
    job = stack.wait_job(backup["job_id"])
    assert (job["status"], job["concurrency"]) == ("succeeded", 3)
    assert " -concurrency 3 " in stack.get(f"/jobs/{job['id']}/output")

    # The target store is encrypted but its connector carries no passphrase: plakar
    # would prompt on a terminal; the job must fail instead of hanging.
    target_path = tmp_path / "target"
    locked = stack.store("pp-target", target_path, PASS_B)
    stack.client.patch(f"/connectors/{locked}", json={"options": {"passphrase": ""}})
    sync = stack.post(
        "/tasks", {"type": "sync", "store_id": store, "target_store_id": locked}, expect=201
    )
    job = stack.wait_job(sync["job_id"], timeout=90)
    assert job["status"] == "failed", stack.get(f"/jobs/{job['id']}/output")

    stack.client.patch(f"/connectors/{store}", json={"options": {"passphrase": "not-it"}})
    check = stack.post("/tasks", {"type": "check", "store_id": store}, expect=201)
    job = stack.wait_job(check["job_id"])
    assert (job["status"], job["exit_code"]) == ("failed", 77)
    assert job["error"].startswith("wrong passphrase or decryption failure")


def test_a_whole_snapshot_named_by_full_id_is_restored_in_one_plakar_run(
    stack: Stack, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_tree(src, 1)
    store = stack.store("one-run-store", tmp_path / "store", PASS_A)
    source = stack.connector("one-run-src", "source", str(src))
    body = {"type": "backup", "source_id": source, "store_id": store}
    made = stack.wait_job(stack.post("/tasks", body, expect=201)["job_id"])
    assert made["status"] == "succeeded"
    dest = stack.connector("one-run-dest", "destination", str(tmp_path / "restored"))

    def restore(snapshot_id: str) -> dict[str, Any]:
        body = {
            "type": "restore",
            "store_id": store,
            "destination_id": dest,
            "snapshot_id": snapshot_id,
            "restore_mode": "overwrite",
        }
        job: dict[str, Any] = stack.wait_job(stack.post("/tasks", body, expect=201)["job_id"])
        return job

    job = restore(made["snapshot_id"])
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    # The id plakar says it restored (its trace line), from the only plakar command.
    assert job["snapshot_id"] == made["snapshot_id"]
    commands = [line for line in stack.output_lines(job["id"]) if line.startswith("$ ")]
    assert len(commands) == 1 and " restore " in commands[0], commands
    assert digest(tmp_path / "restored") == digest(src)

    # A snapshot the store does not hold: the task is refused as it is saved.
    body = {"type": "restore", "store_id": store, "destination_id": dest, "snapshot_id": "0" * 64}
    refused = stack.client.post("/tasks", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "snapshot_id" and "no snapshot matches" in refused.text


def test_a_backup_leaves_out_its_excludes(stack: Stack, plakar: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in ("keep.txt", "a.tmp", "sub/b.tmp", "sub/keep.tmp", "cache/x", "sub/cache"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(name)
    source = stack.connector("excl-src", "source", str(src))
    store = stack.store("excl-store", tmp_path / "store")
    body = {
        "type": "backup",
        "source_id": source,
        "store_id": store,
        # Duplicates are kept once; `cache/` takes the folder, not the file named cache.
        "excludes": ["*.tmp", "cache/", "!sub/keep.tmp", "*.tmp"],
    }
    created = stack.post("/tasks", body, expect=201)
    task = created["task"]
    assert task["excludes"] == ["*.tmp", "cache/", "!sub/keep.tmp"]

    def files_of(job: dict[str, Any]) -> set[str]:
        assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
        paths = snapshot_paths(
            plakar, tmp_path / "direct", tmp_path / "store", job["snapshot_id"], str(src)
        )
        return {str(Path(p).relative_to(src)) for p in paths if p.startswith(f"{src}/")}

    first = files_of(stack.wait_job(created["job_id"]))
    assert {"keep.txt", "sub/cache"} <= first
    assert not first & {"a.tmp", "sub/b.tmp", "cache/x", "cache"}
    # A pattern with a slash inside is anchored: at the source's path on its host.
    assert "sub/keep.tmp" not in first

    # Changed excludes apply to the next run; none takes everything.
    anchored = f"!{src}/sub/keep.tmp"
    patched = stack.client.patch(f"/tasks/{task['id']}", json={"excludes": ["*.tmp", anchored]})
    assert patched.json()["excludes"] == ["*.tmp", anchored], patched.text
    second = files_of(run(stack, task["id"]))
    assert "sub/keep.tmp" in second and "cache/x" in second and "a.tmp" not in second
    assert stack.client.patch(f"/tasks/{task['id']}", json={"excludes": []}).status_code == 200
    assert {"a.tmp", "sub/b.tmp", "cache/x"} <= files_of(run(stack, task["id"]))
