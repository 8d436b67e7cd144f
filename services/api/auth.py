"""Token authentication for HTTP and WebSocket requests.

The token comes as `Authorization: Bearer`, as `?token=` (browsers cannot set
headers on a WebSocket) or as the UI's session cookie.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

COOKIE = "plakar_cp_token"
# Paths that carry no data: the health checks and the UI's static shell.
PUBLIC = [r"^/api/v1/health(/live)?$", r"^/$", r"^/ui/"]


def presented_token(conn: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return conn.query_params.get("token") or conn.cookies.get(COOKIE)


class TokenAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        expected: str = connection.app.state.deps.settings.api_token
        given = presented_token(connection)
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise NotAuthorizedException("missing or wrong API token")
        return AuthenticationResult(user="operator", auth=given)
