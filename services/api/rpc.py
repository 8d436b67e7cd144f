"""Asking a runner to act on a connector, over NATS request/reply."""

from __future__ import annotations

import msgspec
import stamina
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from services.api.deps import Deps
from services.api.errors import ApiError
from shared import subjects
from shared.models import ConnectorAction

ACTION_TIMEOUT_S = 120.0
# How long an action waits for a runner to subscribe (runners reconnecting after a NATS
# restart, or starting) before the api answers 503.
NO_RUNNER_PATIENCE_S = 10.0


async def ask_runner(deps: Deps, action: str, request: ConnectorAction) -> bytes:
    """The runner's JSON answer; its errors become ApiError with the runner's status."""

    @stamina.retry(on=NoRespondersError, attempts=None, timeout=NO_RUNNER_PATIENCE_S, wait_max=1)
    async def ask() -> bytes:
        subject, body = subjects.connector_rpc(action), msgspec.json.encode(request)
        reply = await deps.nc.request(subject, body, timeout=ACTION_TIMEOUT_S)
        return reply.data

    try:
        data = await ask()
    except NoRespondersError:
        raise ApiError(503, "no runner is available to reach the connector") from None
    except NatsTimeout:
        raise ApiError(504, f"the runner did not answer within {ACTION_TIMEOUT_S:.0f}s") from None
    answer = msgspec.json.decode(data)
    if isinstance(answer, dict) and "error" in answer:
        raise ApiError(int(answer.get("status", 422)), str(answer["error"]))
    return data
