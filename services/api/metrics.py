"""What GET /metrics answers (pure): the figures read at a scrape, in Prometheus' text
format.

Every figure is read at the scrape from PostgreSQL and from what the runners announce,
not counted in the api process: every api of a deployment answers the same, and a
restart of one loses nothing. Jobs, durations and lateness are counted in the database
as the jobs are written (shared/migrations/0019_job_metrics.sql, where the histograms'
bounds are defined), so that a scrape reads a few rows however long the history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from shared.models import RunnerGroup

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "plakar_cp_"


class Histogram(msgspec.Struct, frozen=True):
    """Observations per bucket (`counts`: at or below each bound, not below the one
    before; the last past every bound), their count and their sum."""

    bounds: list[float]
    counts: list[int]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, as Prometheus wants them, `+Inf` last."""
        counts = self.counts or [0] * (len(self.bounds) + 1)
        found, total = [], 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], counts, strict=True):
            total += n
            found.append((bound, float(total)))
        return found


class JobCount(msgspec.Struct, frozen=True):
    type: str
    status: str
    count: int


class ActiveCount(msgspec.Struct, frozen=True):
    group: str
    status: str
    count: int


class TaskSuccess(msgspec.Struct, frozen=True):
    task_id: str
    name: str
    type: str
    last_success: datetime | None


class Freshness(msgspec.Struct, frozen=True):
    watched: str
    id: str
    name: str
    stale: bool


class Deliveries(msgspec.Struct, frozen=True):
    target: str
    kind: str
    status: str
    count: int


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    jobs: list[JobCount]
    durations: dict[str, Histogram]
    lateness: Histogram
    active: list[ActiveCount]
    groups: list[RunnerGroup]
    tasks: list[TaskSuccess]
    freshness: list[Freshness]
    deliveries: list[Deliveries]


def families(f: Figures) -> Iterator[Metric]:
    """The metric families of `f`."""
    jobs = CounterMetricFamily(
        f"{PREFIX}jobs", "Jobs ended, by type and final status.", labels=["type", "status"]
    )
    for j in f.jobs:
        jobs.add_metric([j.type, j.status], j.count)
    yield jobs

    durations = HistogramMetricFamily(
        f"{PREFIX}job_duration_seconds",
        "Seconds from a job's start to its end, by type.",
        labels=["type"],
    )
    for kind, h in sorted(f.durations.items()):
        durations.add_metric([kind], h.buckets(), h.sum)
    yield durations

    active = GaugeMetricFamily(
        f"{PREFIX}jobs_active",
        "Jobs queued (the queue's depth) and running, by runner group.",
        labels=["group", "status"],
    )
    for a in f.active:
        active.add_metric([a.group, a.status], a.count)
    yield active

    slots = GaugeMetricFamily(
        f"{PREFIX}runner_slots",
        "Job slots of the live runners, busy or free, by runner group.",
        labels=["group", "state"],
    )
    runners = GaugeMetricFamily(
        f"{PREFIX}runners", "Live runners, by runner group.", labels=["group"]
    )
    for g in f.groups:
        slots.add_metric([g.name, "busy"], g.running)
        slots.add_metric([g.name, "free"], max(0, g.slots - g.running))
        runners.add_metric([g.name], g.runners)
    yield slots
    yield runners

    lateness = HistogramMetricFamily(
        f"{PREFIX}scheduler_lateness_seconds",
        "Seconds from a scheduled job's due instant to its firing.",
    )
    lateness.add_metric([], f.lateness.buckets(), f.lateness.sum)
    yield lateness

    success = GaugeMetricFamily(
        f"{PREFIX}task_last_success_timestamp_seconds",
        "When each task's last successful job ended (0: never).",
        labels=["task_id", "task", "type"],
    )
    for t in f.tasks:
        at = t.last_success.timestamp() if t.last_success else 0.0
        success.add_metric([t.task_id, t.name, t.type], at)
    yield success

    stale = GaugeMetricFamily(
        f"{PREFIX}freshness_stale",
        "1 when a task or connector with a freshness rule is stale, 0 when fresh.",
        labels=["watched", "id", "name"],
    )
    for w in f.freshness:
        stale.add_metric([w.watched, w.id, w.name], 1 if w.stale else 0)
    yield stale

    deliveries = GaugeMetricFamily(
        f"{PREFIX}notification_deliveries",
        "Notifications kept, by target and status (pending, delivered, failed).",
        labels=["target", "kind", "status"],
    )
    for d in f.deliveries:
        deliveries.add_metric([d.target, d.kind, d.status], d.count)
    yield deliveries


class _Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


def exposition(f: Figures) -> bytes:
    """`f` in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families(f))))
    return generate_latest(registry)
