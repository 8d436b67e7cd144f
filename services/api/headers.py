"""Headers the api's answers carry: on every one, no MIME sniffing, no framing by other
sites (clickjacking), no referrer; on an OPTIONS answer, an `Allow` that lists every
method of the path."""

from __future__ import annotations

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def _allow_by_options_handler(app: Litestar) -> dict[int, bytes]:
    """Litestar 2 builds a path's OPTIONS handler with the first of the path's handlers
    registered, so its `Allow` misses the others (fixed in Litestar 3 only); the routes
    know them all."""
    return {
        id(route.route_handler_map["OPTIONS"][0]): ", ".join(sorted(route.methods)).encode()
        for route in app.routes
        if isinstance(route, HTTPRoute) and "OPTIONS" in route.route_handler_map
    }


def with_headers(app: Litestar) -> ASGIApp:
    allow = _allow_by_options_handler(app)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *HEADERS]
                methods = allow.get(id(scope.get("route_handler")))
                if scope["method"] == "OPTIONS" and methods is not None:
                    headers = [(k, v) for k, v in headers if k.lower() != b"allow"]
                    headers.append((b"allow", methods))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
