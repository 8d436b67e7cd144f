"""Tokens and roles as an attacker would try them: every route called with a token of
every role, as docs/api.md's table says it may be (or answers 403 before reading the
body); tokens shown once, stored hashed, revoked at once with their sessions."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.stack import Stack
from tests.support.ui import signed_in

pytestmark = pytest.mark.integration

DOCS = Path(__file__).parents[2] / "docs" / "api.md"
ROLES = ("viewer", "operator", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}


def documented() -> dict[tuple[str, str], str]:
    """(method, path) → role, from the table of docs/api.md."""
    rows = re.findall(r"^\| `(\w+) (/\S*)` \| (\w+) \|$", DOCS.read_text(), re.M)
    return {(method, path): role for method, path, role in rows}


def token(stack: Stack, role: str) -> str:
    name = f"roles-{role}-{uuid.uuid4().hex[:6]}"
    made = stack.post("/tokens", {"name": name, "role": role}, expect=201)
    assert made["role"] == role and made["name"] == name
    secret: str = made["token"]
    return secret


def test_every_route_answers_each_role_as_documented(stack: Stack) -> None:
    table = documented()
    schema = httpx.get(
        stack.endpoints["api_url"].removesuffix("/api/v1") + "/schema/openapi.json",
        headers={"Authorization": f"Bearer {stack.token}"},
    ).json()
    served = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, ops in schema["paths"].items()
        for method in ops
        if method in ("get", "post", "patch", "delete", "put")
    }
    http_rows = {k for k in table if k[0] != "WS"}
    assert served == http_rows, (
        f"undocumented: {sorted(served - http_rows)}; gone: {sorted(http_rows - served)}"
    )
    tokens = {"admin": stack.token, **{r: token(stack, r) for r in ("viewer", "operator")}}
    wrong: list[str] = []
    with httpx.Client(timeout=30) as http:  # one client: a new one costs a TLS context each
        for (method, path), need in sorted(table.items()):
            if method == "WS":
                continue
            # An id that names nothing: what is allowed goes as far as a 404 (or a 400/422
            # for the empty body), and changes nothing.
            url = stack.endpoints["api_url"] + re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)
            for role in ROLES:
                if (method, path) in (("POST", "/session"), ("DELETE", "/session")):
                    continue  # any role; checked below
                answer = http.request(
                    method,
                    url,
                    headers={"Authorization": f"Bearer {tokens[role]}"},
                    json={} if method in ("POST", "PATCH") else None,
                )
                allowed = RANK[role] >= RANK[need]
                if allowed == (answer.status_code == 403):
                    wrong.append(f"{role} {method} {path}: {answer.status_code} {answer.text[:80]}")
        assert not http.cookies  # a token's calls get no session cookie
    assert wrong == [], "\n".join(wrong)


def test_websockets_take_every_role(stack: Stack) -> None:
    viewer = token(stack, "viewer")
    with connect(stack.ws_url("/events").replace(stack.token, viewer)) as ws:
        ws.ping()
    with pytest.raises(InvalidStatus) as refused:
        connect(stack.ws_url("/events").replace(stack.token, "pcp_not-a-token"))
    assert refused.value.response.status_code in (401, 403)  # the handshake is refused


def test_an_operator_turns_schedules_on_and_off_and_nothing_more(
    stack: Stack, tmp_path: Path
) -> None:
    store = stack.store("roles-store", tmp_path / "store")
    task = stack.scheduled_check(store)
    [schedule] = stack.get("/schedules", task_id=task)
    operator = {"Authorization": f"Bearer {token(stack, 'operator')}"}
    path = f"{stack.endpoints['api_url']}/schedules/{schedule['id']}"
    off = httpx.patch(path, json={"enabled": False}, headers=operator)
    assert off.status_code == 200 and off.json()["enabled"] is False, off.text
    more = httpx.patch(path, json={"enabled": True, "recurrence": "weekly"}, headers=operator)
    assert more.status_code == 403 and "on or off" in more.json()["error"], more.text
    assert stack.get(f"/schedules/{schedule['id']}")["recurrence"] == "daily"
    run = httpx.post(f"{stack.endpoints['api_url']}/tasks/{task}/run", headers=operator)
    assert run.status_code == 202, run.text
    stack.wait_job(run.json()["job_id"])


def test_tokens_are_shown_once_stored_hashed_and_revoked_with_their_sessions(
    stack: Stack,
) -> None:
    made = stack.post("/tokens", {"name": "roles-revoked", "role": "operator"}, expect=201)
    secret = made["token"]
    listed = {t["id"]: t for t in stack.get("/tokens")}
    assert "token" not in listed[made["id"]] and secret not in str(listed)
    assert listed[made["id"]]["revoked_at"] is None

    async def stored() -> list[Any]:
        conn = await asyncpg.connect(stack.database_url())
        try:
            return list(await conn.fetch("SELECT hash FROM api_tokens"))
        finally:
            await conn.close()

    hashes = {bytes(r["hash"]) for r in asyncio.run(stored())}
    assert hashlib.sha256(secret.encode()).digest() in hashes
    assert not any(secret.encode() in h for h in hashes)

    api = stack.endpoints["api_url"]
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=api) as browser:
        opened = browser.post("/session", headers=headers)
        assert opened.status_code == 201 and opened.json()["role"] == "operator"
        assert browser.get("/session").json()["token_name"] == "roles-revoked"
        assert httpx.get(f"{api}/tasks", headers=headers).status_code == 200
        assert stack.get("/tokens")  # last used is told
        revoked = stack.client.delete(f"/tokens/{made['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
        # At once: the token and the session it opened.
        assert httpx.get(f"{api}/tasks", headers=headers).status_code == 401
        assert browser.get("/session").status_code == 401
    used = {t["id"]: t for t in stack.get("/tokens")}[made["id"]]
    assert used["last_used_at"] is not None
    again = stack.client.post("/tokens", json={"name": "roles-revoked", "role": "viewer"})
    assert again.status_code == 409, "a revoked token's name is not given again"


def test_the_last_admin_token_cannot_be_revoked(stack: Stack) -> None:
    admins = [t for t in stack.get("/tokens") if t["role"] == "admin" and not t["revoked_at"]]
    if len(admins) == 1:
        answer = stack.client.delete(f"/tokens/{admins[0]['id']}")
        assert answer.status_code == 409 and "last admin" in answer.json()["error"]
    other = stack.post("/tokens", {"name": "roles-admin-2", "role": "admin"}, expect=201)
    assert stack.client.delete(f"/tokens/{other['id']}").status_code == 200
    assert stack.get("/health")["status"] == "ok"  # the up token still works


def control(page: Page, name: str) -> Locator:
    """A button or a link of that name."""
    button = page.get_by_role("button", name=name, exact=True)
    return button.or_(page.get_by_role("link", name=name, exact=True))


def test_the_ui_offers_each_role_only_what_it_may_do(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    store = stack.store("roles-ui-store", tmp_path / "store")
    task = stack.scheduled_check(store, "roles-ui")
    job = stack.wait_job(stack.post(f"/tasks/{task}/run", expect=202)["job_id"])
    errors: list[str] = []
    for role, offered, hidden in [
        ("viewer", [], ["Run now", "Delete task", "Retry job", "New task", "API tokens"]),
        ("operator", ["Run now", "Retry job"], ["Delete task", "New task", "API tokens"]),
        ("admin", ["Run now", "Delete task", "Retry job", "New task", "API tokens"], []),
    ]:
        page = signed_in(browser, stack, f"#/scheduling/tasks/{task}", errors, token(stack, role))
        expect(page.locator("#signed-in-as")).to_contain_text(role)
        expect(page.get_by_role("heading", name="roles-ui")).to_be_visible()
        toggle = page.get_by_role("checkbox", name=re.compile("^Schedule .* enabled$"))
        if role == "viewer":
            expect(toggle).to_be_disabled()
        else:
            expect(toggle).to_be_enabled()
        page.goto(f"{stack.endpoints['ui_url']}#/scheduling/tasks/{task}?job={job['id']}")
        expect(page.locator(".job-view")).to_contain_text(job["id"])

        for name in offered:
            if name == "New task":
                page.goto(f"{stack.endpoints['ui_url']}#/scheduling/tasks")
            expect(control(page, name).first).to_be_visible()
        page.goto(f"{stack.endpoints['ui_url']}#/scheduling/tasks/{task}?job={job['id']}")
        expect(page.locator(".job-view")).to_contain_text(job["id"])
        for name in hidden:
            if name == "New task":
                page.goto(f"{stack.endpoints['ui_url']}#/scheduling/tasks")
                expect(page.get_by_role("heading", name="Scheduling")).to_be_visible()
            expect(control(page, name)).to_be_hidden()
        page.context.close()
    assert errors == []


def test_an_admin_makes_a_token_in_the_ui_sees_it_once_and_revokes_it(
    stack: Stack, browser: Browser
) -> None:
    errors: list[str] = []
    page = signed_in(browser, stack, "#/tokens", errors, token(stack, "admin"))
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    form = page.get_by_role("form", name="New API token")
    form.get_by_label("Name").fill("roles-ui-script")
    form.get_by_label("Role").select_option("operator")
    # What the role may do is the api's word (GET /rules).
    expect(form).to_contain_text("runs tasks, cancels and retries jobs")
    form.get_by_role("button", name="Create token").click()
    shown = page.locator(".made-token code")
    expect(shown).to_have_text(re.compile(r"^\S{20,}$"))
    secret = shown.inner_text()
    api = stack.endpoints["api_url"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{api}/session", headers=headers).json()["role"] == "operator"
    row = page.get_by_role("row", name=re.compile("roles-ui-script"))
    expect(row).to_contain_text("operator")

    page.reload()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(page.locator(".made-token")).to_have_count(0)  # shown once
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row", name=re.compile("roles-ui-script")).get_by_role(
        "button", name="Revoke"
    ).click()
    expect(page.get_by_role("row", name=re.compile("roles-ui-script"))).to_contain_text("revoked")
    assert httpx.get(f"{api}/session", headers=headers).status_code == 401
    [audit] = stack.get(
        "/audit",
        action="token.revoke",
        object_id=next(t["id"] for t in stack.get("/tokens") if t["name"] == "roles-ui-script"),
    )["items"]
    assert audit["via"] == "session"
    page.context.close()
    assert errors == []
