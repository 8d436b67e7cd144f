"""What every request handler reaches: settings, the database pool, NATS."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext

from services.api.errors import not_found
from shared.db import Pool
from shared.settings import Settings


@dataclass
class Deps:
    settings: Settings
    pool: Pool
    nc: Client
    js: JetStreamContext


def parse_id(value: str, what: str) -> str:
    """An id from a path: anything that is not a UUID names nothing (404)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found(what) from None
