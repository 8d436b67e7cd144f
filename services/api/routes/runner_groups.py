"""The runner groups that serve now."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State

from services.api.deps import Deps
from services.api.openapi import errors
from services.api.runner_groups import live_groups
from shared import bus
from shared.models import RunnerGroup


@get("/api/v1/runner-groups", tags=["runners"], responses=errors())
async def runner_groups(state: State) -> list[RunnerGroup]:
    """The runner groups with live runners, by name: how many runners, how many jobs
    they run at once at most (slots) and now. A task or a connector may name any group
    (see GET /rules); only these serve now."""
    deps: Deps = state.deps
    live = live_groups(await bus.live_services(deps.js))
    return [live[name] for name in sorted(live)]
