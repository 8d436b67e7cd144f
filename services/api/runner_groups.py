"""Runner groups as the live runners announce them: the groups a task or a connector may
be served by now, and why a queued job waits."""

from __future__ import annotations

import logging

import msgspec

from services.api.deps import Deps
from shared import bus
from shared.groups import group_of
from shared.models import Job, RunnerGroup, ServiceInfo

log = logging.getLogger(__name__)


def live_groups(services: list[ServiceInfo]) -> dict[str, RunnerGroup]:
    """The groups with live runners, by name (pure)."""
    found: dict[str, RunnerGroup] = {}
    for r in services:
        if r.kind != "runner":
            continue
        name = group_of(r.group)
        g = found.get(name) or RunnerGroup(name=name, runners=0, slots=0, running=0)
        found[name] = msgspec.structs.replace(
            g,
            runners=g.runners + 1,
            slots=g.slots + (r.slots or 1),
            running=g.running + len(r.jobs),
        )
    return found


def waiting_reason(group: str, live: dict[str, RunnerGroup]) -> str | None:
    """Why a queued job of `group` has not started, as far as its runners tell (pure);
    None when one of them has a free slot (it starts within moments)."""
    g = live.get(group)
    if g is None:
        return f"no runner of group {group} is live"
    if g.running >= g.slots:
        runners = "its runner is" if g.runners == 1 else f"its {g.runners} runners are"
        return f"{runners} busy: {g.running} of {g.slots} jobs at once (group {group})"
    return None


async def with_waiting(deps: Deps, jobs: list[Job]) -> list[Job]:
    """The jobs, the queued ones saying why they wait (nothing said while NATS is away)."""
    if not any(j.status == "queued" for j in jobs):
        return jobs
    try:
        live = live_groups(await bus.live_services(deps.js))
    except Exception as e:
        log.info("cannot tell why queued jobs wait: %s", e)
        return jobs
    return [
        msgspec.structs.replace(j, waiting=waiting_reason(group_of(j.runner_group), live))
        if j.status == "queued"
        else j
        for j in jobs
    ]
