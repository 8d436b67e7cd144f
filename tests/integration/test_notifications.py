"""Notifications for real: a real HTTP receiver and a real SMTP server (aiosmtpd) are
told of failures and recoveries that real plakar runs produced, as the rules say; a
webhook's deliveries are signed, retried with backoff and each attempt recorded; what a
target holds of secrets is never answered; and no target may point at what it must not."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.integration.test_ui import sidebar
from tests.support.receivers import smtp_receiver, webhook_receiver
from tests.support.stack import Stack, many_files

pytestmark = pytest.mark.integration

SECRET = "webhook-signing-secret-8812"


@pytest.fixture(autouse=True)
def _no_target_left(stack: Stack) -> Iterator[None]:
    """Targets (with their rules) go with the test that made them, passed or failed: no
    other test's jobs are told to its receivers, long closed."""
    yield
    for target in stack.get("/notifications/targets"):
        stack.client.delete(f"/notifications/targets/{target['id']}")


def check_task(stack: Stack, tmp_path: Path, name: str) -> tuple[str, str, str]:
    """A check task of an empty store (it fails: nothing to check), its store, and a
    backup task that gives the store a snapshot (the check then succeeds)."""
    store = stack.store(f"{name}-store", tmp_path / "store")
    source = stack.connector(f"{name}-src", "source", str(many_files(tmp_path / "src", 2)))
    on_demand = [{"recurrence": "daily", "enabled": False}]
    backup = {"type": "backup", "source_id": source, "store_id": store, "schedules": on_demand}
    return (
        stack.scheduled_check(store, name, enabled=False),
        store,
        stack.post("/tasks", backup, expect=201)["task"]["id"],
    )


def run(stack: Stack, task: str, status: str) -> dict[str, Any]:
    job = stack.wait_job(stack.post(f"/tasks/{task}/run", expect=202)["job_id"])
    assert job["status"] == status, job
    return job


