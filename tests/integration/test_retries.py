"""Retries of failed jobs for real: by hand (the API and the job popup) and by a task's
policy (the scheduler queues the retry a minute after the failure)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from shared.retries import retry_job_id
from tests.support.stack import Stack
from tests.support.ui import signed_in

pytestmark = pytest.mark.integration


def failing_backup(stack: Stack, name: str, tmp_path: Path, **fields: Any) -> tuple[str, Path]:
    """A backup task whose source is not there yet, and its first job, failed."""
    src = tmp_path / f"{name}-src"
    source = stack.connector(f"{name}-src", "source", str(src))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store")
    body = {"type": "backup", "source_id": source, "store_id": store, **fields}
    job = stack.wait_job(stack.post("/tasks", body, expect=201)["job_id"])
    assert job["status"] == "failed", job
    assert job["retry_of"] is None and job["retried_by"] is None
    return job["id"], src


def test_a_failed_job_is_retried_by_hand_once(stack: Stack, tmp_path: Path) -> None:
    failed, src = failing_backup(stack, "by-hand", tmp_path)
    src.mkdir()
    (src / "file").write_text("there now\n")

    answer = stack.client.post(f"/jobs/{failed}/retry")
    assert answer.status_code == 202, answer.text
    retry = answer.json()["job_id"]
    assert retry == retry_job_id(failed)
    job = stack.wait_job(retry)
    assert (job["status"], job["trigger"], job["retry_of"]) == ("succeeded", "manual", failed)
    assert stack.get(f"/jobs/{failed}")["retried_by"] == retry

    # Once only; and never a job that did not fail or was not cancelled.
    again = stack.client.post(f"/jobs/{failed}/retry")
    assert again.status_code == 409 and retry in again.json()["error"], again.text
    succeeded = stack.client.post(f"/jobs/{retry}/retry")
    assert succeeded.status_code == 409 and "succeeded" in succeeded.json()["error"]
    assert stack.client.post(f"/jobs/{retry_job_id(retry)}/retry").status_code == 404


def test_a_failed_run_is_retried_by_its_tasks_policy(stack: Stack, tmp_path: Path) -> None:
    failed, src = failing_backup(stack, "policy", tmp_path, retry={"attempts": 1, "delay": "1m"})
    src.mkdir()
    (src / "file").write_text("there now\n")
    finished = datetime.fromisoformat(stack.get(f"/jobs/{failed}")["finished_at"])
    deadline = time.monotonic() + 90
    while (retried_by := stack.get(f"/jobs/{failed}")["retried_by"]) is None:
        assert time.monotonic() < deadline, "no retry came"
        time.sleep(0.5)
    job = stack.wait_job(retried_by)
    assert (job["status"], job["trigger"], job["retry_of"]) == ("succeeded", "retry", failed)
    due = datetime.fromisoformat(job["due_at"])
    assert due == finished + timedelta(minutes=1)
    queued = datetime.fromisoformat(job["queued_at"])
    print(f"\nretry queued {(queued - due).total_seconds():.2f}s after its due instant")
    assert timedelta(0) <= queued - due < timedelta(seconds=5)


def test_the_job_popup_retries_a_failed_job_and_links_both(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    failed, _ = failing_backup(stack, "popup", tmp_path)
    page = signed_in(browser, stack, f"#/scheduling/history?job={failed}")
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Retry job").click()
    retry = retry_job_id(failed)
    expect(page).to_have_url(re.compile(rf"\?job={retry}$"))
    expect(dialog.get_by_text("Retry of")).to_be_visible()
    dialog.get_by_role("button", name=f"Job {failed[:8]}").click()
    expect(page).to_have_url(re.compile(rf"\?job={failed}$"))
    expect(dialog.get_by_role("button", name=f"Job {retry[:8]}")).to_be_visible()
    expect(dialog.get_by_role("button", name="Retry job")).to_be_hidden()
    page.context.close()
