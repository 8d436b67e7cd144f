"""Health: the state of NATS, PostgreSQL, the services and the active scheduler."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from nats.js.errors import KeyNotFoundError

from services.api.auth import identify
from services.api.deps import Deps
from shared import bus, rpc
from shared import subjects as s
from shared.groups import group_of
from shared.models import Health, HealthStatus, ServiceInfo


async def active_scheduler(deps: Deps) -> str | None:
    try:
        bucket = await bus.kv(deps.js, s.SCHEDULER_LEASE_BUCKET)
        entry = await bucket.get(s.SCHEDULER_LEASE_KEY)
    except KeyNotFoundError:
        return None
    return entry.value.decode() if entry.value else None


# How long a runner has to answer the health check's ping.
PING_TIMEOUT_S = 2.0


async def runner_answers(deps: Deps, runners: list[ServiceInfo]) -> bool:
    """Whether a runner of each group with live runners answers connector actions right
    now (each group has its own subject)."""

    async def answers(group: str) -> bool:
        try:
            ping = rpc.encode(rpc.Ping())
            reply = await deps.nc.request(s.rpc_connector(group), ping, timeout=PING_TIMEOUT_S)
            return isinstance(rpc.decode_reply(reply.data), rpc.Pong)
        except Exception:
            return False

    groups = {group_of(r.group) for r in runners}
    return all(await asyncio.gather(*(answers(g) for g in sorted(groups))))


@get("/api/v1/health/live", tags=["health"])
async def live() -> dict[str, str]:
    """The api process serves (for liveness probes: nothing else is checked)."""
    return {"status": "live"}


@get(
    "/api/v1/health",
    tags=["health"],
    responses={503: ResponseSpec(Health, description="degraded: the same body")},
)
async def health(request: Request[Any, Any, State]) -> Response[Health | HealthStatus]:
    """200 when every part is up, 503 (same body) while the control plane is degraded.
    Without credentials it says only that; with them, which part is what."""
    deps: Deps = request.app.state.deps
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
    answering = nats_ok and bool(runners) and await runner_answers(deps, runners)
    ok = nats_ok and postgres and answering and bool(history) and leader is not None
    body = Health(
        status="ok" if ok else "degraded",
        nats=nats_ok,
        postgres=postgres,
        runners=runners,
        runners_answer=answering,
        history=history,
        schedulers=schedulers,
        active_scheduler=leader,
    )
    code = 200 if ok else 503
    if await identify(request) is None:
        return Response(HealthStatus(status=body.status), status_code=code)
    return Response(body, status_code=code)
