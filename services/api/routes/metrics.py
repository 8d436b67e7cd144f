"""GET /metrics: the figures of the control plane for Prometheus to scrape."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.datastructures import State

from services.api import metrics_store
from services.api.deps import Deps
from services.api.metrics import CONTENT_TYPE, Figures, Freshness, exposition
from services.api.openapi import errors
from services.api.runner_groups import live_groups
from shared import bus, freshness_db
from shared.events import utcnow


@get("/api/v1/metrics", tags=["health"], media_type=CONTENT_TYPE, responses=errors())
async def metrics(state: State) -> Response[bytes]:
    """Prometheus' text format: jobs ended by type and status, job durations by type,
    jobs queued and running and runner slots by runner group, the scheduler's lateness,
    each task's last success, the freshness of what has a rule, notification
    deliveries (docs/metrics.md). Needs a token (a viewer's is enough)."""
    deps: Deps = state.deps
    (counts, durations, lateness), active, tasks, judged, deliveries = await asyncio.gather(
        metrics_store.jobs(deps.pool),
        metrics_store.active(deps.pool),
        metrics_store.task_successes(deps.pool),
        freshness_db.judged(deps.pool),
        metrics_store.deliveries(deps.pool),
    )
    try:
        groups = live_groups(await bus.live_services(deps.js))
    except Exception:
        groups = {}  # NATS away: no runner is known to be live
    now = utcnow()
    figures = Figures(
        jobs=counts,
        durations=durations,
        lateness=lateness,
        active=active,
        groups=[groups[name] for name in sorted(groups)],
        tasks=tasks,
        freshness=[
            Freshness(j.watched, j.id, j.name or "", j.state(now) == "stale") for j in judged
        ],
        deliveries=deliveries,
    )
    return Response(exposition(figures), media_type=CONTENT_TYPE)