def deliveries(stack: Stack, target: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(300):
        found = stack.get("/notifications/deliveries", target_id=target)
        if len(found) >= count and all(d["status"] != "pending" for d in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"deliveries did not end: {found}")


def test_a_failure_and_the_recovery_are_posted_signed_retried_and_recorded(
    stack: Stack, tmp_path: Path
) -> None:
    task, _, backup = check_task(stack, tmp_path, "notify-web")
    other, _, _ = check_task(stack, tmp_path / "other", "notify-other")
    # The first delivery is refused twice before it goes through.
    with webhook_receiver([500, 503]) as receiver, webhook_receiver() as bystander:
        hook = {"name": "notify-hook", "kind": "webhook", "url": receiver.url, "secret": SECRET}
        target = stack.post("/notifications/targets", hook, expect=201)
        unrelated = stack.post(
            "/notifications/targets",
            {"name": "notify-bystander", "kind": "webhook", "url": bystander.url},
            expect=201,
        )
        events = ["job.failed", "job.recovered"]
        rule = {"target_id": target["id"], "events": events, "task_id": task}
        stack.post("/notifications/rules", rule, expect=201)
        stack.post(
            "/notifications/rules",
            {"target_id": unrelated["id"], "events": events, "task_id": other},
            expect=201,
        )

        failed = run(stack, task, "failed")
        posts = receiver.wait(3)
        ended = datetime.fromisoformat(failed["finished_at"]).timestamp()
        print(f"\njob.failed first posted {posts[0].wall - ended:.2f}s after the job ended")
        assert len({p.body for p in posts}) == 1, "each attempt sends the same event"
        body = posts[-1].body
        notice = json.loads(body)
        assert notice["kind"] == "job.failed"
        assert (notice["job_id"], notice["task_id"], notice["task_name"]) == (
            failed["id"],
            task,
            "notify-web",
        )
        assert notice["status"] == "failed" and "nothing was checked" in notice["error"]
        # The event itself as on NATS, beside the task it is about.
        assert notice["finished"]["kind"] == "finished"
        assert notice["finished"]["job_id"] == failed["id"]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        for p in posts:
            assert p.headers["X-Plakar-Signature"] == expected
            assert p.headers["X-Plakar-Event"] == "job.failed"
            assert p.path == "/hooks/plakar-3f9a"
        # Backoff: each retry waits 4 times longer than the one before (0.5 s, then 2 s
        # here; a loaded machine only adds to them).
        gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
        assert gaps[0] >= 0.45 and gaps[1] >= 1.95, gaps
        [delivery] = deliveries(stack, target["id"], 1)
        assert delivery["status"] == "delivered" and delivery["kind"] == "job.failed"
        assert [(a["ok"], a["detail"]) for a in delivery["attempts"]] == [
            (False, "HTTP 500"),
            (False, "HTTP 503"),
            (True, "HTTP 204"),
        ]
        assert len({p.headers["X-Plakar-Delivery"] for p in posts}) == 1

        # Fixed: the next success tells of the recovery, once; later successes are quiet.
        run(stack, backup, "succeeded")
        recovered = run(stack, task, "succeeded")
        posts = receiver.wait(4)
        notice = json.loads(posts[3].body)
        assert notice["kind"] == "job.recovered" and notice["job_id"] == recovered["id"]
        assert notice["failed_job_id"] == failed["id"]
        run(stack, task, "succeeded")
        assert len(deliveries(stack, target["id"], 2)) == 2
        assert len(receiver.posted) == 4
        assert bystander.posted == [], "a rule of another task told this one's events"


def test_mail_goes_through_a_real_smtp_server(stack: Stack, tmp_path: Path) -> None:
    task, store, _ = check_task(stack, tmp_path, "notify-mail")
    with smtp_receiver() as smtp:
        target = stack.post(
            "/notifications/targets",
            {
                "name": "notify-mail",
                "kind": "email",
                "to": ["ops@example.com", "oncall@example.com", "ops@example.com"],
                "smtp": {"host": smtp.host, "port": smtp.port, "starttls": False},
            },
            expect=201,
        )
        assert target["to"] == ["ops@example.com", "oncall@example.com"]
        # Of what touches the store: the check job uses it.
        rule = {"target_id": target["id"], "events": ["job.failed"], "connector_id": store}
        stack.post("/notifications/rules", rule, expect=201)
        failed = run(stack, task, "failed")
        [(sender, recipients, mail)] = smtp.wait(1)
        assert recipients == ["ops@example.com", "oncall@example.com"]
        assert sender.startswith("plakar-control-plane@")
        assert mail["Subject"] == "[plakar] check task notify-mail failed"
        assert failed["id"] in mail.get_payload()
        [delivery] = deliveries(stack, target["id"], 1)
        assert delivery["attempts"][0]["ok"] is True

        # The test action sends at once and says what the server answered.
        sent = stack.post(f"/notifications/targets/{target['id']}/test", expect=200)
        assert sent["ok"] is True, sent
        # A long subject is folded on the wire; unfolded, blanks at its ends go.
        assert str(smtp.wait(2)[1][2]["Subject"]).strip().startswith("[plakar] (test) ")


def test_a_receiver_that_keeps_failing_is_given_up_on_and_redirects_are_not_followed(
    stack: Stack, tmp_path: Path
) -> None:
    task, _, _ = check_task(stack, tmp_path, "notify-give-up")
    with webhook_receiver([302, 500, 500, 500, 500, 500]) as receiver:
        target = stack.post(
            "/notifications/targets",
            {"name": "notify-give-up", "kind": "webhook", "url": receiver.url},
            expect=201,
        )
        test = stack.post(f"/notifications/targets/{target['id']}/test", expect=200)
        assert test == {"ok": False, "detail": "HTTP 302"}, "a redirect is not a delivery"
        assert "X-Plakar-Signature" not in receiver.posted[0].headers  # no secret: unsigned
        assert receiver.posted[0].headers["X-Plakar-Event"] == "test"
        rule = {"target_id": target["id"], "events": ["job.failed"], "task_id": task}
        stack.post("/notifications/rules", rule, expect=201)
        run(stack, task, "failed")
        # 6 attempts in all: 0.5 + 2 + 8 + 32 + 128 s would be too long here, so the
        # test only sees the first ones go and the delivery stay pending with a next try.
        receiver.wait(3)
        for _ in range(300):  # the third attempt recorded (its answer was sent first)
            [delivery] = stack.get("/notifications/deliveries", target_id=target["id"])
            if len(delivery["attempts"]) >= 3:
                break
            time.sleep(0.1)
        assert delivery["status"] == "pending" and delivery["next_at"] is not None
        assert all(a["ok"] is False for a in delivery["attempts"])
        next_at = datetime.fromisoformat(delivery["next_at"])
        last = datetime.fromisoformat(delivery["attempts"][-1]["at"])
        # After the third failure, the fourth attempt waits 0.5 s x 4 x 4.
        assert (next_at - last).total_seconds() >= 7.9, delivery
        # A deleted target takes its rules and deliveries with it.
        assert stack.client.delete(f"/notifications/targets/{target['id']}").status_code == 204
        rules = stack.get("/notifications/rules")
        assert all(r["target_id"] != target["id"] for r in rules)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"kind": "webhook", "url": "http://metadata.google.internal/x"}, "url"),
        ({"kind": "webhook", "url": "http://[fe80::1]/x"}, "url"),
        ({"kind": "webhook", "url": "http://user:pw@example.com/x"}, "url"),
        ({"kind": "webhook", "url": "file:///etc/passwd"}, "url"),
        ({"kind": "webhook", "url": "http://example.com/x#y"}, "url"),
        ({"kind": "webhook", "url": "http://example.com/x", "to": ["a@b.c"]}, "to"),
        ({"kind": "webhook"}, "url"),
        ({"kind": "email", "to": ["not an address"], "smtp": {"host": "mail"}}, "to"),
        ({"kind": "email", "to": ["a@b.c"]}, "smtp"),
        ({"kind": "email", "to": ["a@b.c"], "smtp": {"host": "169.254.169.254"}}, "smtp.host"),
        ({"kind": "email", "to": ["a@b.c"], "smtp": {"host": "m", "port": 0}}, "smtp.port"),
        (
            {"kind": "email", "to": ["a@b.c"], "smtp": {"host": "m", "password": "p"}},
            "smtp.username",
        ),
    ],
)
def test_targets_are_refused_where_they_must_not_point(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    answer = stack.client.post("/notifications/targets", json={"name": "refused", **body})
    assert answer.status_code == 422 and answer.json()["field"] == field, answer.text


def test_secrets_of_targets_are_never_answered(stack: Stack) -> None:
    hook = {
        "name": "notify-secret",
        "kind": "webhook",
        "url": "https://hooks.example.com/services/T000/B000/tokentoken",
        "secret": SECRET,
    }
    created = stack.post("/notifications/targets", hook, expect=201)
    assert created["url"] == "https://hooks.example.com/********"
    assert created["secret"] == "********"
    path = f"/notifications/targets/{created['id']}"
    # Sent back as answered, with a new name: the stored values stay.
    answer = stack.client.patch(path, json={**created, "name": "notify-secret-2"})
    assert answer.status_code == 400  # id, kind, created_at are not fields one changes
    kept = {k: created[k] for k in ("url", "secret")}
    answer = stack.client.patch(path, json={**kept, "name": "notify-secret-2"})
    assert answer.status_code == 200, answer.text
    listed = stack.get("/notifications/targets")
    text = json.dumps(listed)
    assert SECRET not in text and "tokentoken" not in text
    mail = {
        "name": "notify-secret-mail",
        "kind": "email",
        "to": ["a@example.com"],
        "smtp": {"host": "mail.example.com", "username": "u", "password": "smtp-pass-5521"},
    }
    created = stack.post("/notifications/targets", mail, expect=201)
    assert created["smtp"]["password"] == "********"
    assert "smtp-pass-5521" not in json.dumps(stack.get("/notifications/targets"))


def test_rules_name_what_exists(stack: Stack) -> None:
    target = stack.post(
        "/notifications/targets",
        {"name": "notify-rules", "kind": "webhook", "url": "http://127.0.0.1:9/x"},
        expect=201,
    )
    missing = "00000000-0000-4000-8000-000000000000"
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"events": ["job.failed"], "task_id": missing}, 422, "task_id"),
        ({"events": ["job.failed"], "connector_id": missing}, 422, "connector_id"),
        ({"events": []}, 422, "events"),
        ({"events": ["job.exploded"]}, 400, None),
    ]
    for body, status, field in cases:
        answer = stack.client.post("/notifications/rules", json={"target_id": target["id"], **body})
        assert answer.status_code == status, answer.text
        assert answer.json().get("field") == field or status == 400
    answer = stack.client.post(
        "/notifications/rules", json={"target_id": missing, "events": ["job.failed"]}
    )
    assert answer.status_code == 422 and answer.json()["field"] == "target_id"
    rule = stack.post(
        "/notifications/rules",
        {"target_id": target["id"], "events": ["freshness.lost", "freshness.lost"]},
        expect=201,
    )
    assert rule["events"] == ["freshness.lost"]
    patched = stack.client.patch(
        f"/notifications/rules/{rule['id']}", json={"events": ["job.recovered"]}
    )
    assert patched.json()["events"] == ["job.recovered"], patched.text


