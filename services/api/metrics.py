"""What GET /metrics answers (pure): the figures read at a scrape, in Prometheus' text
format.

Every figure is read at the scrape from PostgreSQL and from what the runners announce,
not counted in the api process: every api of a deployment answers the same, and a
restart of one loses nothing. Jobs, durations and lateness are counted in the database
as the jobs are written (shared/migrations/0019_job_metrics.sql, where the histograms'
bounds are defined), so that a scrape reads a few rows however long the history."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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

    yield _gauge(
        "jobs_active",
        "Jobs queued (the queue's depth) and running, by runner group.",
        ["group", "status"],
        (([a.group, a.status], a.count) for a in f.active),
    )
    yield _gauge(
        "runner_slots",
        "Job slots of the live runners, busy or free, by runner group.",
        ["group", "state"],
        (
            sample
            for g in f.groups
            for sample in (
                ([g.name, "busy"], g.running),
                ([g.name, "free"], max(0, g.slots - g.running)),
            )
        ),
    )
    yield _gauge(
        "runners",
        "Live runners, by runner group.",
        ["group"],
        (([g.name], g.runners) for g in f.groups),
    )

    lateness = HistogramMetricFamily(
        f"{PREFIX}scheduler_lateness_seconds",
        "Seconds from a scheduled job's due instant to its firing.",
    )
    lateness.add_metric([], f.lateness.buckets(), f.lateness.sum)
    yield lateness

    yield _gauge(
        "task_last_success_timestamp_seconds",
        "When each task's last successful job ended (0: never).",
        ["task_id", "task", "type"],
        (
            ([t.task_id, t.name, t.type], t.last_success.timestamp() if t.last_success else 0.0)
            for t in f.tasks
        ),
    )
    yield _gauge(
        "freshness_stale",
        "1 when a task or connector with a freshness rule is stale, 0 when fresh.",
        ["watched", "id", "name"],
        (([w.watched, w.id, w.name], 1 if w.stale else 0) for w in f.freshness),
    )
    yield _gauge(
        "notification_deliveries",
        "Notifications kept, by target and status (pending, delivered, failed).",
        ["target", "kind", "status"],
        (([d.target, d.kind, d.status], d.count) for d in f.deliveries),
    )


def _gauge(
    name: str, doc: str, labels: list[str], samples: Iterable[tuple[list[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}{name}", doc, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


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
