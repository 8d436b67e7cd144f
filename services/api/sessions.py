"""SQL of the web UI's sessions: a random value in an HttpOnly cookie, its hash here."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from shared.db import Pool
from shared.events import utcnow

LIFETIME = timedelta(days=7)


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def create(pool: Pool) -> tuple[str, datetime]:
    """A new session: the cookie's value and when it expires."""
    value = secrets.token_urlsafe(32)
    expires = utcnow() + LIFETIME
    await pool.execute(
        "INSERT INTO sessions (id_hash, expires_at) VALUES ($1, $2)", _hash(value), expires
    )
    # Sessions that expired are forgotten as new ones come.
    await pool.execute("DELETE FROM sessions WHERE expires_at < now()")
    return value, expires


async def find(pool: Pool, value: str) -> tuple[str, datetime] | None:
    """The session's key (its hash, in hex) and expiry, if it is current."""
    key = _hash(value)
    expires: datetime | None = await pool.fetchval(
        "SELECT expires_at FROM sessions WHERE id_hash = $1 AND expires_at > now()", key
    )
    return (key.hex(), expires) if expires else None


async def delete(pool: Pool, value: str) -> None:
    await pool.execute("DELETE FROM sessions WHERE id_hash = $1", _hash(value))
