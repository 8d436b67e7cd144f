"""The Litestar application: REST API, UI and WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, MediaType, get
from litestar.datastructures import CacheControlHeader
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp

from services.api import tokens
from services.api.asyncapi import asyncapi
from services.api.auth import PUBLIC, TokenAuth
from services.api.bodies import strict_body
from services.api.deps import Deps
from services.api.errors import EXCEPTION_HANDLERS
from services.api.headers import with_headers
from services.api.job_connectors import JobConnectorsServer
from services.api.notify.deliverer import Deliverer
from services.api.openapi import StrictStructs
from services.api.roles import role_guard
from services.api.routes.audit import audit_trail
from services.api.routes.connectors import ConnectorController, rules
from services.api.routes.health import health, live
from services.api.routes.jobs import JobController
from services.api.routes.metrics import metrics
from services.api.routes.notifications import NotificationController
from services.api.routes.runner_groups import runner_groups
from services.api.routes.schedules import ScheduleController
from services.api.routes.session import close_session, open_session, session_info
from services.api.routes.streams import events, job_stream
from services.api.routes.tasks import TaskController
from services.api.routes.tokens import TokenController
from shared import bus
from shared.db import create_pool
from shared.settings import Settings

STATIC = Path(__file__).parent / "static"
# The UI's modules are revalidated on each load, so an upgrade never mixes versions.
REVALIDATE = CacheControlHeader(no_cache=True)


@get("/", media_type=MediaType.HTML, include_in_schema=False, cache_control=REVALIDATE)
async def index() -> File:
    return File(STATIC / "index.html", content_disposition_type="inline")


def create_app(settings: Settings) -> ASGIApp:
    """The api, every answer of which carries the security headers (404s included)."""
    return with_headers(_litestar(settings))


def _litestar(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, max_size=10)
        nc = await bus.connect(settings.nats_url, "api")
        js = nc.jetstream()
        app.state.deps = Deps(settings=settings, pool=pool, nc=nc, js=js)
        await tokens.ensure_first_admin(pool, settings.api_token)
        presence = bus.Presence(js, "api", settings.instance_id)
        await presence.start()
        connectors = JobConnectorsServer(pool, nc, js)
        await connectors.start()
        deliverer = asyncio.create_task(Deliverer(pool, settings).run())
        # What start-up made (modules, the app and its routes, the connections) lives as
        # long as the process: the cycle collector no longer walks it in every full
        # collection, each of which held the live output up to 100 ms.
        gc.freeze()
        try:
            yield
        finally:
            deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deliverer
            await connectors.stop()
            await presence.stop()
            await bus.close(nc)
            await pool.close()

    return Litestar(
        route_handlers=[
            health,
            live,
            index,
            ConnectorController,
            rules,
            open_session,
            session_info,
            close_session,
            TaskController,
            JobController,
            ScheduleController,
            NotificationController,
            TokenController,
            audit_trail,
            metrics,
            runner_groups,
            job_stream,
            events,
            asyncapi,
            create_static_files_router(path="/ui", directories=[STATIC], cache_control=REVALIDATE),
        ],
        lifespan=[lifespan],
        before_request=strict_body,
        middleware=[DefineMiddleware(TokenAuth, exclude=PUBLIC)],
        guards=[role_guard],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(title="Plakar Control Plane", version="1"),
        plugins=[StrictStructs()],
        debug=False,
    )
