"""What the OpenAPI document says of the api, so that it tells the truth: every route
declares the statuses it answers with the one error body, and request bodies that refuse
unknown fields say so (`additionalProperties: false`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from shared.models import ErrorBody

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition

WHY = {
    400: "Malformed request: not JSON, a wrong type, a missing or unknown field",
    401: "Missing or wrong API token",
    403: "A change made with the session cookie from elsewhere than the UI",
    404: "No such object (an id that is not a UUID names nothing)",
    409: "The state forbids it (a name taken, an object in use, a cap reached)",
    422: "A value that breaks a rule; `field` names it",
    502: "The runner failed to carry out the action",
    503: "PostgreSQL or NATS is away, or no runner answers; try again shortly",
    504: "The runner did not answer in time",
}
# What any route of the api may answer besides its own.
ALWAYS = (400, 401, 403, 503)


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """The error responses of a route: its own codes and those of every route."""
    return {
        code: ResponseSpec(data_container=ErrorBody, description=WHY[code])
        for code in sorted({*ALWAYS, *codes})
    }


def stated(**schema: object) -> Any:
    """A parameter's constraints, stated in the document; the api's validation enforces
    them, answering 422 naming the parameter."""
    return Parameter(schema_extra=schema)


class StrictStructs(StructSchemaPlugin):
    """Litestar's schemas of msgspec Structs, with `additionalProperties: false` for the
    ones that refuse unknown fields (msgspec answers them 400)."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema
