"""A picture of each page of the web UI, on a small installation of its own (connectors,
tasks, schedules, a few jobs). With PLAKAR_CP_SCREENSHOTS=1 they replace those of
docs/ui/ (docs/ui.md shows them); otherwise they go to a temporary directory, so that a
test run leaves the tree as it was."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.schedules import wait_jobs
from tests.support.stack import REPO, Stack, running_stack, stack_dir
from tests.support.ui import VIEWPORT

pytestmark = pytest.mark.integration

DOCS = REPO / "docs" / "ui"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("PLAKAR_CP_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def demo() -> Iterator[Path]:
    """Where the installation's data lives: a short path, as the pages show it."""
    root = Path(tempfile.mkdtemp(prefix="demo-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def source_tree(root: Path, files: dict[str, int]) -> str:
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return str(root)


def later(hours: int, minute: int) -> str:
    """A start time some hours ahead, at a round minute."""
    at = datetime.now(UTC) + timedelta(hours=hours)
    return at.replace(minute=minute, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def installation(stack: Stack, demo: Path) -> dict[str, Any]:
    """Two sources, two stores and a destination; a task of each type, schedules, and
    jobs that succeeded and one that failed. The ids the pages need."""
    web = stack.connector(
        "web-01",
        "source",
        source_tree(demo / "web-01", {"www/index.html": 9_000, "www/img/logo.png": 240_000}),
    )
    db = stack.connector(
        "db-01", "source", source_tree(demo / "db-01", {"dumps/app.sql": 1_200_000})
    )
    laptop = stack.connector("laptop-07", "source", str(demo / "laptop-07"))  # not there
    nas = stack.store("nas", demo / "nas", passphrase="demo-passphrase-1")
    offsite = stack.store("offsite", demo / "offsite")
    restore_area = stack.connector("restore-area", "destination", str(demo / "restore"))
    daily = {"recurrence": "daily", "start_at": later(hours=8, minute=30)}
    six_hours = {"recurrence": "custom", "interval": {"hours": 6}, "start_at": later(1, 15)}
    weekly = {"recurrence": "weekly", "start_at": later(hours=60, minute=0)}

    def task(body: dict[str, Any]) -> str:
        saved = stack.post("/tasks", body, expect=201)
        if saved["job_id"]:
            stack.wait_job(saved["job_id"])
        task_id: str = saved["task"]["id"]
        return task_id

    def backup(name: str, source: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "type": "backup", "source_id": source, "store_id": nas, **extra}

    web_task = task(backup("web-01 nightly", web, labels=["nightly", "web"], schedules=[daily]))
    db_task = task(backup("db-01 dumps", db, labels=["db"], schedules=[six_hours]))
    task(backup("laptop-07", laptop))  # fails: its source is not there
    jobs = [
        stack.wait_job(stack.post(f"/tasks/{t}/run", expect=202)["job_id"])
        for t in (web_task, db_task)
    ]
    # Without a start time, a schedule runs at once.
    copy = {"name": "offsite copy", "type": "sync", "store_id": nas, "target_store_id": offsite}
    copy_task = task({**copy, "schedules": [{"recurrence": "twice_daily"}, weekly]})
    stack.wait_job(
        wait_jobs(stack, copy_task, 1, datetime.now(UTC) + timedelta(seconds=60))[0]["id"]
    )
    task({"name": "verify nas", "type": "check", "store_id": nas, "window": "7d"})
    task({"type": "restore", "store_id": nas, "destination_id": restore_area, "labels": ["web"]})
    return {
        "store": nas,
        "source": web,
        "task": web_task,
        "job": jobs[0]["id"],
        "snapshot": jobs[0]["snapshot_id"],
        "today": datetime.now(UTC).date().isoformat(),
    }


def settled(page: Page) -> None:
    """The page has its data: a heading, nothing still loading, live lists connected."""
    expect(page.locator("main h1").first).to_be_visible()
    busy = page.get_by_text(re.compile(r"^(Loading|Listing|connecting)"))
    expect(busy).to_have_count(0, timeout=30_000)


def test_a_picture_of_each_page(browser: Browser, demo: Path, shots: Path) -> None:
    with running_stack(stack_dir("screenshots"), runners=1) as stack:
        ids = installation(stack, demo)
        pages = {
            "history": "#/scheduling/history",
            "history-filtered": "#/scheduling/history?status=succeeded&connector_id={source}"
            "&from={today}&to={today}",
            "tasks": "#/scheduling",
            "task": "#/scheduling/tasks/{task}",
            "task-new": "#/scheduling/tasks/new",
            "connectors": "#/connectors",
            "connector-new": "#/connectors/new",
            "connector-edit": "#/connectors/{store}/edit",
            "connector": "#/connectors/{store}",
            "connector-scheduling": "#/connectors/{store}/scheduling",
            "connector-snapshots": "#/connectors/{store}/snapshots",
            "snapshot": "#/connectors/{store}/snapshots/{snapshot}",
        }
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(stack.endpoints["ui_url"])
        expect(page.get_by_label("API token")).to_be_visible()
        page.screenshot(path=str(shots / "signin.png"))
        page.get_by_label("API token").fill(stack.token)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"#/scheduling/history$"))
        for name, route in pages.items():
            page.goto(f"{stack.endpoints['ui_url']}{route.format(**ids)}")
            settled(page)
            page.screenshot(path=str(shots / f"{name}.png"))
        page.goto(f"{stack.endpoints['ui_url']}#/jobs/{ids['job']}")
        dialog = page.locator("dialog#job-dialog")
        expect(dialog).to_contain_text("backup completed without errors", timeout=15_000)
        page.screenshot(path=str(shots / "job.png"))
        assert errors == []
        context.close()
    written = sorted(p.name for p in shots.glob("*.png"))
    assert written == sorted(["signin.png", "job.png", *(f"{n}.png" for n in pages)])
