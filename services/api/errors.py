"""Errors answered as `{"error": ..., "field": ...}` with a 4xx status."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from services.api.store import Full
from services.api.validation import Invalid
from shared.bus import NATS_AWAY
from shared.db import UNAVAILABLE
from shared.models import ErrorBody

log = logging.getLogger("plakar_cp.api")


class ApiError(HTTPException):
    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(status_code=status, detail=error)
        self.field = field


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def conflict(error: str, field: str | None = None) -> ApiError:
    return ApiError(409, error, field)


def _body(error: str, field: str | None, status: int) -> Response[bytes]:
    return Response(
        msgspec.json.encode(ErrorBody(error=error, field=field)),
        status_code=status,
        media_type="application/json",
    )


_AT_FIELD = re.compile(r" - at `\$\.?([^`]*)`")
_NAMED_FIELD = re.compile(r"(?:missing required|contains unknown) field `([^`]*)`")


def handle_full(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return _body(str(exc), None, 409)


def handle_invalid(_: Request[Any, Any, Any], exc: Invalid) -> Response[bytes]:
    return _body(exc.message, exc.field, 422)


def handle_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return _body(str(exc.detail), exc.field, exc.status_code)


def handle_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Litestar's decoding errors, reduced to the first problem and its field."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            message = str(item.get("message", exc.detail))
            key = item.get("key")
            # Litestar names the whole body "data"; msgspec names the field in the message.
            field = None if key in (None, "data") else str(key)
            at = _AT_FIELD.search(message)
            named = _NAMED_FIELD.search(message)
            if at:
                field = at.group(1) or field
                message = _AT_FIELD.sub("", message)
            if named:
                field = f"{field}.{named.group(1)}" if at and field else named.group(1)
            return _body(message, field, 400)
    return _body(str(exc.detail), None, 400)


def handle_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    response = _body(str(exc.detail), None, exc.status_code)
    if exc.headers:  # Allow, on a 405
        response.headers.update(exc.headers)
    return response


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, UNAVAILABLE):
        # A passing outage, not a bug: 503 tells clients to try again.
        log.warning("database unavailable: %s", exc)
        return _body("database unavailable; try again shortly", None, 503)
    if isinstance(exc, NATS_AWAY):
        log.warning("NATS unavailable: %s", exc)
        return _body("message bus unavailable; try again shortly", None, 503)
    log.exception("unexpected error", exc_info=exc)
    return _body("internal error; see the api log", None, 500)


EXCEPTION_HANDLERS = {
    Invalid: handle_invalid,
    Full: handle_full,
    ApiError: handle_api_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
