"""Asking a runner to act on a connector, over NATS request/reply."""

from __future__ import annotations

import msgspec
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from services.api.deps import Deps
from services.api.errors import ApiError
from shared import subjects
from shared.models import ConnectorAction

ACTION_TIMEOUT_S = 120.0


async def ask_runner(deps: Deps, action: str, request: ConnectorAction) -> bytes:
    """The runner's JSON answer; its errors become ApiError with the runner's status."""
    try:
        reply = await deps.nc.request(
            subjects.connector_rpc(action), msgspec.json.encode(request), timeout=ACTION_TIMEOUT_S
        )
    except NoRespondersError:
        raise ApiError(503, "no runner is available to reach the connector") from None
    except NatsTimeout:
        raise ApiError(504, f"the runner did not answer within {ACTION_TIMEOUT_S:.0f}s") from None
    answer = msgspec.json.decode(reply.data)
    if isinstance(answer, dict) and "error" in answer:
        raise ApiError(int(answer.get("status", 422)), str(answer["error"]))
    return reply.data
