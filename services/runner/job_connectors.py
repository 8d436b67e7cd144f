"""A runner asks the api for the connectors of a job it holds (shared/rpc.py
JobConnectors): runners hold no database credential, and get only their jobs' secrets.

While no api answers (restarting) or the api cannot look the job up (PostgreSQL away),
the runner asks again for a bounded time, then the job fails saying so; a refusal ends
the job at once."""

from __future__ import annotations

import logging
import os

from nats.aio.client import Client

from services.runner.job import JobFailure
from shared import bus, rpc
from shared import subjects as s
from shared.models import Connector

log = logging.getLogger("plakar_cp.runner")

# How long a job waits for an api to hand over its connectors (the embedded stack starts
# a dead api again within seconds).
PATIENCE_S = float(os.environ.get("PLAKAR_CP_CONNECTORS_PATIENCE", "60"))
REQUEST_TIMEOUT_S = 10.0


class _NotLookedUp(Exception):
    """The api answered that it could not look the job up (for now)."""


async def fetch(
    nc: Client, ask: rpc.JobConnectors, group: str, patience: float = PATIENCE_S
) -> dict[str, Connector]:
    """The job's connectors by id, asked under the runner's `group`; JobFailure when the
    api refuses, or gives none in time."""
    try:
        reply = await _patiently(nc, ask, s.rpc_job_connectors(group), patience)
    except (*bus.NATS_AWAY, _NotLookedUp) as e:
        why = str(e) or type(e).__name__
        raise JobFailure(
            f"no api handed over the job's connectors within {patience:.0f}s ({why})"
        ) from None
    if isinstance(reply, rpc.Failed):
        raise JobFailure(f"the api refused the job's connectors: {reply.message}")
    return {c.id: c for c in reply.items}


async def _patiently(
    nc: Client, ask: rpc.JobConnectors, subject: str, patience: float
) -> rpc.ConnectorsReply:
    async for attempt in bus.retrying(
        (*bus.NATS_AWAY, _NotLookedUp), patience=patience, wait_max=2.0
    ):
        with attempt:
            if attempt.num > 1:
                log.warning(
                    "job %s: asking the api for its connectors again (attempt %d)",
                    ask.job_id,
                    attempt.num,
                )
            answer = await nc.request(subject, rpc.encode(ask), timeout=REQUEST_TIMEOUT_S)
            try:
                reply = rpc.decode_connectors_reply(answer.data)
            except Exception as e:
                raise JobFailure(f"the api's answer is not one: {e}") from None
            if isinstance(reply, rpc.Failed) and reply.reason == "failed":
                raise _NotLookedUp(reply.message)
            return reply
    raise AssertionError("unreachable: retrying raises when it gives up")
