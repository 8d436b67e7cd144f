"""What GET /metrics answers (pure): the figures read at a scrape, in Prometheus' text
format.

Every figure is read at the scrape from PostgreSQL and from what the runners announce,
not counted in the api process: every api of a deployment answers the same, and a
restart of one loses nothing. Jobs, durations and lateness are counted over the history
the database keeps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from shared.lifecycle import TERMINAL
from shared.models import RunnerGroup

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "plakar_cp_"
# Seconds from a job's start to its end: from a quick check to a day-long first backup.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
# Seconds from a scheduled job's due instant to its firing.
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Histogram(msgspec.Struct, frozen=True):
    """Observations at or below each bound (cumulative, as Prometheus wants them)."""

    le: list[int]
    count: int
    sum: float


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


def merge(histograms: Iterable[Histogram]) -> Histogram:
    """The sum of histograms with the same bounds."""
    found = list(histograms)
    if not found:
        return Histogram([], 0, 0.0)
    return Histogram(
        le=[sum(column) for column in zip(*(h.le for h in found), strict=True)],
        count=sum(h.count for h in found),
        sum=sum(h.sum for h in found),
    )


def _buckets(bounds: Sequence[float], h: Histogram) -> list[tuple[str, float]]:
    le = h.le or [0] * len(bounds)
    return [*((str(b), float(n)) for b, n in zip(bounds, le, strict=True)), ("+Inf", h.count)]


def families(f: Figures) -> Iterator[Metric]:
    """The metric families of `f`."""
    jobs = CounterMetricFamily(
        f"{PREFIX}jobs", "Jobs ended, by type and final status.", labels=["type", "status"]
    )
    for j in f.jobs:
        if j.status in TERMINAL:
            jobs.add_metric([j.type, j.status], j.count)
    yield jobs

    durations = HistogramMetricFamily(
        f"{PREFIX}job_duration_seconds",
        "Seconds from a job's start to its end, by type.",
        labels=["type"],
    )
    for kind, h in sorted(f.durations.items()):
        durations.add_metric([kind], _buckets(DURATION_BUCKETS, h), h.sum)
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
    lateness.add_metric([], _buckets(LATENESS_BUCKETS, f.lateness), f.lateness.sum)
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
