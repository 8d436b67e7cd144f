"""The web UI's session: the token traded for an HttpOnly cookie page scripts never see."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import Cookie, State

from services.api import audit, sessions
from services.api.auth import COOKIE, Caller
from services.api.errors import ApiError
from services.api.openapi import errors
from services.api.roles import VIEWER, rights
from shared.models import AccessRole


class SessionInfo(msgspec.Struct, kw_only=True):
    # How this request was authenticated: "session" (the cookie) or "token".
    via: str
    expires_at: datetime | None = None
    # The token's (or the session's token's) name and role: what the UI offers.
    token_name: str | None = None
    role: AccessRole | None = None
    # The roles whose rights it has (its own and those below): what the UI offers.
    may: list[AccessRole] = []


def _cookie(request: Request[Caller, None, State], value: str, max_age: int) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=value,
        path="/",
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _info(caller: Caller, expires: datetime | None = None) -> SessionInfo:
    holder = caller.holder
    return SessionInfo(
        via=caller.via,
        expires_at=expires,
        token_name=holder.name,
        role=holder.role,
        may=rights(holder.role),
    )


@post("/api/v1/session", status_code=201, tags=["session"], responses=errors(), opt=VIEWER)
async def open_session(request: Request[Caller, None, State]) -> Response[SessionInfo]:
    """Trade an API token (`Authorization: Bearer`) for a session cookie, of its role."""
    if request.user.via != "token":
        raise ApiError(403, "a session is opened with the API token")
    caller = request.user
    pool = request.app.state.deps.pool
    value, expires = await sessions.create(pool, caller.holder.id)
    await audit.record(pool, caller, "session.open", None, after={"expires_at": expires})
    max_age = int(sessions.LIFETIME.total_seconds())
    return Response(
        msgspec.structs.replace(_info(caller, expires), via="session"),
        status_code=201,
        cookies=[_cookie(request, value, max_age)],
    )


@get("/api/v1/session", tags=["session"], responses=errors())
async def session_info(request: Request[Caller, None, State]) -> SessionInfo:
    """200 while the caller is signed in (the UI asks at start), 401 otherwise."""
    if request.user.via == "session":
        found = await sessions.find(request.app.state.deps.pool, request.cookies.get(COOKIE, ""))
        return _info(request.user, found[1] if found else None)
    return _info(request.user)


@delete("/api/v1/session", status_code=200, tags=["session"], responses=errors(), opt=VIEWER)
async def close_session(request: Request[Caller, None, State]) -> Response[SessionInfo]:
    """Sign out: the session ends here and its cookie is cleared."""
    if value := request.cookies.get(COOKIE):
        await sessions.delete(request.app.state.deps.pool, value)
        await audit.record(request.app.state.deps.pool, request.user, "session.close", None)
    return Response(_info(request.user), cookies=[_cookie(request, "", 0)])
