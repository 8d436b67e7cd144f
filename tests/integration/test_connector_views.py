"""A connector's dashboard (past and upcoming runs) and its schedules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.schedules import backup_task, iso, minute_ahead, when
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_dashboard_and_scheduling_views_are_scoped_to_the_connector(
    stack: Stack, tmp_path: Path
) -> None:
    body = backup_task(stack, tmp_path, "views")
    source, store = body["source_id"], body["store_id"]
    other_store = stack.store("views-other", tmp_path / "other")
    soon = minute_ahead(3600)
    twice_daily = {"recurrence": "twice_daily", "start_at": iso(soon)}
    hourly = {"recurrence": "custom", "interval": {"hours": 1}, "start_at": iso(soon)}
    paused = {"recurrence": "daily", "enabled": False}
    backup = stack.post("/tasks", {**body, "schedules": [twice_daily, paused]}, expect=201)
    check = stack.post(
        "/tasks", {"type": "check", "store_id": other_store, "schedules": [hourly]}, expect=201
    )
    ran = stack.post(f"/tasks/{backup['task']['id']}/run", expect=202)["job_id"]
    stack.wait_job(ran)

    for connector in (source, store):
        schedules = stack.get(f"/connectors/{connector}/schedules")
        assert {s["task_id"] for s in schedules} == {backup["task"]["id"]}
        assert sorted(s["enabled"] for s in schedules) == [False, True]
        view = stack.get(f"/connectors/{connector}/jobs")
        assert [j["id"] for j in view["past"]] == [ran]
        upcoming = view["upcoming"]
        # Every 12 hours over 30 days, from an hour ahead; the disabled one has none.
        assert len(upcoming) == 60
        assert when(upcoming[0]["at"]) == soon
        assert all(
            when(b["at"]) - when(a["at"]) == timedelta(hours=12)
            for a, b in itertools.pairwise(upcoming)
        )
        assert {u["task_id"] for u in upcoming} == {backup["task"]["id"]}

    other = stack.get(f"/connectors/{other_store}/jobs")
    assert other["past"] == []
    # Hourly for 30 days, capped.
    assert len(other["upcoming"]) == 100
    assert {u["task_id"] for u in other["upcoming"]} == {check["task"]["id"]}
    horizon = datetime.now(UTC) + timedelta(days=30)
    assert all(when(u["at"]) <= horizon for u in other["upcoming"])
    assert stack.get("/schedules", connector_id=other_store)[0]["task_id"] == check["task"]["id"]

    assert stack.client.get("/connectors/nope/jobs").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert stack.client.get(f"/connectors/{missing}/schedules").status_code == 404
