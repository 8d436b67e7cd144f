"""The snapshot browser and restores in a real browser, as an operator uses them: names
in natural order, a file previewed or downloaded, a folder restored into a new folder or
over the destination's files, snapshots of one minute told apart."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support import ui
from tests.support.stack import Stack
from tests.support.ui import signed_in

pytestmark = pytest.mark.integration

# No test here runs an event loop of its own (asyncio.run): one browser serves them all.
browser = ui.module_browser

# A UTC instant to the second, and the short id, in the snapshot picker.
OPTION = re.compile(r"^[0-9a-f]{8} · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · ")


def backup(stack: Stack, task_id: str) -> dict[str, Any]:
    job = stack.wait_job(stack.post(f"/tasks/{task_id}/run", expect=202)["job_id"])
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    return job


def store_with_snapshot(
    stack: Stack, tmp_path: Path, name: str, passphrase: str | None
) -> tuple[str, str]:
    """(store id, backup task id), the tree under tmp_path/src backed up once."""
    store = stack.store(f"{name}-store", tmp_path / "store", passphrase)
    source = stack.connector(f"{name}-src", "source", str(tmp_path / "src"))
    task = stack.post("/tasks", {"type": "backup", "source_id": source, "store_id": store}, 201)
    assert stack.wait_job(task["job_id"])["status"] == "succeeded"
    return store, task["task"]["id"]


def open_snapshot(page: Page, stack: Stack, store: str, snapshot: str, path: Path) -> None:
    page.goto(f"{stack.endpoints['ui_url']}#/connectors/{store}/snapshots/{snapshot}?path={path}")
    expect(page.locator("table.files")).to_be_visible(timeout=30_000)


def test_browse_in_natural_order_preview_and_download(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    for d in ("d10", "d9", "docs"):
        (src / d).mkdir(parents=True)
    for n in (100, 10, 2, 1):
        (src / f"f{n}").write_text(f"file {n}\n")
    (src / "note.txt").write_text("first line\nsecond line é\n")
    big = "".join(f"{n:07d} a line of the log\n" for n in range(60_000))
    (src / "big.log").write_text(big)
    blob = os.urandom(1 << 20) + b"\0tail"
    (src / "blob.bin").write_bytes(blob)
    # Encrypted: every listing, preview and download opens the store with its passphrase.
    store, _ = store_with_snapshot(stack, tmp_path, "uisnap-browse", "ui-snapshots-secret-1")
    snapshot = stack.get(f"/connectors/{store}/snapshots")[0]["id"]
    errors: list[str] = []
    page = signed_in(browser, stack, errors=errors)
    open_snapshot(page, stack, store, snapshot, src)

    # Directories first; numbers in names count as numbers.
    names = page.locator("table.files tbody tr td:first-child").all_inner_texts()
    assert names == [
        "↑ parent directory",
        "d9/",
        "d10/",
        "docs/",
        "big.log",
        "blob.bin",
        "f1",
        "f2",
        "f10",
        "f100",
        "note.txt",
    ]

    # A text file, all of it.
    page.get_by_role("button", name="Preview note.txt").click()
    dialog = page.get_by_role("dialog", name="Preview of note.txt")
    expect(dialog.get_by_label("Content of note.txt")).to_have_text(
        "first line\nsecond line é\n", timeout=30_000
    )
    expect(dialog).to_contain_text("All of the file: 26 B.")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # A long one: its first MiB, and the preview says so.
    page.get_by_role("button", name="Preview big.log").click()
    dialog = page.get_by_role("dialog", name="Preview of big.log")
    content = dialog.get_by_label("Content of big.log")
    expect(content).to_be_visible(timeout=30_000)
    expect(dialog.get_by_role("status")).to_contain_text(
        "Only the first 1.0 MiB of this file (1.5 MiB) is shown"
    )
    assert content.evaluate("e => e.textContent") == big[: 1 << 20]
    dialog.get_by_role("button", name="Close").click()

    # A binary file is not shown; it downloads whole.
    page.get_by_role("button", name="Preview blob.bin").click()
    dialog = page.get_by_role("dialog", name="Preview of blob.bin")
    expect(dialog).to_contain_text("This file is not text: it is not previewed", timeout=30_000)
    with page.expect_download() as download:
        dialog.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "blob.bin"
    href = dialog.get_by_role("link", name="Download").get_attribute("href")
    assert download.value.failure() is None, (download.value.failure(), href, errors)
    assert Path(download.value.path()).read_bytes() == blob
    dialog.get_by_role("button", name="Close").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download f10", exact=True).click()
    assert Path(download.value.path()).read_bytes() == b"file 10\n"
    assert errors == []
    page.context.close()


def test_restore_a_folder_from_the_browser(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "docs" / "sub").mkdir(parents=True)
    (src / "docs" / "a.txt").write_text("a v1\n")
    (src / "docs" / "sub" / "b.txt").write_text("b\n")
    (src / "top.txt").write_text("not restored\n")
    # Plaintext: each plakar run on an encrypted store derives its key (a second of CPU);
    # the browse above opens one.
    store, task = store_with_snapshot(stack, tmp_path, "uisnap-restore", None)
    # A second snapshot, likely within the same minute: the picker tells them apart.
    (src / "docs" / "a.txt").write_text("a v2\n")
    newest = backup(stack, task)["snapshot_id"]
    dest = tmp_path / "dest"
    stack.connector("uisnap-dest", "destination", str(dest))
    errors: list[str] = []
    page = signed_in(browser, stack, errors=errors)
    open_snapshot(page, stack, store, newest, src)

    page.get_by_role("link", name="docs/").click()
    expect(page.get_by_role("link", name="sub/")).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Restore this folder…").click()

    # The form comes filled in: this snapshot, this folder, into a new folder.
    expect(page.get_by_label("Folder to restore")).to_have_value(str(src / "docs"))
    picker = page.get_by_label("Snapshot", exact=True)
    expect(picker).to_have_value(newest, timeout=30_000)
    options = picker.locator("option").all_inner_texts()[1:]
    assert len(options) == 2 and options[0] != options[1]
    assert all(OPTION.match(o) for o in options), options
    assert options[0].startswith(newest[:8])
    expect(page.get_by_role("radio", name="Into a new folder")).to_be_checked()
    expect(page.get_by_text("are replaced, without asking")).to_be_hidden()
    page.get_by_label("Destination", exact=True).select_option(label=f"uisnap-dest — {dest}")
    page.get_by_role("button", name="Save and run once").click()
    # Saving looks at the snapshot in its store first: two openings of an encrypted store.
    created = re.compile(r"#/scheduling/history\?created=[0-9a-f-]{36}$")
    expect(page).to_have_url(created, timeout=60_000)
    job = stack.wait_job(page.url.rsplit("=", 1)[1])
    assert job["status"] == "succeeded", stack.get(f"/jobs/{job['id']}/output")
    (folder,) = dest.iterdir()
    assert folder.name.startswith(f"restore-{newest[:8]}-")
    assert (folder / "docs" / "a.txt").read_text() == "a v2\n"
    assert sorted(p.name for p in folder.rglob("*")) == ["a.txt", "b.txt", "docs", "sub"]

    # Edited there, then restored again: a second folder; the edit stays.
    (folder / "docs" / "a.txt").write_text("edited\n")
    again = stack.wait_job(stack.post(f"/tasks/{job['task_id']}/run", expect=202)["job_id"])
    assert again["status"] == "succeeded"
    assert len(list(dest.iterdir())) == 2
    assert (folder / "docs" / "a.txt").read_text() == "edited\n"

    # Overwriting is a choice the form warns about; the task page keeps it.
    page.goto(f"{stack.endpoints['ui_url']}#/scheduling/tasks/{job['task_id']}")
    overwrite = page.get_by_role("radio", name="Over the destination's files")
    overwrite.check()
    expect(page.get_by_text("are replaced, without asking")).to_be_visible()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Task saved")).to_be_visible()
    assert stack.get(f"/tasks/{job['task_id']}")["restore_mode"] == "overwrite"
    over = stack.wait_job(stack.post(f"/tasks/{job['task_id']}/run", expect=202)["job_id"])
    assert over["status"] == "succeeded"
    assert (dest / "docs" / "a.txt").read_text() == "a v2\n"
    assert not (dest / "top.txt").exists()
    assert errors == []
    page.context.close()
