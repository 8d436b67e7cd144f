"""SQL of the web UI's sessions: a random value in an HttpOnly cookie, its hash here. A
session belongs to the token that opened it, and has its role while the token is not
revoked (revoking it ends its sessions)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from services.api.tokens import Holder
from shared.db import Pool
from shared.events import utcnow

LIFETIME = timedelta(days=7)


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def create(pool: Pool, token_id: str) -> tuple[str, datetime]:
    """A new session of a token: the cookie's value and when it expires."""
    value = secrets.token_urlsafe(32)
    expires = utcnow() + LIFETIME
    await pool.execute(
        "INSERT INTO sessions (id_hash, expires_at, token_id) VALUES ($1, $2, $3)",
        _hash(value),
        expires,
        token_id,
    )
    # Sessions that expired are forgotten as new ones come.
    await pool.execute("DELETE FROM sessions WHERE expires_at < now()")
    return value, expires


async def find(pool: Pool, value: str) -> tuple[str, datetime, Holder] | None:
    """The session's key (its hash, in hex), expiry and token holder, if it is current."""
    key = _hash(value)
    row = await pool.fetchrow(
        """SELECT s.expires_at, t.id::text, t.name, t.role FROM sessions s
           JOIN api_tokens t ON t.id = s.token_id
           WHERE s.id_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL""",
        key,
    )
    if row is None:
        return None
    return key.hex(), row["expires_at"], Holder(row["id"], row["name"], row["role"])


async def delete(pool: Pool, value: str) -> None:
    await pool.execute("DELETE FROM sessions WHERE id_hash = $1", _hash(value))
