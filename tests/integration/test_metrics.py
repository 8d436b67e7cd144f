"""GET /metrics scraped as Prometheus would (a viewer's token, the text format parsed by
prometheus-client's own parser), its values moving as real jobs run: a scheduled backup,
a check that fails and is notified to a real webhook, a job queued for a group no runner
serves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.lifecycle import STATUSES, TERMINAL
from tests.integration.test_notifications import check_task, run
from tests.support.receivers import webhook_receiver
from tests.support.schedules import backup_task, when
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

    # A backup (saved without a schedule, it runs at once). The lateness of scheduled
    # jobs is checked where a schedule fires anyway (test_schedules.py).
    body = {**backup_task(stack, tmp_path, "metrics"), "freshness": "1d"}
    created = stack.post("/tasks", body, expect=201)
    task = created["task"]["id"]
    backup = stack.wait_job(created["job_id"])
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
    assert moved("plakar_cp_scheduler_lateness_seconds_count") == 0  # run by hand
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


def test_the_databases_final_statuses_are_the_lifecycles(stack: Stack) -> None:
    """The jobs table's trigger counts a job when it ends (0019_job_metrics.sql): its list
    of final statuses is the lifecycle's."""

    async def ended() -> set[str]:
        conn = await asyncpg.connect(stack.database_url())
        try:
            rows = await conn.fetch(
                "SELECT s FROM unnest($1::text[]) AS s WHERE job_ended(s)", list(STATUSES)
            )
            return {r["s"] for r in rows}
        finally:
            await conn.close()

    assert asyncio.run(ended()) == set(TERMINAL)


MIGRATION = Path(__file__).parents[2] / "shared" / "migrations" / "0019_job_metrics.sql"
# Job i: every type and status, durations from none to days, lateness from 0 to minutes.
_JOBS = """
INSERT INTO jobs (id, task_id, trigger, type, status, due_at, queued_at, started_at,
                  finished_at)
SELECT gen_random_uuid(), gen_random_uuid(),
       (ARRAY['schedule', 'manual'])[1 + i / 18 % 2],
       (ARRAY['backup', 'check', 'restore'])[1 + i % 3],
       (ARRAY['queued', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'])[1 + i / 3 % 6],
       now(), now() + (i % 400) * interval '1 second' / 4,
       CASE WHEN i / 3 % 6 IN (1, 2, 3) THEN now() END,
       CASE WHEN i / 3 % 6 >= 2 THEN now() + (i * i % 200000) * interval '1 second' END
FROM generate_series(1, 3000) AS i
"""


def test_the_migration_counts_the_jobs_already_there_as_the_trigger_does(
    stack: Stack,
) -> None:
    """An install upgraded with a history: the migration's count of the jobs already
    there (0019_job_metrics.sql, before its trigger) is what the trigger counts of the
    same jobs written after it."""
    backfill = MIGRATION.read_text().split("-- The jobs already in the history, counted once.")[1]
    backfill = backfill.split("CREATE TRIGGER")[0]

    async def counted() -> tuple[list[Any], list[Any]]:
        conn = await asyncpg.connect(await stack.scratch_database())
        try:
            await conn.execute(_JOBS)  # counted by the trigger
            await conn.execute("SELECT metric_fold()")  # as the history does
            by_trigger = await figures(conn)
            await conn.execute("TRUNCATE job_totals, metric_histograms")
            await conn.execute(backfill)
            return by_trigger, await figures(conn)
        finally:
            await conn.close()

    async def figures(conn: asyncpg.Connection[Any]) -> list[Any]:
        totals = await conn.fetch("SELECT type, status, n FROM job_totals ORDER BY 1, 2")
        histograms = await conn.fetch(
            """SELECT metric, label, counts, total, round(sum::numeric, 3) AS sum
               FROM metric_histograms ORDER BY 1, 2"""
        )
        return [tuple(r) for r in [*totals, *histograms]]

    by_trigger, by_migration = asyncio.run(counted())
    assert len(by_trigger) == 3 * 4 + 3 + 1  # ended types x statuses, durations, lateness
    assert by_migration == by_trigger
