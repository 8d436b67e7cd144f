"""Health: the state of NATS, PostgreSQL, the services and the active scheduler."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from nats.js.errors import KeyNotFoundError

from services.api.deps import Deps
from shared import bus
from shared import subjects as s
from shared.models import Health, ServiceInfo


async def active_scheduler(deps: Deps) -> str | None:
    try:
        bucket = await bus.kv(deps.js, s.SCHEDULER_LEASE_BUCKET)
        entry = await bucket.get(s.SCHEDULER_LEASE_KEY)
    except KeyNotFoundError:
        return None
    return entry.value.decode() if entry.value else None


@get("/api/v1/health", tags=["health"])
async def health(state: State) -> Health:
    deps: Deps = state.deps
    try:
        postgres = await deps.pool.fetchval("SELECT 1") == 1
    except Exception:
        postgres = False
    services: list[ServiceInfo] = []
    leader = None
    nats_ok = deps.nc.is_connected
    if nats_ok:
        try:
            services = await bus.live_services(deps.js)
            leader = await active_scheduler(deps)
        except Exception:
            nats_ok = False

    def of(kind: str) -> list[ServiceInfo]:
        return sorted((x for x in services if x.kind == kind), key=lambda x: x.id)

    runners, history, schedulers = of("runner"), of("history"), of("scheduler")
    ok = nats_ok and postgres and bool(runners) and bool(history) and leader is not None
    return Health(
        status="ok" if ok else "degraded",
        nats=nats_ok,
        postgres=postgres,
        runners=runners,
        history=history,
        schedulers=schedulers,
        active_scheduler=leader,
    )
