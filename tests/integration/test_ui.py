"""The web UI driven in a real browser: connectors, a one-off backup, its job."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.stack import Stack
from tests.support.ui import signed_in

pytestmark = pytest.mark.integration

SHOTS = Path("/tmp")


def sidebar(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def new_connector(
    page: Page, name: str, role: str, location: str, passphrase: str | None = None
) -> None:
    sidebar(page, "Connectors")
    page.get_by_role("link", name="New connector").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_label("Location", exact=True).fill(location)
    if passphrase:
        # One passphrase field, typed twice: the two must match before the form is sent.
        value = page.get_by_label("Passphrase", exact=True)
        expect(value).to_have_attribute("type", "password")
        value.fill(passphrase)
        page.get_by_label("Confirm passphrase", exact=True).fill(passphrase)
    page.get_by_role("button", name="Create connector").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


def test_one_off_backup_through_the_ui(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "note.txt").write_text("hello from the ui\n")
    (src / "data.bin").write_bytes(os.urandom(128 * 1024))
    # The token in the URL fragment is traded for an HttpOnly session cookie, and leaves
    # the address bar: page scripts never see it again.
    page_errors: list[str] = []
    page = signed_in(browser, stack, errors=page_errors)
    context = page.context
    cookie = next(c for c in context.cookies() if c["name"] == "plakar_cp_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert stack.token not in cookie["value"]
    assert stack.token not in page.evaluate("document.cookie + location.href")

    # An API error shows next to the field it names.
    sidebar(page, "Connectors")
    page.get_by_role("link", name="New connector").click()
    page.get_by_label("Name", exact=True).fill("ui-src")
    page.get_by_label("Location", exact=True).fill("relative/path")
    page.get_by_role("button", name="Create connector").click()
    location_error = page.locator('[data-field-box="location"] .field-error')
    expect(location_error).to_contain_text("absolute path")

    new_connector(page, "ui-src", "source", str(src))
    new_connector(page, "ui-store", "store", str(tmp_path / "store"), passphrase="ui-secret-123")
    page.once("dialog", lambda d: d.accept())  # Initialize asks first
    page.get_by_role("button", name="Initialize").click()
    expect(page.locator(".action-result")).to_contain_text("Initialize: OK", timeout=30_000)
    page.screenshot(path=str(SHOTS / "ui-connector.png"), full_page=True)

    sidebar(page, "Scheduling")
    page.get_by_role("link", name="New task").click()
    page.get_by_label("Source", exact=True).select_option(label=f"ui-src — {src}")
    page.get_by_label("Store", exact=True).select_option(label=f"ui-store — {tmp_path / 'store'}")
    page.get_by_label("Labels", exact=True).fill("ui nightly")
    page.get_by_text("Advanced options").click()
    expect(page.get_by_label("Concurrency")).to_have_attribute(
        "placeholder", "recommended by the runner"
    )
    page.screenshot(path=str(SHOTS / "ui-task-form.png"), full_page=True)
    page.get_by_role("button", name="Save and run once").click()

    # Job History shows the new job, named in the URL, until it ends.
    expect(page).to_have_url(re.compile(r"#/scheduling/history\?created=[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("=", 1)[1]
    row = page.locator(f'tr.job-row[data-job-id="{job_id}"]')
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=60_000)
    page.screenshot(path=str(SHOTS / "ui-history.png"), full_page=True)
    job = stack.get(f"/jobs/{job_id}")
    assert job["status"] == "succeeded"

    row.get_by_role("button").click()
    dialog = page.locator("dialog#job-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(job_id)
    output = dialog.locator(".output")
    expect(output).to_contain_text("backup completed without errors", timeout=15_000)
    expect(output.locator(".line").first).to_be_visible()
    snapshot = dialog.get_by_role("link", name=job["snapshot_id"])
    expect(snapshot).to_have_attribute("href", job["snapshot_url"])
    dialog.screenshot(path=str(SHOTS / "ui-job.png"))

    # The snapshot link opens the snapshot's page.
    snapshot.click()
    expect(page.get_by_role("heading", name=f"Snapshot {job['snapshot_id'][:8]}")).to_be_visible()
    expect(page.locator("main .details")).to_contain_text(job["snapshot_id"], timeout=30_000)
    # Its files, from the backed-up directory down.
    page.get_by_role("link", name="docs/").click()
    expect(page.locator("table.files")).to_contain_text("note.txt", timeout=30_000)
    page.screenshot(path=str(SHOTS / "ui-snapshot.png"), full_page=True)
    assert page_errors == []
    context.close()
