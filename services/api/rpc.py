"""Asking a runner to act on a connector (shared/rpc.py), and what its answers mean in HTTP."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import stamina
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from services.api.deps import Deps
from services.api.errors import ApiError
from shared import bus, rpc, subjects
from shared.groups import group_of

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
Send = Callable[[], Awaitable[Msg]]


def group_of_request(request: rpc.Request) -> str:
    """The runner group that serves a request: its connector's (a ping: the default)."""
    return group_of(None if isinstance(request, rpc.Ping) else request.connector.runner_group)


async def _sending(deps: Deps, group: str) -> Callable[[Send], Send]:
    """How a request to the group's runners is sent while none answers: again for a while
    when one of them announces itself (it may be restarting), once otherwise (NATS says
    at once that nobody listens). The presence only decides the patience: what answers
    is whoever listens."""
    runners = [x for x in await bus.live_services(deps.js) if x.kind == "runner"]
    announced = any(group_of(x.group) == group for x in runners)
    return stamina.retry(
        on=NoRespondersError,
        attempts=None if announced else 1,
        timeout=NO_RUNNER_PATIENCE_S,
        wait_max=1,
    )


def no_runner(group: str) -> str:
    return f"no runner of group {group} is live to reach the connector"


async def ask(deps: Deps, request: rpc.Request, expected: type[R]) -> R:
    """The runner's reply of the expected kind; a `Failed` one (or none) raises ApiError."""
    group = group_of_request(request)
    subject = subjects.rpc_connector(group)

    @await _sending(deps, group)
    async def send() -> Msg:
        return await deps.nc.request(subject, rpc.encode(request), timeout=ACTION_TIMEOUT_S)

    try:
        answer = rpc.decode_reply((await send()).data)
    except NoRespondersError:
        raise ApiError(503, no_runner(group)) from None
    except NatsTimeout:
        raise ApiError(504, f"the runner did not answer within {ACTION_TIMEOUT_S:.0f}s") from None
    if isinstance(answer, rpc.Failed):
        raise ApiError(STATUS_OF[answer.reason], answer.message)
    if isinstance(answer, rpc.Unresolved):
        raise ApiError(422, answer.message, field=answer.field)
    if not isinstance(answer, expected):
        raise ApiError(502, f"the runner answered {type(answer).__name__}, not {expected.__name__}")
    return answer


_MORE = rpc.encode(rpc.Pull(more=True))
_STOP = rpc.encode(rpc.Pull(more=False))


def _no_responders(msg: Msg) -> bool:
    return (msg.headers or {}).get("Status") == "503"


async def read_file(deps: Deps, request: rpc.ReadFile) -> AsyncGenerator[bytes]:
    """A file's chunks as a runner streams them (rpc.ReadFile), one held at a time: the
    next is asked for once the consumer took this one; stopping early stops plakar.
    Errors before the first chunk raise ApiError here; later ones end the iteration
    with ApiError (a download then breaks off)."""
    inbox = deps.nc.new_inbox()
    sub = await deps.nc.subscribe(inbox)
    try:
        msg, answer = await _first(deps, sub, inbox, request)
    except BaseException:
        await sub.unsubscribe()
        raise
    return _chunks(sub, msg, answer)


async def _first(
    deps: Deps, sub: Subscription, inbox: str, request: rpc.ReadFile
) -> tuple[Msg, rpc.Chunk | rpc.FileEnd]:
    group = group_of_request(request)
    subject = subjects.rpc_connector(group)

    @await _sending(deps, group)
    async def send() -> Msg:
        await deps.nc.publish(subject, rpc.encode(request), reply=inbox)
        msg = await sub.next_msg(timeout=ACTION_TIMEOUT_S)
        if _no_responders(msg):
            raise NoRespondersError
        return msg

    try:
        msg = await send()
    except NoRespondersError:
        raise ApiError(503, no_runner(group)) from None
    except NatsTimeout:
        raise ApiError(504, f"the runner did not answer within {ACTION_TIMEOUT_S:.0f}s") from None
    return msg, _chunk_or_end(rpc.decode_reply(msg.data))


def _chunk_or_end(answer: rpc.Reply) -> rpc.Chunk | rpc.FileEnd:
    if isinstance(answer, rpc.Failed):
        raise ApiError(STATUS_OF[answer.reason], answer.message)
    if not isinstance(answer, rpc.Chunk | rpc.FileEnd):
        raise ApiError(502, f"the runner answered {type(answer).__name__}, not a file")
    return answer


async def _chunks(
    sub: Subscription, msg: Msg, answer: rpc.Chunk | rpc.FileEnd
) -> AsyncGenerator[bytes]:
    pending = isinstance(answer, rpc.Chunk)  # the runner waits for our word
    try:
        while isinstance(answer, rpc.Chunk):
            yield answer.data
            pending = False
            await msg.respond(_MORE)
            try:
                msg = await sub.next_msg(timeout=ACTION_TIMEOUT_S)
            except NatsTimeout:
                raise ApiError(504, "the runner stopped sending the file") from None
            answer = _chunk_or_end(rpc.decode_reply(msg.data))
            pending = isinstance(answer, rpc.Chunk)
    finally:
        if pending:
            await msg.respond(_STOP)
        await sub.unsubscribe()
