"""Request bodies hold to their JSON types. Litestar converts a body leniently (`0` is
`false`, `"3"` is `3`); the OpenAPI document promises the types, so each body is decoded
again, strictly, before the handler's turn."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException


async def strict_body(request: Request[Any, Any, Any]) -> None:
    field = request.route_handler.parsed_data_field
    if field is None:
        return
    body = await request.body()
    if not body:
        return  # an optional body left out; a required one is Litestar's to refuse
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # not JSON: Litestar answers it
    try:
        msgspec.convert(_integral(value), type=field.annotation, strict=True)
    except msgspec.ValidationError as e:
        # Answered like Litestar's own decoding errors (errors.handle_validation).
        raise ValidationException(extra=[{"message": str(e), "key": "data"}]) from None


def _integral(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer, and so do we."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value
