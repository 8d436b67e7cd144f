"""Who calls: the API token (`Authorization: Bearer`, or `?token=` on WebSockets, which
browsers open without headers) or the web UI's session cookie (HttpOnly, set by
POST /api/v1/session).

A request that a session cookie authenticates may change state only when it comes from
the UI's own origin (a same-origin `Origin`, or the `X-Plakar-CSRF` header no other site
can send) and carries JSON, if anything: another site's page cannot forge it.
WebSockets from another origin are refused whatever authenticates them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from services.api import sessions, tokens
from services.api.tokens import Holder

COOKIE = "plakar_cp_session"
CSRF_HEADER = "x-plakar-csrf"
# Paths that carry no data: the health checks (which say more to callers that
# authenticate) and the UI's static shell.
PUBLIC = [r"^/api/v1/health(/live)?$", r"^/$", r"^/ui/"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A longer "token" is none of ours (they are 47 characters): not even hashed.
MAX_TOKEN = 256


@dataclass(frozen=True)
class Caller:
    via: Literal["token", "session"]
    # Who it is for per-caller limits: the session's key, or a digest of the token.
    key: str
    # The token (or the token that opened the session): its name and role.
    holder: Holder


Connection = ASGIConnection[Any, Any, Any, Any]
# A request as handlers see it: its caller, and the app's state.
CallerRequest = Request[Caller, None, State]


async def identify(conn: Connection) -> Caller | None:
    """The caller, or None when no valid credential is presented."""
    pool = conn.app.state.deps.pool
    header = conn.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if token is None and _websocket(conn):
        token = conn.query_params.get("token")
    if token is not None:
        # Looked up by its hash: no timing of a comparison tells anything of a token.
        found = await tokens.holder(pool, token) if len(token) <= MAX_TOKEN else None
        if found is None:
            return None
        return Caller("token", hashlib.sha256(token.encode()).hexdigest()[:16], found)
    cookie = conn.cookies.get(COOKIE)
    if cookie:
        session = await sessions.find(pool, cookie)
        if session:
            return Caller("session", session[0], session[2])
    return None


def _websocket(conn: Connection) -> bool:
    return conn.scope["type"] == ScopeType.WEBSOCKET


def same_origin(conn: Connection) -> bool:
    origin = conn.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == conn.headers.get("host")


def _forged(conn: Connection) -> str | None:
    """Why a cookie-authenticated state change may be another site's forgery, or None."""
    if not (same_origin(conn) or conn.headers.get(CSRF_HEADER)):
        return "a change made with the session cookie must come from the UI's own origin"
    has_body = conn.headers.get("content-length", "0") != "0" or "transfer-encoding" in conn.headers
    kind = conn.headers.get("content-type", "").split(";")[0].strip().lower()
    if (has_body or kind) and kind != "application/json":
        return "a change made with the session cookie must send JSON"
    return None


class TokenAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: Connection) -> AuthenticationResult:
        caller = await identify(connection)
        if caller is None:
            raise NotAuthorizedException("missing or wrong API token")
        if _websocket(connection):
            # Browsers always send Origin; tools with the token may send none.
            vouched = "origin" in connection.headers or caller.via == "session"
            if vouched and not same_origin(connection):
                raise PermissionDeniedException("a WebSocket from another origin is refused")
        elif caller.via == "session" and connection.scope.get("method") not in SAFE_METHODS:
            problem = _forged(connection)
            if problem:
                raise PermissionDeniedException(problem)
        return AuthenticationResult(user=caller, auth=None)
