"""Job History and the Scheduling views in a real browser: filters kept in the URL, the
columns an operator reads, times with their UTC instant, views that follow the events."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.support import ui
from tests.support.schedules import wait_jobs
from tests.support.stack import Stack
from tests.support.ui import signed_in

pytestmark = pytest.mark.integration

# No test here runs an event loop of its own (asyncio.run): one browser serves them all.
browser = ui.module_browser

UTC_INSTANT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC$")
EVERY_2_MIN = {"recurrence": "custom", "interval": {"minutes": 2}}


def backup_task(
    stack: Stack, tmp_path: Path, name: str, make_source: bool = True, **extra: Any
) -> tuple[str, dict[str, Any] | None]:
    """A backup task of a small source into a store of its own: its id, and the job it
    ran once when saved without schedules (ended)."""
    src = tmp_path / f"{name}-src"
    if make_source:
        (src / "docs").mkdir(parents=True)
        (src / "docs" / "a.txt").write_text(f"{name}\n" * 2000)
    source = stack.connector(f"{name}-src", "source", str(src))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store")
    body = {"name": name, "type": "backup", "source_id": source, "store_id": store, **extra}
    saved = stack.post("/tasks", body, expect=201)
    job = stack.wait_job(saved["job_id"]) if saved["job_id"] else None
    return saved["task"]["id"], job


def run(stack: Stack, task_id: str) -> dict[str, Any]:
    return stack.wait_job(stack.post(f"/tasks/{task_id}/run", expect=202)["job_id"])


def test_the_jobs_list_takes_a_date_range(stack: Stack, tmp_path: Path) -> None:
    task_id, job = backup_task(stack, tmp_path, "range")
    assert job is not None
    queued = datetime.fromisoformat(job["queued_at"])

    def listed(**period: Any) -> list[str]:
        page = stack.get("/jobs", task_id=task_id, **period)
        return [j["id"] for j in page["items"]]

    second = timedelta(seconds=1)
    assert listed(since=(queued - second).isoformat()) == [job["id"]]
    assert listed(since=queued.isoformat()) == [job["id"]]  # since: included
    assert listed(until=queued.isoformat()) == []  # until: excluded
    assert listed(until=(queued + second).isoformat().replace("+00:00", "Z")) == [job["id"]]
    assert listed(since=(queued + second).isoformat()) == []
    for params, field in [
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-01-31"}, "until"),
        ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
    ]:
        answer = stack.get("/jobs", expect=422, **params)
        assert answer["field"] == field, answer
    # The job records what it added to its store (plakar's result line).
    assert job["bytes_added"] > 0, job


def test_job_history_filters_columns_and_times(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    manual_task, manual = backup_task(stack, tmp_path, "hist-manual")
    assert manual is not None and manual["status"] == "succeeded", manual
    # A schedule without a start time runs at once.
    scheduled_task, _ = backup_task(stack, tmp_path, "hist-scheduled", schedules=[EVERY_2_MIN])
    until = datetime.now(UTC) + timedelta(seconds=60)
    scheduled = stack.wait_job(wait_jobs(stack, scheduled_task, 1, until)[0]["id"])
    assert scheduled["trigger"] == "schedule", scheduled

    errors: list[str] = []
    page = signed_in(browser, stack, "#/scheduling/history", errors)
    rows = page.locator("tr.job-row")
    expect(rows.first).to_be_visible()

    # By task: the URL says so, and a reload keeps it.
    page.get_by_label("Task", exact=True).select_option(label="hist-manual")
    expect(page).to_have_url(re.compile(rf"task_id={manual_task}"))
    expect(rows).to_have_count(1)
    page.reload()
    expect(page.get_by_label("Task", exact=True)).to_have_value(manual_task)
    expect(rows).to_have_count(1)
    row = page.locator(f'tr.job-row[data-job-id="{manual["id"]}"]')
    cells = row.locator("td")
    expect(cells.nth(3)).to_have_text("manual")
    expect(cells.nth(5)).to_have_text(re.compile(r"^\d+s$"))  # duration
    expect(cells.nth(6)).to_have_text(re.compile(r"^[\d.]+ (B|KiB|MiB)$"))  # added
    expect(cells.nth(7)).to_have_text(re.compile(r"^[\d.]+ (B|KiB|MiB|GiB)/s$"))  # speed
    # A relative time shows the UTC instant on hover.
    queued = cells.nth(4).locator("time")
    expect(queued).to_have_text(re.compile(r"ago$|^just now$"))
    expect(queued).to_have_attribute("title", UTC_INSTANT)

    # Status and task together; then by connector, with the schedule named in words.
    page.get_by_role("navigation", name="Filter by status").get_by_role(
        "link", name="Failed"
    ).click()
    expect(page).to_have_url(re.compile(rf"status=failed&task_id={manual_task}"))
    expect(page.get_by_text("No jobs match these filters.")).to_be_visible()
    page.get_by_role("button", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"#/scheduling/history$"))
    page.get_by_label("Connector", exact=True).select_option(label="hist-scheduled-src (source)")
    expect(rows.first.locator("td").nth(3)).to_have_text("Every 2 min")
    filtered = page.url

    # A job's popup opens over the filtered list, and closing it gives the list back as it
    # was (not drawn again).
    page.evaluate("document.querySelector('.history-filters').dataset.kept = 'yes'")
    rows.first.get_by_role("button").click()
    dialog = page.locator("dialog#job-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(filtered)
    expect(page.locator(".history-filters[data-kept=yes]")).to_have_count(1)

    # The days queued, in UTC: today has the job, tomorrow has none.
    today = datetime.now(UTC).date()
    page.get_by_label("From (UTC)").fill((today + timedelta(days=1)).isoformat())
    expect(page.get_by_text("No jobs match these filters.")).to_be_visible()
    page.get_by_label("From (UTC)").fill(today.isoformat())
    page.get_by_label("To (UTC)").fill(today.isoformat())
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(rf"from={today}&to={today}$"))
    page.get_by_label("To (UTC)").fill((today - timedelta(days=1)).isoformat())
    expect(page.get_by_text("The “To” day is before the “From” day.")).to_be_visible()
    assert errors == []
    page.context.close()


def test_task_views_follow_the_events(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    task_id, first = backup_task(stack, tmp_path, "live-task", make_source=False)
    assert first is not None and first["status"] == "failed"  # its source is missing

    # The tasks list: the last job changes without a reload.
    errors: list[str] = []
    page = signed_in(browser, stack, "#/scheduling", errors)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="live-task", exact=True))
    expect(row.locator(".badge")).to_have_text("failed")
    (tmp_path / "live-task-src").mkdir()
    (tmp_path / "live-task-src" / "a.txt").write_text("now it exists\n")
    assert run(stack, task_id)["status"] == "succeeded"
    expect(row.locator(".badge")).to_have_text("succeeded")

    # A task's page: a schedule attached elsewhere shows, and once it has fired, its last
    # run and its next one.
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(str(data))))
    page.get_by_role("link", name="live-task", exact=True).click()
    schedules = page.locator("section").filter(has=page.get_by_role("heading", name="Schedules"))
    expect(schedules.get_by_text("No schedules.")).to_be_visible()
    fetches: list[str] = []
    page.on(
        "request",
        lambda r: (
            fetches.append(r.url) if f"/api/v1/schedules?task_id={task_id}" in r.url else None
        ),
    )
    stack.post(f"/tasks/{task_id}/schedules", EVERY_2_MIN, expect=201)
    every = schedules.get_by_role("row").filter(has_text="Every 2 min")
    expect(every.locator("td").nth(2).locator("time")).to_have_attribute("title", UTC_INSTANT)
    expect(every.locator("td").nth(1)).to_contain_text(re.compile(r"in (1|2) min"))

    # A burst of changes costs a few reads, not one each. The page's reads of the schedules
    # are held until the page has every change's event: however the machine's load
    # spreads the burst, the page sees all of it while its first read is on the way.
    later = {"recurrence": "daily", "start_at": "2030-01-01T00:00:00Z"}
    toggled = stack.post(f"/tasks/{task_id}/schedules", later, expect=201)["id"]
    expect(schedules.get_by_role("row").filter(has_text="Daily")).to_have_count(1)
    held: list[Route] = []
    page.route(f"**/api/v1/schedules?task_id={task_id}*", lambda route: held.append(route))
    before = len(fetches)
    changes = len(frames)

    def toggle(n: int) -> int:
        body = {"enabled": n % 2 == 1}
        return stack.client.patch(f"/schedules/{toggled}", json=body).status_code

    # At once, as a script would: the burst lasts what one change takes, whatever the
    # machine's load makes of each.
    with ThreadPoolExecutor(10) as pool:
        assert set(pool.map(toggle, range(10))) == {200}
    stack.client.patch(f"/schedules/{toggled}", json={"enabled": False})

    def told() -> int:
        return sum(toggled in f and '"changed"' in f for f in frames[changes:])

    deadline = time.monotonic() + 30
    while told() < 11:
        assert time.monotonic() < deadline, f"{told()} of 11 changes reached the page"
        page.wait_for_timeout(50)
    for route in held:
        route.continue_()
    page.unroute(f"**/api/v1/schedules?task_id={task_id}*")
    daily = schedules.locator("tr.disabled")
    expect(daily).to_have_count(1)
    expect(daily).to_contain_text("paused")
    assert len(fetches) - before <= 4, fetches[before:]
    assert errors == []
    page.context.close()