def test_targets_and_rules_are_managed_in_the_ui(stack: Stack, page: Page, tmp_path: Path) -> None:
    task, _, _ = check_task(stack, tmp_path, "notify-ui")
    with webhook_receiver() as receiver:
        sidebar(page, "Notifications")
        expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
        form = page.get_by_role("form", name="New notification target")
        form.get_by_label("Name", exact=True).fill("notify-ui-hook")
        form.get_by_label("URL", exact=True).fill(receiver.url)
        form.get_by_label("Secret", exact=True).fill(SECRET)
        form.get_by_role("button", name="Add target").click()
        row = page.get_by_role("row").filter(has_text="notify-ui-hook")
        origin = receiver.url.rsplit("/", 2)[0]
        expect(row).to_contain_text(f"{origin}/********")
        row.get_by_role("button", name="Send test").click()
        expect(row).to_contain_text("Sent: HTTP 204")
        assert receiver.wait(1)[0].headers["X-Plakar-Event"] == "test"

        rules = page.get_by_role("form", name="New notification rule")
        rules.get_by_label("Target", exact=True).select_option(label="notify-ui-hook")
        expect(rules.get_by_label("job.failed")).to_be_checked()
        rules.get_by_label("job.recovered").check()
        rules.get_by_label("Task", exact=True).select_option(label="check · notify-ui")
        rules.get_by_role("button", name="Add rule").click()
        rule_row = page.get_by_role("row").filter(has_text="task notify-ui")
        expect(rule_row).to_contain_text("job.failed")
        expect(rule_row).to_contain_text("job.recovered")

        run(stack, task, "failed")
        assert json.loads(receiver.wait(2)[1].body)["kind"] == "job.failed"
        hook = next(t for t in stack.get("/notifications/targets") if t["name"] == "notify-ui-hook")
        deliveries(stack, hook["id"], 1)
        page.reload()
        delivered = page.get_by_role("region", name="Deliveries").get_by_role("row").nth(1)
        expect(delivered).to_contain_text("job.failed")
        expect(delivered).to_contain_text("delivered")
        assert SECRET not in page.content()
