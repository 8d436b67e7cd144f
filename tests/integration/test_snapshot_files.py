"""A snapshot's files through the api, for real: a folder restored into a new folder or
over the destination's files; a file previewed or downloaded. The stores are plaintext
where encryption is not the point: each plakar run on an encrypted one derives its key, a
second of CPU. The latest snapshot's restore opens an encrypted store once, and the
browser's tests (test_ui_snapshots.py) restore, preview and download from one."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PASSPHRASE = "files-store-passphrase-4417"


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def backup(
    stack: Stack, tmp_path: Path, name: str, passphrase: str | None = PASSPHRASE
) -> tuple[str, str, Path]:
    """A store (encrypted unless said) with a snapshot of tmp_path/src: (store id,
    snapshot id, src)."""
    src = tmp_path / "src"
    store = stack.store(f"{name}-store", tmp_path / "store", passphrase)
    source = stack.connector(f"{name}-src", "source", str(src))
    created = stack.post("/tasks", {"type": "backup", "source_id": source, "store_id": store}, 201)
    job = stack.wait_job(created["job_id"])
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    return store, job["snapshot_id"], src


def plakar_commands(stack: Stack, job: dict[str, Any]) -> list[str]:
    """The plakar commands the job ran, from `restore` on (the target with {})."""
    lines = stack.output_lines(job["id"])
    commands = [line.split(" at @store ", 1)[-1] for line in lines if line.startswith("$ ")]
    return [re.sub(r"@destination:\S+", "@destination:{}", c) for c in commands]


def restore(stack: Stack, **fields: Any) -> dict[str, Any]:
    created = stack.post("/tasks", {"type": "restore", **fields}, expect=201)
    job = stack.wait_job(created["job_id"])
    job["task"] = created["task"]
    return job


def test_restore_a_folder_into_new_folders_or_over_the_files(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "src" / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "docs" / "a.txt").write_text("a\n")
    (tmp_path / "src" / "docs" / "sub" / "b.txt").write_text("b\n")
    (tmp_path / "src" / "top.txt").write_text("top\n")
    store, snapshot, src = backup(stack, tmp_path, "rst", passphrase=None)
    dest = tmp_path / "dest"
    dest_id = stack.connector("rst-dest", "destination", str(dest))
    docs = str(src / "docs")
    wanted = {"docs/a.txt", "docs/sub/b.txt"}

    # The default: a new folder named after the snapshot, the time and the job; the
    # folder keeps its place below the snapshot's root.
    first = restore(
        stack, store_id=store, destination_id=dest_id, snapshot_id=snapshot, restore_path=docs
    )
    assert first["status"] == "succeeded", stack.get(f"/jobs/{first['id']}/output")
    assert (first["task"]["restore_path"], first["task"]["restore_mode"]) == (docs, "new_folder")
    # What the snapshot holds there was learnt as the task was saved: the job only restores.
    assert first["task"]["restore_point"] == {"root": str(src), "kind": "directory"}
    assert plakar_commands(stack, first) == [f"restore -to @destination:{{}} {snapshot}:{docs}"]
    (folder,) = dest.iterdir()
    assert re.fullmatch(rf"restore-{snapshot[:8]}-\d{{8}}-\d{{6}}-{first['id'][:8]}", folder.name)
    assert set(digest(folder)) == wanted
    (folder / "docs" / "a.txt").write_text("edited\n")

    # Run again: another folder; what was edited stays as it is.
    again = stack.wait_job(stack.post(f"/tasks/{first['task']['id']}/run", expect=202)["job_id"])
    assert again["status"] == "succeeded"
    assert len(list(dest.iterdir())) == 2
    assert (folder / "docs" / "a.txt").read_text() == "edited\n"

    # Overwrite: into the destination itself, over an edited file; others stay.
    in_place = tmp_path / "in-place"
    (in_place / "docs").mkdir(parents=True)
    (in_place / "docs" / "a.txt").write_text("edited\n")
    (in_place / "keep.txt").write_text("mine\n")
    over = restore(
        stack,
        store_id=store,
        destination_id=stack.connector("rst-in-place", "destination", str(in_place)),
        snapshot_id=snapshot,
        restore_path=docs + "/",
        restore_mode="overwrite",
    )
    assert over["status"] == "succeeded", stack.get(f"/jobs/{over['id']}/output")
    assert over["task"]["restore_path"] == docs
    assert (in_place / "docs" / "a.txt").read_text() == "a\n"
    assert set(digest(in_place)) == wanted | {"keep.txt"}
    # One file: it keeps its place too.
    one = restore(
        stack,
        store_id=store,
        destination_id=dest_id,
        snapshot_id=snapshot,
        restore_path=str(src / "docs" / "sub" / "b.txt"),
    )
    assert one["status"] == "succeeded", stack.get(f"/jobs/{one['id']}/output")
    (only,) = [d for d in dest.iterdir() if one["id"][:8] in d.name]
    assert set(digest(only)) == {"docs/sub/b.txt"}
    assert one["task"]["restore_point"] == {"root": str(src), "kind": "file"}
    assert len(plakar_commands(stack, one)) == 1


def test_a_restore_task_learns_what_its_snapshot_holds_as_it_is_saved(
    stack: Stack, tmp_path: Path
) -> None:
    # A folder holding only a file of its own name lists like that file.
    (tmp_path / "src" / "twin").mkdir(parents=True)
    (tmp_path / "src" / "twin" / "twin").write_text("twin\n")
    store, snapshot, src = backup(stack, tmp_path, "learn", passphrase=None)
    dest = tmp_path / "dest"
    dest_id = stack.connector("learn-dest", "destination", str(dest))

    # The folder is restored as the folder it is; the prefix is saved as the full id.
    twin = restore(
        stack,
        store_id=store,
        destination_id=dest_id,
        snapshot_id=snapshot[:10],
        restore_path=str(src / "twin"),
    )
    assert twin["status"] == "succeeded", stack.get(f"/jobs/{twin['id']}/output")
    assert (twin["task"]["snapshot_id"], twin["task"]["restore_point"]["kind"]) == (
        snapshot,
        "directory",
    )
    (only,) = [d for d in dest.iterdir() if twin["id"][:8] in d.name]
    assert set(digest(only)) == {"twin/twin"}
    # Another path: looked at again.
    task_id = twin["task"]["id"]
    changed = stack.client.patch(f"/tasks/{task_id}", json={"restore_path": f"{src}/twin/twin"})
    assert changed.json()["restore_point"] == {"root": str(src), "kind": "file"}, changed.text
    renamed = stack.client.patch(f"/tasks/{task_id}", json={"name": "twin file"})
    assert renamed.json()["restore_point"] == {"root": str(src), "kind": "file"}, renamed.text

    # A path the snapshot does not hold: the task is refused as it is saved.
    for path, problem in (
        ("/elsewhere", "/elsewhere is not in the snapshot"),
        (str(src / "nope"), f"{src / 'nope'} is not in snapshot {snapshot[:8]}"),
    ):
        body = {
            "type": "restore",
            "store_id": store,
            "destination_id": dest_id,
            "snapshot_id": snapshot,
            "restore_path": path,
        }
        refused = stack.client.post("/tasks", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "restore_path" and problem in refused.text


def test_the_latest_snapshot_is_restored_in_one_opening_into_a_folder_named_after_it(
    stack: Stack, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "one.txt").write_text("1\n")
    store, _, src = backup(stack, tmp_path, "latest")
    (src / "two.txt").write_text("2\n")
    newest = stack.wait_job(
        stack.post(
            "/tasks",
            {
                "type": "backup",
                "source_id": stack.connector("latest-src2", "source", str(src)),
                "store_id": store,
            },
            201,
        )["job_id"]
    )["snapshot_id"]
    dest = tmp_path / "dest"
    job = restore(
        stack,
        store_id=store,
        destination_id=stack.connector("latest-dest", "destination", str(dest)),
    )
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    assert job["snapshot_id"] == newest
    # plakar chose the snapshot itself: one command, one opening of the (encrypted) store.
    commands = [line for line in stack.output_lines(job["id"]) if line.startswith("$ ")]
    assert len(commands) == 1 and " restore " in commands[0], commands
    (folder,) = dest.iterdir()
    assert re.fullmatch(rf"restore-{newest[:8]}-\d{{8}}-\d{{6}}-{job['id'][:8]}", folder.name)
    assert set(digest(folder)) == {"one.txt", "two.txt"}


def test_preview_and_download_a_file(stack: Stack, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "note.txt").write_text("héllo\n")
    log = "".join(f"line {n} of the log é\n" for n in range(80_000)).encode()
    assert len(log) > 1 << 20
    (src / "big.log").write_bytes(log)
    blob = os.urandom(3 * (1 << 20) + 7)  # several chunks, the last one short
    (src / "blob.bin").write_bytes(blob)
    (src / "empty").write_bytes(b"")
    store, snapshot, src = backup(stack, tmp_path, "files", passphrase=None)
    base = f"/connectors/{store}/snapshots/{snapshot[:12]}"

    note = stack.get(f"{base}/preview", path=str(src / "note.txt"))
    assert (note["text"], note["size"], note["truncated"]) == ("héllo\n", 7, False)
    big = stack.get(f"{base}/preview", path=str(src / "big.log"))
    assert (big["size"], big["limit"], big["truncated"]) == (1 << 20, 1 << 20, True)
    assert log.decode().startswith(big["text"]) and len(big["text"].encode()) > (1 << 20) - 4
    assert stack.get(f"{base}/preview", path=str(src / "blob.bin"))["text"] is None

    r = stack.client.get(f"{base}/download", params={"path": str(src / "blob.bin")})
    assert r.status_code == 200, r.text
    assert r.content == blob
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith('attachment; filename="blob.bin"')
    r = stack.client.get(f"{base}/download", params={"path": str(src / "empty")})
    assert (r.status_code, r.content) == (200, b"")

    for path, status in ((str(src), 409), (str(src / "nope"), 404)):
        r = stack.client.get(f"{base}/download", params={"path": path})
        assert r.status_code == status, r.text
        assert r.json()["error"]
        assert stack.client.get(f"{base}/preview", params={"path": path}).status_code == status
