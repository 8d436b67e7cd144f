"""The web UI's forms driven in a real browser: a store's passphrase, Initialize, the task
form's messages, schedules edited in place, and what the api serves them."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from services.runner.concurrency import recommended_concurrency
from tests.conftest import plakar_run
from tests.integration.test_ui import sidebar
from tests.support import ui
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

# No test here runs an event loop of its own (asyncio.run): one browser serves them all.
browser = ui.module_browser


def go(page: Page, stack: Stack, route: str) -> None:
    page.goto(f"{stack.endpoints['ui_url']}#{route}")


def accept_next_dialog(page: Page) -> None:
    page.once("dialog", lambda d: d.accept())


def tomorrow() -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def test_a_store_passphrase_is_typed_twice_and_kept_unless_changed(
    stack: Stack, page: Page, tmp_path: Path, plakar: str
) -> None:
    path = tmp_path / "store"
    sidebar(page, "Connectors")
    page.get_by_role("link", name="New connector").click()
    page.get_by_label("Name", exact=True).fill("forms-crypt")
    page.get_by_label("Role", exact=True).select_option("store")
    page.get_by_label("Location", exact=True).fill(str(path))
    # One passphrase field: no button adds a second one.
    expect(page.get_by_label("Passphrase", exact=True)).to_have_count(1)
    expect(page.get_by_role("button", name=re.compile("Passphrase"))).to_have_count(0)
    page.get_by_label("Passphrase", exact=True).fill("first-secret-1")
    page.get_by_label("Confirm passphrase", exact=True).fill("first-secret-2")
    page.get_by_role("button", name="Create connector").click()
    mismatch = page.locator('[data-field-box="passphrase_confirmation"] .field-error')
    expect(mismatch).to_contain_text("differ")
    assert "forms-crypt" not in [c["name"] for c in stack.get("/connectors")]

    page.get_by_label("Confirm passphrase", exact=True).fill("first-secret-1")
    page.get_by_role("button", name="Create connector").click()
    expect(page.get_by_role("heading", name="forms-crypt", exact=True)).to_be_visible()
    accept_next_dialog(page)
    page.get_by_role("button", name="Initialize").click()
    expect(page.locator(".action-result")).to_contain_text("Initialize: OK", timeout=30_000)
    expect(page.get_by_role("button", name="Initialize")).to_be_hidden()
    plakar_run(plakar, tmp_path / "direct", "at", str(path), "info", passphrase="first-secret-1")
    store_id = page.url.rsplit("/", 1)[1]

    # Saved with both fields empty, the stored passphrase stays.
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_text("A passphrase is stored")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("forms-crypt-2")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="forms-crypt-2", exact=True)).to_be_visible()
    assert "opens" in stack.post(f"/connectors/{store_id}/test", expect=200)["message"]

    # Changed, it must be typed twice too.
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label("Passphrase", exact=True).fill("second-secret")
    page.get_by_role("button", name="Save changes").click()
    expect(mismatch).to_contain_text("differ")
    page.get_by_label("Confirm passphrase", exact=True).fill("second-secret")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="forms-crypt-2", exact=True)).to_be_visible()
    # The store was made with the first one: plakar no longer opens it.
    assert stack.post(f"/connectors/{store_id}/test", expect=200)["ok"] is False


def test_initialize_is_offered_only_while_the_store_is_not_known_initialized(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    path = tmp_path / "store"
    first = stack.store("forms-init-a", path)
    assert stack.get(f"/connectors/{first}")["initialized"] is True
    second = stack.connector("forms-init-b", "store", str(path))
    assert stack.get(f"/connectors/{second}")["initialized"] is None

    go(page, stack, f"/connectors/{second}")
    state = page.locator("dl.details")
    expect(state).to_contain_text("Not known yet")
    initialize = page.get_by_role("button", name="Initialize")
    initialize.click()  # the confirmation is dismissed: nothing is asked of a runner
    expect(page.locator(".action-slot")).to_be_empty()
    accept_next_dialog(page)
    initialize.click()
    result = page.locator(".action-result")
    expect(result).to_contain_text("the store is initialized already", timeout=30_000)
    expect(result).not_to_contain_text("plakar create")
    expect(initialize).to_be_hidden()
    expect(state).to_contain_text("Initialized: ready for backups.")
    assert stack.get(f"/connectors/{second}")["initialized"] is True

    go(page, stack, f"/connectors/{first}")
    expect(page.locator("dl.details")).to_contain_text("Initialized: ready for backups.")
    expect(page.get_by_role("button", name="Test connection")).to_be_visible()
    expect(page.get_by_role("button", name="Initialize")).to_have_count(0)

    # Another location is another store: nothing is known of it.
    moved = stack.client.patch(f"/connectors/{second}", json={"location": str(tmp_path / "new")})
    assert moved.json()["initialized"] is None
    assert stack.post(f"/connectors/{second}/test", expect=200)["initialized"] is False
    assert stack.get(f"/connectors/{second}")["initialized"] is False


def test_a_scheduled_job_names_its_schedule_and_proves_its_store(
    stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "store"
    stack.store("forms-proof-a", path)
    store = stack.connector("forms-proof-b", "store", str(path))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "note.txt").write_text("proof\n")
    src = stack.connector("forms-proof-src", "source", str(tmp_path / "src"))
    # Without a start time, the schedule runs at once.
    every_30_days = [{"recurrence": "every_30_days"}]
    body = {"type": "backup", "source_id": src, "store_id": store, "schedules": every_30_days}
    task = stack.post("/tasks", body, expect=201)["task"]["id"]
    job = stack.wait_job(first_job(stack, task))
    assert (job["trigger"], job["status"]) == ("schedule", "succeeded")
    [schedule] = stack.get("/schedules", task_id=task)
    at = datetime.fromisoformat(schedule["next_run_at"])
    assert schedule["description"] == f"Every 30 days at {at:%H:%M} UTC"
    assert job["schedule_description"] == schedule["description"]
    listed = stack.get("/jobs", task_id=task)["items"]
    assert listed[0]["schedule_description"] == schedule["description"]
    # The backup that succeeded proves the store exists.
    assert stack.get(f"/connectors/{store}")["initialized"] is True
    stack.client.delete(f"/schedules/{schedule['id']}")
    assert stack.get(f"/jobs/{job['id']}")["schedule_description"] is None


def first_job(stack: Stack, task_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not (items := stack.get("/jobs", task_id=task_id)["items"]):
        assert time.monotonic() < deadline, "the schedule did not fire"
        time.sleep(0.1)
    job_id: str = items[0]["id"]
    return job_id


def test_the_task_form_names_its_fields_and_the_runners_concurrency(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    stack.connector("forms-task-src", "source", str(tmp_path))
    stack.connector("forms-task-store", "store", str(tmp_path / "store"))
    go(page, stack, "/scheduling/tasks/new")
    page.get_by_label("Store", exact=True).select_option(
        label=f"forms-task-store — {tmp_path / 'store'}"
    )
    page.get_by_role("button", name="Save and run once").click()
    error = page.locator('[data-field-box="source_id"] .field-error')
    expect(error).to_contain_text("needs “Source”")
    expect(error).not_to_contain_text("source_id")
    expect(page.get_by_label("Source", exact=True)).to_be_focused()

    # Before any run, the hint says what the runner gives a job that sets none.
    page.get_by_text("Advanced options").click()
    hint = page.locator('[data-field-box="concurrency"] .hint')
    cpus = os.cpu_count()
    expect(hint).to_contain_text(
        f"the runner sets {recommended_concurrency('backup', cpus)} for a backup"
    )
    page.get_by_text("Verify the integrity of a store").click()
    expect(hint).to_contain_text(
        f"the runner sets {recommended_concurrency('check', cpus)} for a check"
    )


def test_a_backup_task_takes_excludes_one_a_line(stack: Stack, page: Page, tmp_path: Path) -> None:
    stack.connector("forms-excl-src", "source", str(tmp_path))
    stack.connector("forms-excl-store", "store", str(tmp_path / "store"))
    go(page, stack, "/scheduling/tasks/new")
    page.get_by_label("Source", exact=True).select_option(label=f"forms-excl-src — {tmp_path}")
    page.get_by_label("Store", exact=True).select_option(
        label=f"forms-excl-store — {tmp_path / 'store'}"
    )
    page.get_by_label("Name", exact=True).fill("forms-excl")
    excludes = page.get_by_label("Exclude", exact=True)
    excludes.fill("*.tmp\n\n  cache/  \n[abc")
    page.get_by_role("button", name="Save and run once").click()
    error = page.locator('[data-field-box="excludes"] .field-error')
    expect(error).to_contain_text("no ] closes")
    excludes.fill("*.tmp\n\n  cache/  \n[abc]")
    page.get_by_role("button", name="Save and run once").click()
    expect(page).to_have_url(re.compile(r"#/scheduling/history\?created="))
    task = next(t for t in stack.get("/tasks") if t["name"] == "forms-excl")
    assert task["excludes"] == ["*.tmp", "cache/", "[abc]"]
    # Only a backup takes them.
    go(page, stack, f"/scheduling/tasks/{task['id']}")
    expect(page.get_by_label("Exclude", exact=True)).to_have_value("*.tmp\ncache/\n[abc]")
    go(page, stack, "/scheduling/tasks/new?type=check")
    expect(page.get_by_label("Store", exact=True)).to_be_visible()
    expect(page.get_by_label("Exclude", exact=True)).to_have_count(0)


def test_a_connector_in_use_is_not_deleted_and_its_tasks_are_named(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    src = stack.connector("forms-used-src", "source", str(tmp_path))
    store = stack.connector("forms-used-store", "store", str(tmp_path / "store"))
    paused = [{"recurrence": "daily", "enabled": False}]
    for name in ("forms-nightly", None):
        body = {"type": "backup", "name": name, "source_id": src, "store_id": store}
        stack.post("/tasks", {**body, "schedules": paused}, expect=201)

    go(page, stack, f"/connectors/{src}")
    page.get_by_role("button", name="Delete").click()  # dismissed: nothing happens
    expect(page.locator(".action-slot")).to_be_empty()
    accept_next_dialog(page)
    page.get_by_role("button", name="Delete").click()
    expect(page.locator(".action-slot")).to_contain_text(
        'the tasks "forms-nightly" and "Backup forms-used-src → forms-used-store" use this'
        " connector; delete or change them first"
    )
    assert stack.get(f"/connectors/{src}")["name"] == "forms-used-src"


def schedule(**fields: Any) -> dict[str, Any]:
    return {"journalised": True, "enabled": True, **fields}


def test_schedules_are_described_sorted_and_edited_in_place(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    src = stack.connector("forms-sched-src", "source", str(tmp_path))
    store = stack.connector("forms-sched-store", "store", str(tmp_path / "store"))
    start = tomorrow()
    schedules = [
        schedule(recurrence="daily", start_at="2030-01-07T02:30:00Z", enabled=False),
        schedule(
            recurrence="custom",
            interval={"minutes": 2},
            start_at=start.isoformat().replace("+00:00", "Z"),
        ),
    ]
    body = {"type": "backup", "source_id": src, "store_id": store, "schedules": schedules}
    task = stack.post("/tasks", body, expect=201)["task"]["id"]

    go(page, stack, f"/scheduling/tasks/{task}")
    rows = page.locator("table.schedules tbody tr")
    # The one that runs comes first; the paused one after.
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Every 2 min")
    expect(rows.nth(1)).to_contain_text("Daily at 02:30 UTC")
    expect(rows.nth(1)).to_contain_text("paused")

    edit = page.get_by_role("button", name="Edit the schedule Daily at 02:30 UTC")
    edit.click()
    form = page.get_by_role("form", name="Edit the schedule Daily at 02:30 UTC")
    start_box = form.get_by_label("Start time (UTC)")
    expect(start_box).to_have_value("2030-01-07 02:30")
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_have_count(0)
    expect(rows.nth(1)).to_contain_text("Daily at 02:30 UTC")

    edit.click()
    start_box.fill("07/01/2030 04:15 PM")
    form.get_by_role("button", name="Save schedule").click()
    expect(form.locator(".field-error")).to_contain_text("YYYY-MM-DD HH:MM")
    form.get_by_label("Recurrence").select_option("weekly")
    start_box.fill("2030-01-07 04:15")
    form.get_by_label("Enabled").check()
    form.get_by_role("button", name="Save schedule").click()
    expect(form).to_have_count(0)
    expect(rows.nth(0)).to_contain_text("Every 2 min")
    expect(rows.nth(1)).to_contain_text("Every Monday at 04:15 UTC")
    saved = [s for s in stack.get("/schedules", task_id=task) if s["recurrence"] == "weekly"]
    assert saved[0]["start_at"].startswith("2030-01-07T04:15:00") and saved[0]["enabled"]

    # The attach form has a Cancel.
    attach = page.get_by_role("button", name="+ Attach a schedule")
    attach.click()
    page.get_by_role("form", name="Attach a schedule").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("form", name="Attach a schedule")).to_have_count(0)
    expect(attach).to_be_visible()

    # A connector's upcoming runs say how far the capped list reaches.
    go(page, stack, f"/connectors/{src}")
    last = start + 99 * timedelta(minutes=2)
    more = page.get_by_role(
        "button", name=f"Show the next 100 runs (until {last:%Y-%m-%d %H:%M} UTC)"
    )
    more.click()
    expect(page.locator("table.upcoming tbody tr")).to_have_count(100)


def test_the_start_time_hint_follows_the_clock(stack: Stack, page: Page, tmp_path: Path) -> None:
    src = stack.connector("forms-clock-src", "source", str(tmp_path))
    store = stack.connector("forms-clock-store", "store", str(tmp_path / "store"))
    paused = [schedule(recurrence="daily", enabled=False)]
    body = {"type": "backup", "source_id": src, "store_id": store, "schedules": paused}
    task = stack.post("/tasks", body, expect=201)["task"]["id"]
    page.clock.install(time=datetime(2030, 1, 1, 10, 0, tzinfo=UTC))
    go(page, stack, f"/scheduling/tasks/{task}")
    page.get_by_role("button", name="+ Attach a schedule").click()
    hint = page.get_by_role("form", name="Attach a schedule").get_by_text("Now it is")
    expect(hint).to_contain_text("Now it is 2030-01-01 10:00 UTC.")
    page.clock.fast_forward("02:00")
    expect(hint).to_contain_text("Now it is 2030-01-01 10:02 UTC.")


def test_a_prune_is_saved_only_once_its_preview_is_confirmed(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    store = stack.store("forms-prune-store", tmp_path / "store")
    source = stack.connector("forms-prune-src", "source", str(src))
    body = {"type": "backup", "source_id": source, "store_id": store}
    made = []
    for n in range(2):
        (src / "f").write_text(str(n))
        job = stack.wait_job(stack.post("/tasks", body, expect=201)["job_id"])
        made.append(job["snapshot_id"])

    go(page, stack, "/scheduling/tasks/new?type=prune")
    page.get_by_label("Store", exact=True).select_option(
        label=f"forms-prune-store — {tmp_path / 'store'}"
    )
    page.get_by_label("Name", exact=True).fill("forms-prune")
    page.get_by_label("Per day", exact=True).fill("1")
    confirm = page.get_by_label(re.compile("I have looked at what it deletes"))
    expect(confirm).to_be_disabled()
    page.get_by_role("button", name="Save and run once").click()
    expect(page.locator('[data-field-box="confirm"] .field-error')).to_contain_text("preview")
    assert "forms-prune" not in [t["name"] for t in stack.get("/tasks")]

    page.get_by_role("button", name="Preview").click()
    plan = page.locator(".prune-plan")
    expect(plan).to_contain_text("Keeps 1 snapshot")
    expect(plan).to_contain_text("Deletes 1 snapshot")
    expect(plan.locator("li").nth(1)).to_contain_text(made[0][:8])
    # A change of what it deletes asks for a new look.
    page.get_by_label("Per day", exact=True).fill("2")
    expect(confirm).to_be_disabled()
    expect(plan).not_to_contain_text("Deletes")
    page.get_by_label("Per day", exact=True).fill("1")
    page.get_by_role("button", name="Preview").click()
    expect(plan).to_contain_text("Deletes 1 snapshot")
    confirm.check()
    page.get_by_role("button", name="Save and run once").click()
    expect(page).to_have_url(re.compile(r"#/scheduling/history\?created="))
    task = next(t for t in stack.get("/tasks") if t["name"] == "forms-prune")
    assert task["retention"] == {"per_day": 1}
    job_id = stack.get("/jobs", task_id=task["id"])["items"][0]["id"]
    job = stack.wait_job(job_id)
    assert job["prune"] == {"kept": [made[1]], "deleted": [made[0]]}, job
    go(page, stack, f"/scheduling/history?job={job_id}")
    details = page.locator(".job-view dl.details")
    expect(details).to_contain_text(f"Kept1 snapshot: {made[1][:8]}")
    expect(details).to_contain_text(f"Deleted1 snapshot: {made[0][:8]}")
