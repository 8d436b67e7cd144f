"""SQL of API tokens: a name, a role, and the SHA-256 of the token (shown once, when
created). The token `plakar-cp up` prints is the first admin token."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.db import UNAVAILABLE, Pool
from shared.models import AccessRole, ApiToken

FIRST_ADMIN = "admin (plakar-cp up)"
# last_used_at is written at most this often per token and api process.
TOUCH_EVERY_S = 60.0


class Duplicate(Exception):
    """A token of that name exists (revoked ones too)."""


class LastAdmin(Exception):
    """Revoking it would leave no admin token."""


@dataclass(frozen=True)
class Holder:
    """Who holds the token of a request: its id, name and role."""

    id: str
    name: str
    role: AccessRole


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def ensure_first_admin(pool: Pool, token: str) -> None:
    """The token of `up` is an admin token, unless it was revoked (it stays revoked)."""
    await pool.execute(
        """INSERT INTO api_tokens (id, name, role, hash) VALUES ($1, $2, 'admin', $3)
           ON CONFLICT DO NOTHING""",
        uuid.uuid4(),
        FIRST_ADMIN,
        hash_token(token),
    )


_touched: dict[str, float] = {}
# Tokens recently found valid, by hash: asked again after FRESH_S (a revocation made
# through another api process takes effect within it), and trusted as last found while
# PostgreSQL is away, so that health, cancels and the job streams answer through its
# restart as they did before tokens lived in it.
FRESH_S = 5.0
_known: dict[bytes, tuple[Holder, float]] = {}


async def holder(pool: Pool, token: str) -> Holder | None:
    """The holder of a token that is not revoked; None for any other string."""
    key = hash_token(token)
    known = _known.get(key)
    if known is not None and time.monotonic() - known[1] < FRESH_S:
        return known[0]
    try:
        row = await pool.fetchrow(
            """SELECT id::text, name, role FROM api_tokens
               WHERE hash = $1 AND revoked_at IS NULL""",
            key,
        )
    except UNAVAILABLE:
        if known is not None:
            return known[0]
        raise
    if row is None:
        _known.pop(key, None)
        return None
    found = Holder(row["id"], row["name"], row["role"])
    _known[key] = (found, time.monotonic())
    if time.monotonic() - _touched.get(found.id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
        _touched[found.id] = time.monotonic()
        with contextlib.suppress(*UNAVAILABLE):  # told next time
            await pool.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = $1", found.id)
    return found


def forget(token_id: str) -> None:
    """A token revoked here is refused here at once."""
    for key, (known, _) in list(_known.items()):
        if known.id == token_id:
            del _known[key]


_COLUMNS = "id::text, name, role, created_at, last_used_at, revoked_at"


def _token(row: Any) -> ApiToken:
    return ApiToken(**dict(row))


async def create(pool: Pool, name: str, role: AccessRole) -> tuple[ApiToken, str]:
    """A new token: as listed, and the token itself (to show once)."""
    token = "pcp_" + secrets.token_urlsafe(32)
    try:
        row = await pool.fetchrow(
            f"""INSERT INTO api_tokens (id, name, role, hash) VALUES ($1, $2, $3, $4)
                RETURNING {_COLUMNS}""",
            uuid.uuid4(),
            name,
            role,
            hash_token(token),
        )
    except asyncpg.UniqueViolationError as e:
        raise Duplicate from e
    return _token(row), token


async def list_all(pool: Pool) -> list[ApiToken]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, name")
    return [_token(r) for r in rows]


async def revoke(pool: Pool, token_id: str) -> ApiToken | None:
    """Revoke a token (its sessions end with it); None when there is no such token.
    Raises LastAdmin rather than leave no admin token."""
    async with pool.acquire() as conn, conn.transaction():
        # One revocation at a time: two admins revoking each other keep one.
        await conn.execute("LOCK TABLE api_tokens IN SHARE ROW EXCLUSIVE MODE")
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = $1", token_id)
        if row is None:
            return None
        if row["revoked_at"] is None and row["role"] == "admin":
            admins = await conn.fetchval(
                "SELECT count(*) FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL"
            )
            if admins <= 1:
                raise LastAdmin
        row = await conn.fetchrow(
            f"""UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
                RETURNING {_COLUMNS}""",
            token_id,
        )
        await conn.execute("DELETE FROM sessions WHERE token_id = $1", token_id)
    forget(token_id)
    return _token(row)
