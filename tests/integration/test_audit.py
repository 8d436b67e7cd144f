"""The audit trail for real: changes made with tokens of different roles, through the api
and the UI's session, recorded with who, when, what, and the fields before and after, with
secrets masked; no route, and not the api's own database role, can change a record."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.test_ui import sidebar
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PASSPHRASE = "audit-store-passphrase-6672"


def records(stack: Stack, **filters: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.get("/audit", **filters)["items"]
    return items


def test_changes_are_recorded_with_who_and_what_secrets_masked(
    stack: Stack, tmp_path: Path
) -> None:
    made = stack.post("/tokens", {"name": "audit-operator", "role": "operator"}, expect=201)
    operator = {"Authorization": f"Bearer {made['token']}"}
    api = stack.endpoints["api_url"]

    store = stack.store("audit-store", tmp_path / "store", PASSPHRASE)
    patched = stack.client.patch(f"/connectors/{store}", json={"name": "audit-store-2"})
    assert patched.status_code == 200
    [created] = records(stack, action="connector.create", object_id=store)
    assert created["token_name"] == "admin (plakar-cp up)" and created["role"] == "admin"
    assert created["via"] == "token" and created["before"] is None
    assert created["after"]["options"]["passphrase"] == "********"
    [update] = records(stack, action="connector.update", object_id=store)
    assert (update["before"]["name"], update["after"]["name"]) == ("audit-store", "audit-store-2")
    [initialized] = records(stack, action="connector.initialize", object_id=store)
    assert initialized["after"]["ok"] is True

    task = stack.scheduled_check(store)
    run = httpx.post(f"{api}/tasks/{task}/run", headers=operator)
    assert run.status_code == 202, run.text
    job = stack.wait_job(run.json()["job_id"])
    assert job["requested_by"] == "audit-operator"
    [ran] = records(stack, action="task.run", object_id=task)
    assert ran["token_name"] == "audit-operator" and ran["role"] == "operator"
    assert ran["after"] == {"job_id": job["id"]}
    retried = httpx.post(f"{api}/jobs/{job['id']}/retry", headers=operator)
    assert retried.status_code == 202, retried.text
    [retry] = records(stack, action="job.retry", object_id=job["id"])
    assert retry["after"] == {"job_id": retried.json()["job_id"]}

    [schedule] = stack.get("/schedules", task_id=task)
    off = httpx.patch(
        f"{api}/schedules/{schedule['id']}", json={"enabled": False}, headers=operator
    )
    assert off.status_code == 200
    [toggled] = records(stack, action="schedule.update", object_id=schedule["id"])
    assert (toggled["before"]["enabled"], toggled["after"]["enabled"]) == (True, False)

    # Through the UI's session: recorded as such, and signing in is recorded too.
    with httpx.Client(base_url=api) as browser:
        assert browser.post("/session", headers=operator).status_code == 201
        gone = browser.delete(f"/tasks/{task}", headers={"X-Plakar-CSRF": "1"})
        assert gone.status_code == 403  # an operator deletes no task
    [signed_in] = records(stack, action="session.open", token_name="audit-operator")
    assert signed_in["via"] == "token"
    assert records(stack, action="task.delete", object_id=task) == []
    assert stack.client.delete(f"/tasks/{task}").status_code == 204
    [deleted] = records(stack, action="task.delete", object_id=task)
    assert deleted["before"]["id"] == task and deleted["after"] is None

    revoked = stack.client.delete(f"/tokens/{made['id']}")
    assert revoked.status_code == 200
    [token_made] = records(stack, action="token.create", object_id=made["id"])
    assert made["token"] not in json.dumps(token_made)
    assert records(stack, action="token.revoke", object_id=made["id"])
    everything = json.dumps(records(stack, limit=500))
    assert PASSPHRASE not in everything and made["token"] not in everything


def test_pages_and_filters(stack: Stack) -> None:
    for n in range(3):
        stack.post("/tokens", {"name": f"audit-page-{n}", "role": "viewer"}, expect=201)
    first = stack.get("/audit", action="token.create", limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = stack.get("/audit", action="token.create", limit=2, cursor=first["next_cursor"])
    seqs = [r["seq"] for r in first["items"] + rest["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    assert stack.client.get("/audit", params={"cursor": "x"}).status_code == 422
    assert stack.client.get("/audit", params={"since": "yesterday"}).status_code == 422


def test_records_cannot_be_changed_or_deleted(stack: Stack) -> None:
    [last] = records(stack, limit=1)
    for method in ("PATCH", "PUT", "DELETE"):
        answer = stack.client.request(method, "/audit", json={})
        assert answer.status_code == 405, (method, answer.status_code)
        answer = stack.client.request(method, f"/audit/{last['seq']}", json={})
        assert answer.status_code == 404, (method, answer.status_code)

    async def as_api(sql: str) -> str:
        conn = await asyncpg.connect(stack.database_url("plakar_api"))
        try:
            await conn.execute(sql)
            return "allowed"
        except asyncpg.InsufficientPrivilegeError:
            return "refused"
        finally:
            await conn.close()

    # Not even the api's own database role: a compromised api cannot rewrite history.
    assert asyncio.run(as_api("UPDATE audit_log SET token_name = 'x' WHERE false")) == "refused"
    assert asyncio.run(as_api("DELETE FROM audit_log WHERE false")) == "refused"
    assert asyncio.run(as_api("TRUNCATE audit_log")) == "refused"


def test_the_audit_page_lists_changes_and_the_job_names_who_asked(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    store = stack.store("audit-ui-store", tmp_path / "store")
    task = stack.scheduled_check(store, "audit-ui")
    job = stack.wait_job(stack.post(f"/tasks/{task}/run", expect=202)["job_id"])
    sidebar(page, "Audit")
    expect(page.get_by_role("heading", name="Audit", exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has_text="task.run").filter(has_text=task).first
    expect(row).to_contain_text("admin (plakar-cp up)")
    expect(row).to_contain_text(f"job_id: {job['id']}")
    created = page.get_by_role("row").filter(has_text="task.create").filter(has_text=task).first
    expect(created).to_contain_text("name: audit-ui")
    page.get_by_label("Action", exact=True).fill("connector.initialize")
    page.get_by_label("Action", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(r"#/audit\?action=connector\.initialize$"))
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_contain_text("connector.initialize")
    for text in rows.all_inner_texts():
        assert "connector.initialize" in text
    page.goto(f"{stack.endpoints['ui_url']}#/scheduling/history?job={job['id']}")
    expect(page.locator(".job-view dl.details")).to_contain_text("Requested byadmin (plakar-cp up)")
