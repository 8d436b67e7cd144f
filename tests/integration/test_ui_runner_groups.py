""" "Run on" in the web UI (real Chromium): the task form offers the runner groups that are
live, a task saved there runs there, and a job whose group has no live runner says why
it waits in the Job History and in its popup."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.runners import extra_runner
from tests.support.stack import Stack, many_files

pytestmark = pytest.mark.integration


def test_the_task_form_offers_the_live_groups_and_a_waiting_job_says_why(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    live, gone = f"ui-{uuid.uuid4().hex[:8]}", f"ui-off-{uuid.uuid4().hex[:8]}"
    source = many_files(tmp_path / "src", 3)
    stack.connector("groups-ui-src", "source", str(source))
    stack.store("groups-ui-store", tmp_path / "store")
    with extra_runner(stack, tmp_path / "runners", f"{live}-r1", live, slots=3):
        page.goto(f"{stack.endpoints['ui_url']}#/scheduling/tasks/new")
        run_on = page.get_by_label("Run on", exact=True)
        expect(
            run_on.locator("option", has_text=f"{live} — 1 runner, 3 jobs at once")
        ).to_have_count(1)
        expect(
            run_on.locator("option", has_text=re.compile(r"^Default group \(default\) — 2 runners"))
        ).to_have_count(1)
        page.get_by_label("Source", exact=True).select_option(label=f"groups-ui-src — {source}")
        page.get_by_label("Store", exact=True).select_option(
            label=f"groups-ui-store — {tmp_path / 'store'}"
        )
        page.get_by_label("Name", exact=True).fill("groups-ui-task")
        run_on.select_option(live)
        page.get_by_role("button", name="Save and run once").click()
        expect(page.get_by_text("Task saved; it runs once now")).to_be_visible()
        [task] = [t for t in stack.get("/tasks") if t["name"] == "groups-ui-task"]
        assert task["runner_group"] == live
        [job] = stack.get("/jobs", task_id=task["id"])["items"]
        assert stack.wait_job(job["id"])["runner"] == f"{live}-r1"

    # A group none of whose runners is live: its job stays queued and says why.
    body = {"runner_group": gone, "schedules": [{"recurrence": "daily", "enabled": False}]}
    body |= {"type": "backup", "source_id": task["source_id"], "store_id": task["store_id"]}
    waiting = stack.post("/tasks", body, expect=201)["task"]
    job_id = stack.post(f"/tasks/{waiting['id']}/run", expect=202)["job_id"]
    page.goto(f"{stack.endpoints['ui_url']}#/scheduling/history")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    why = f"Waiting: no runner of group {gone} is live"
    expect(row).to_contain_text(why)
    row.get_by_role("button", name=re.compile("details")).click()
    expect(page.get_by_role("dialog")).to_contain_text(why)
