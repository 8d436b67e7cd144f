"""GET /metrics scraped as Prometheus would (a viewer's token, the text format parsed by
prometheus-client's own parser), its values moving as real jobs run: a scheduled backup,
a check that fails and is notified to a real webhook, a job queued for a group no runner
serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_notifications import check_task, run
from tests.support.receivers import webhook_receiver
from tests.support.schedules import backup_task, iso, minute_ahead, wait_jobs, when
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

Sample = tuple[str, frozenset[tuple[str, str]]]


@pytest.fixture(autouse=True)
def _no_target_left(stack: Stack) -> Iterator[None]:
    yield
    for target in stack.get("/notifications/targets"):
        stack.client.delete(f"/notifications/targets/{target['id']}")


class Scraper:
    def __init__(self, stack: Stack, name: str) -> None:
        made = stack.post("/tokens", {"name": name, "role": "viewer"}, 201)
        self.url = f"{stack.endpoints['api_url']}/metrics"
        self.headers = {"Authorization": f"Bearer {made['token']}"}

    def scrape(self) -> dict[Sample, float]:
        r = httpx.get(self.url, headers=self.headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text)
            for s in family.samples
        }


def value(samples: dict[Sample, float], metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def test_metrics_need_a_token_and_move_as_jobs_run(stack: Stack, tmp_path: Path) -> None:
    assert httpx.get(f"{stack.endpoints['api_url']}/metrics").status_code == 401
    scraper = Scraper(stack, "metrics-prometheus")
    before = scraper.scrape()

    # A backup fired by a schedule on the next minute.
    start = minute_ahead(5)
    schedule = {"recurrence": "custom", "interval": {"hours": 24}, "start_at": iso(start)}
    body = {**backup_task(stack, tmp_path, "metrics"), "schedules": [schedule]}
    body["freshness"] = "1d"
    task = stack.post("/tasks", body, expect=201)["task"]["id"]
    [fired] = wait_jobs(stack, task, 1, start + timedelta(seconds=30))
    backup = stack.wait_job(fired["id"])
    assert backup["status"] == "succeeded", backup

    # A check that fails, told to a webhook.
    check, _, _ = check_task(stack, tmp_path / "check", "metrics-check")
    with webhook_receiver() as receiver:
        hook = {"name": "metrics-hook", "kind": "webhook", "url": receiver.url}
        target = stack.post("/notifications/targets", hook, expect=201)
        rule = {"target_id": target["id"], "events": ["job.failed"], "task_id": check}
        stack.post("/notifications/rules", rule, expect=201)
        run(stack, check, "failed")
        receiver.wait(1)
        after = scraper.scrape()
        for _ in range(50):  # the delivery is marked delivered once the answer is read
            if value(after, "plakar_cp_notification_deliveries", **delivered()) == 1:
                break
            time.sleep(0.1)
            after = scraper.scrape()

    def moved(metric: str, /, **labels: str) -> float:
        return value(after, metric, **labels) - value(before, metric, **labels)

    assert moved("plakar_cp_jobs_total", type="backup", status="succeeded") == 1
    assert moved("plakar_cp_jobs_total", type="check", status="failed") == 1
    assert moved("plakar_cp_job_duration_seconds_count", type="backup") == 1
    took = (when(backup["finished_at"]) - when(backup["started_at"])).total_seconds()
    assert moved("plakar_cp_job_duration_seconds_sum", type="backup") == pytest.approx(took)
    assert moved("plakar_cp_scheduler_lateness_seconds_count") == 1
    late = (when(backup["queued_at"]) - when(backup["due_at"])).total_seconds()
    assert moved("plakar_cp_scheduler_lateness_seconds_sum") == pytest.approx(late)
    labels = {"task_id": task, "task": "", "type": "backup"}
    last = value(after, "plakar_cp_task_last_success_timestamp_seconds", **labels)
    assert last == pytest.approx(when(backup["finished_at"]).timestamp())
    never = {"task_id": check, "task": "metrics-check", "type": "check"}
    assert (("plakar_cp_task_last_success_timestamp_seconds", frozenset(never.items()))) in after
    assert value(after, "plakar_cp_task_last_success_timestamp_seconds", **never) == 0
    fresh = {"watched": "task", "id": task, "name": ""}
    assert ("plakar_cp_freshness_stale", frozenset(fresh.items())) in after
    assert value(after, "plakar_cp_freshness_stale", **fresh) == 0
    assert value(after, "plakar_cp_notification_deliveries", **delivered()) == 1

    # Slots: what the live runners announce, busy and free.
    [default] = [g for g in stack.get("/runner-groups") if g["name"] == "default"]
    slots = value(after, "plakar_cp_runner_slots", group="default", state="free") + value(
        after, "plakar_cp_runner_slots", group="default", state="busy"
    )
    assert slots == default["slots"]
    assert value(after, "plakar_cp_runners", group="default") == default["runners"]


def delivered() -> dict[str, str]:
    return {"target": "metrics-hook", "kind": "webhook", "status": "delivered"}


def test_the_queue_depth_of_a_group_no_runner_serves(stack: Stack, tmp_path: Path) -> None:
    scraper = Scraper(stack, "metrics-queue")
    store = stack.store("metrics-idle-store", tmp_path / "store")
    on_demand = [{"recurrence": "daily", "enabled": False}]
    body = {
        "type": "check",
        "store_id": store,
        "runner_group": "metrics-idle",
        "schedules": on_demand,
    }
    task = stack.post("/tasks", body, expect=201)["task"]["id"]
    queued = {"group": "metrics-idle", "status": "queued"}
    assert value(scraper.scrape(), "plakar_cp_jobs_active", **queued) == 0
    job = stack.post(f"/tasks/{task}/run", expect=202)["job_id"]
    samples = scraper.scrape()
    for _ in range(100):  # until the history has recorded it
        if value(samples, "plakar_cp_jobs_active", **queued) == 1:
            break
        time.sleep(0.1)
        samples = scraper.scrape()
    assert value(samples, "plakar_cp_jobs_active", **queued) == 1
    stack.post(f"/jobs/{job}/cancel", expect=200)
    assert stack.wait_job(job)["status"] == "cancelled"
    assert value(scraper.scrape(), "plakar_cp_jobs_active", **queued) == 0
