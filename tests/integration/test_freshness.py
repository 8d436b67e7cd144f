"""Freshness for real: a task and its store whose last success is older than their window
turn stale (the api says so, the UI shows them red, the scheduler tells `freshness.lost`
on NATS, the event feed and a webhook its rule names), and fresh again with a new success
(`freshness.restored`)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from websockets.sync.client import ClientConnection, connect

from tests.support.receivers import webhook_receiver
from tests.support.stack import Stack, many_files
from tests.support.ui import signed_in

pytestmark = pytest.mark.integration


def next_event(ws: ClientConnection, kind: str, of: str) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = json.loads(ws.recv(timeout=120))
        if event["kind"] == kind and event["id"] == of:
            return event


def test_a_task_and_its_store_go_stale_and_fresh_again(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    source = stack.connector("fresh-src", "source", str(many_files(tmp_path / "src", 3)))
    store = stack.store("fresh-store", tmp_path / "store")
    assert stack.client.patch(f"/connectors/{store}", json={"freshness": "1m"}).status_code == 200
    body = {"type": "backup", "source_id": source, "store_id": store, "name": "fresh-task"}
    created = stack.post("/tasks", {**body, "freshness": "1m"}, expect=201)
    task = created["task"]["id"]
    assert created["task"]["freshness"] == "1m"
    job = stack.wait_job(created["job_id"])
    assert job["status"] == "succeeded", job
    assert stack.get(f"/tasks/{task}")["freshness_state"] == "fresh"
    assert stack.get(f"/connectors/{store}")["freshness_state"] == "fresh"

    kinds = "freshness.lost,freshness.restored"
    with webhook_receiver() as receiver, connect(stack.ws_url("/events", kinds=kinds)) as ws:
        # Told to a webhook too, by a rule for the task: whether or not anything ran.
        hook = {"name": "fresh-hook", "kind": "webhook", "url": receiver.url}
        target = stack.post("/notifications/targets", hook, expect=201)["id"]
        rule = {"target_id": target, "events": kinds.split(","), "task_id": task}
        stack.post("/notifications/rules", rule, expect=201)
        lost = next_event(ws, "freshness.lost", task)
        assert (lost["watched"], lost["name"], lost["window"]) == ("task", "fresh-task", "1m")
        assert lost["last_success_at"] == job["finished_at"]
        late = time.time() - (datetime.fromisoformat(job["finished_at"]).timestamp() + 60)
        print(f"\nfreshness.lost told {late:.2f}s after the task went stale")
        assert stack.get(f"/tasks/{task}")["freshness_state"] == "stale"
        next_event(ws, "freshness.lost", store)
        assert stack.get(f"/connectors/{store}")["freshness_state"] == "stale"

        # Red where an operator looks: the task's page and the task list, the store's page.
        page = signed_in(browser, stack, f"#/scheduling/tasks/{task}")
        stale = "Stale: no successful job of this {} finished within 1m."
        expect(page.get_by_text(stale.format("task"))).to_be_visible()
        page.goto(f"{stack.endpoints['ui_url']}#/scheduling")
        row = page.get_by_role("row").filter(has_text="fresh-task")
        expect(row.get_by_text("stale", exact=True)).to_be_visible()
        page.goto(f"{stack.endpoints['ui_url']}#/connectors/{store}")
        expect(page.get_by_text(stale.format("connector"))).to_be_visible()
        page.context.close()

        again = stack.post(f"/tasks/{task}/run", expect=202)["job_id"]
        assert stack.wait_job(again)["status"] == "succeeded"
        assert stack.get(f"/tasks/{task}")["freshness_state"] == "fresh"
        restored = next_event(ws, "freshness.restored", task)
        assert restored["watched"] == "task"
        next_event(ws, "freshness.restored", store)

        # The webhook got the very events published on NATS, the store's none (no rule).
        told = [json.loads(p.body) for p in receiver.wait(2)]
        stack.client.delete(f"/notifications/targets/{target}")
        assert told == [lost, restored]
        assert [p.headers["X-Plakar-Event"] for p in receiver.posted] == kinds.split(",")
