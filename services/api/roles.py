"""What each role may do (pure, and the guard every route and WebSocket passes).

`viewer` reads everything (secrets are masked for every caller); `operator` also runs,
cancels and retries jobs, tests connectors and turns schedules on and off; `admin` also
changes connectors, tasks, schedules, notifications and tokens. A route says which role it
needs in its `opt` (`role`); without one, reading needs `viewer` and anything else
`admin`: a new route is closed to all but admins until it says otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from shared.models import AccessRole

RANK: dict[AccessRole, int] = {"viewer": 0, "operator": 1, "admin": 2}
# What each role may do, for people (GET /rules).
MEANINGS: dict[AccessRole, str] = {
    "viewer": "reads everything (secrets are masked for every role)",
    "operator": "also runs tasks, cancels and retries jobs, tests connectors, turns schedules "
    "on and off",
    "admin": "also changes connectors, tasks, schedules, notifications and tokens",
}
READING = frozenset({"GET", "HEAD", "OPTIONS"})
VIEWER: dict[str, Any] = {"role": "viewer"}
OPERATOR: dict[str, Any] = {"role": "operator"}
ADMIN: dict[str, Any] = {"role": "admin"}


def needed(method: str | None, opt: Mapping[str, Any]) -> AccessRole:
    """The role a route needs: its own word, else by its method (a WebSocket reads)."""
    role: AccessRole | None = opt.get("role")
    if role is not None:
        return role
    return "viewer" if method is None or method in READING else "admin"


def allows(have: AccessRole, need: AccessRole) -> bool:
    return RANK[have] >= RANK[need]


def rights(have: AccessRole) -> list[AccessRole]:
    """The roles whose rights `have` has: its own and those below."""
    return [r for r in RANK if allows(have, r)]


async def role_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    # A coroutine: Litestar hands a plain function guard to its thread pool, at each
    # request.
    caller = connection.scope.get("user")
    if caller is None:
        return  # a public path (health, the UI's shell): no credential, nothing to guard
    method = connection.scope.get("method")
    need = needed(method if isinstance(method, str) else None, handler.opt)
    have: AccessRole = caller.holder.role
    if not allows(have, need):
        raise PermissionDeniedException(f"the {have} role may not do this: it needs {need}")
