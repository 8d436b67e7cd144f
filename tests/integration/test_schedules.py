"""Schedules through the API, fired by the real scheduler into real backups."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.test_metrics import Scraper, value
from tests.support.schedules import (
    backup_task,
    iso,
    jobs_of,
    lateness,
    minute_ahead,
    wait_jobs,
    when,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

EVERY_MINUTE = {"recurrence": "custom", "interval": {"minutes": 1}}


def test_a_minute_schedule_fires_on_its_minute_skips_overlaps_and_stops_when_disabled(
    stack: Stack, tmp_path: Path
) -> None:
    scraper = Scraper(stack, "schedules-prometheus")
    before = scraper.scrape()
    start = minute_ahead(5)
    body = backup_task(stack, tmp_path, "every-minute")
    # Two schedules of one task due at the same instant: the second overlaps the first.
    schedules = [{**EVERY_MINUTE, "start_at": iso(start)}] * 2
    created = stack.post("/tasks", {**body, "schedules": schedules}, expect=201)
    assert created["job_id"] is None  # scheduled: no one-off run
    task_id = created["task"]["id"]
    first, second = stack.get("/schedules", task_id=task_id)
    assert first["next_run_at"] == second["next_run_at"] == iso(start)

    at_start = wait_jobs(stack, task_id, 2, start + timedelta(seconds=20))
    assert [when(j["due_at"]) for j in at_start] == [start, start]
    assert all(lateness(j) < 2 for j in at_start), [lateness(j) for j in at_start]
    # GET /metrics' lateness histogram counts both firings, each as late as its job says.
    after = scraper.scrape()
    metric = "plakar_cp_scheduler_lateness_seconds"
    assert value(after, f"{metric}_count") - value(before, f"{metric}_count") == 2
    late = value(after, f"{metric}_sum") - value(before, f"{metric}_sum")
    assert late == pytest.approx(sum(lateness(j) for j in at_start), abs=1e-3)
    ran, skipped = sorted(at_start, key=lambda j: j["status"] == "skipped")
    assert ran["status"] != "skipped" and ran["trigger"] == "schedule"
    assert skipped["status"] == "skipped"
    assert skipped["reason"] == f"job {ran['id']} of this task is still queued"
    assert stack.wait_job(ran["id"])["status"] == "succeeded"

    # The schedule that skipped is disabled; the other fires again a minute later.
    r = stack.client.patch(f"/schedules/{skipped['schedule_id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["next_run_at"] is None
    again = start + timedelta(minutes=1)
    kept = stack.get(f"/schedules/{ran['schedule_id']}")
    assert kept["next_run_at"] == iso(again) and kept["last_run_at"] == iso(start)
    wait_jobs(stack, task_id, 3, again + timedelta(seconds=20))
    time.sleep(3)  # a firing of the disabled schedule would show by now
    later = jobs_of(stack, task_id)
    assert len(later) == 3, later
    last = later[-1]
    assert last["schedule_id"] == ran["schedule_id"] and when(last["due_at"]) == again
    assert last["status"] != "skipped" and lateness(last) < 2
    assert Counter((j["schedule_id"], j["due_at"]) for j in later).most_common(1)[0][1] == 1
    print(f"\nschedule lateness: {[round(lateness(j), 3) for j in later]} s")


def test_schedules_crud_and_every_bad_input(stack: Stack, tmp_path: Path) -> None:
    body = backup_task(stack, tmp_path, "crud")
    task_id = stack.post(
        "/tasks", {**body, "schedules": [{"recurrence": "weekly", "enabled": False}]}, expect=201
    )["task"]["id"]
    far = "2099-01-01T02:00:00Z"

    s = stack.post(
        f"/tasks/{task_id}/schedules", {"recurrence": "weekly", "start_at": far}, expect=201
    )
    assert s["interval"] == {"days": 7, "hours": 0, "minutes": 0}
    assert s["next_run_at"] == far and s["last_run_at"] is None and s["journalised"] is True

    patched = stack.client.patch(
        f"/schedules/{s['id']}", json={"recurrence": "custom", "interval": {"hours": 36}}
    ).json()
    assert patched["interval"] == {"days": 1, "hours": 12, "minutes": 0}
    patched = stack.client.patch(
        f"/schedules/{s['id']}", json={"recurrence": "daily", "journalised": False}
    ).json()
    assert patched["interval"] == {"days": 1, "hours": 0, "minutes": 0}
    assert patched["journalised"] is False and patched["start_at"] == far

    listed = stack.get("/schedules", task_id=task_id)
    assert [x["id"] for x in listed][1:] == [s["id"]] and listed[0]["next_run_at"] is None

    bad = [
        ("start_at", {"recurrence": "daily", "start_at": "2099-01-01T02:00:30Z"}, "to the minute"),
        ("start_at", {"recurrence": "daily", "start_at": "2099-01-01T02:00:00+02:00"}, "in UTC"),
        ("interval", {"recurrence": "custom"}, "a custom recurrence needs an interval"),
        ("interval", {"recurrence": "daily", "interval": {"hours": 1}}, "only for a custom"),
        ("interval", {"recurrence": "custom", "interval": {"minutes": 0}}, "at least 1 minute"),
        ("interval", {"recurrence": "custom", "interval": {"days": 5000}}, "at most 3660 days"),
        (
            "interval.minutes",
            {"recurrence": "custom", "interval": {"hours": 1, "minutes": -5}},
            "minutes cannot be negative",
        ),
    ]
    for field, sent, message in bad:
        r = stack.client.post(f"/tasks/{task_id}/schedules", json=sent)
        assert r.status_code == 422, (sent, r.text)
        assert r.json()["field"] == field and message in r.json()["error"], r.text
    r = stack.client.post(f"/tasks/{task_id}/schedules", json={"recurrence": "hourly"})
    assert r.status_code == 400 and r.json()["field"] == "recurrence"
    r = stack.client.post(f"/tasks/{task_id}/schedules", json={"recurrence": "daily", "at": 1})
    assert r.status_code == 400
    r = stack.client.post(
        "/tasks", json={**body, "schedules": [{"recurrence": "custom", "interval": {}}]}
    )
    assert r.status_code == 422 and r.json()["field"] == "schedules[0].interval"
    r = stack.client.patch(f"/schedules/{s['id']}", json={"start_at": "2099-01-01T02:00:01Z"})
    assert r.status_code == 422 and r.json()["field"] == "start_at"
    r = stack.client.get("/schedules", params={"task_id": "not-a-uuid"})
    assert r.status_code == 400 and r.json()["field"] == "task_id"
    for path in ("/schedules/nope", "/schedules/00000000-0000-0000-0000-000000000000"):
        assert stack.client.get(path).status_code == 404
        assert stack.client.patch(path, json={"enabled": True}).status_code == 404
        assert stack.client.delete(path).status_code == 404
    assert (
        stack.client.post("/tasks/nope/schedules", json={"recurrence": "daily"}).status_code == 404
    )

    assert stack.client.delete(f"/schedules/{s['id']}").status_code == 204
    assert stack.client.get(f"/schedules/{s['id']}").status_code == 404
    assert stack.client.delete(f"/tasks/{task_id}").status_code == 204
    assert stack.get("/schedules", task_id=task_id) == []
