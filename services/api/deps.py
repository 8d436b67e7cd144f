"""What every request handler reaches: settings, the database pool, NATS."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext

from services.api.errors import not_found
from shared import bus
from shared.db import Pool
from shared.settings import Settings

# What the api publishes waits out a NATS restart this long (the embedded stack starts
# NATS again within seconds) before answering 503.
PUBLISH_PATIENCE_S = 15.0


@dataclass
class Deps:
    settings: Settings
    pool: Pool
    nc: Client
    js: JetStreamContext

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> None:
        await bus.publish(self.js, subject, payload, msg_id, patience=PUBLISH_PATIENCE_S)


def parse_id(value: str, what: str) -> str:
    """An id from a path: anything that is not a UUID names nothing (404)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found(what) from None
