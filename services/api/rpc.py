"""Asking a runner to act on a connector (shared/rpc.py), and what its answers mean in HTTP."""

from __future__ import annotations

from typing import TypeVar

import stamina
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from services.api.deps import Deps
from services.api.errors import ApiError
from shared import rpc, subjects

ACTION_TIMEOUT_S = 120.0
# How long an action waits for a runner to subscribe (runners reconnecting after a NATS
# restart, or starting) before the api answers 503.
NO_RUNNER_PATIENCE_S = 10.0

# The one place where a runner's refusal becomes an HTTP status.
STATUS_OF: dict[rpc.FailReason, int] = {
    "not_found": 404,
    "not_applicable": 409,
    "conflict": 409,
    "refused": 422,
    "failed": 502,
}

R = TypeVar("R", bound=rpc.Reply)


async def ask(deps: Deps, request: rpc.Request, expected: type[R]) -> R:
    """The runner's reply of the expected kind; a `Failed` one (or none) raises ApiError."""

    @stamina.retry(on=NoRespondersError, attempts=None, timeout=NO_RUNNER_PATIENCE_S, wait_max=1)
    async def send() -> bytes:
        reply = await deps.nc.request(
            subjects.RPC_CONNECTOR, rpc.encode(request), timeout=ACTION_TIMEOUT_S
        )
        return reply.data

    try:
        answer = rpc.decode_reply(await send())
    except NoRespondersError:
        raise ApiError(503, "no runner is available to reach the connector") from None
    except NatsTimeout:
        raise ApiError(504, f"the runner did not answer within {ACTION_TIMEOUT_S:.0f}s") from None
    if isinstance(answer, rpc.Failed):
        raise ApiError(STATUS_OF[answer.reason], answer.message)
    if not isinstance(answer, expected):
        raise ApiError(502, f"the runner answered {type(answer).__name__}, not {expected.__name__}")
    return answer
