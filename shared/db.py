"""PostgreSQL access: the connection pool and the plain-SQL migrations."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import asyncpg
import msgspec

Pool = asyncpg.Pool

# The roles of shared/migrations/0005_roles.sql that sign in (runners have no database:
# 0010_runner_no_database.sql).
SERVICE_ROLES = ("plakar_api", "plakar_scheduler", "plakar_history")

# What asyncpg raises while PostgreSQL is down or restarting: no socket to connect to
# (OSError), "the database system is shutting down", a connection cut by the restart.
UNAVAILABLE = (
    OSError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.PostgresConnectionError,
)
# What a write may meet and pass by trying again: PostgreSQL away, or its transaction
# rolled back for a deadlock or a serialization failure (writers of the same rows).
TRANSIENT = (*UNAVAILABLE, asyncpg.exceptions.TransactionRollbackError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: msgspec.json.encode(v).decode(),
        decoder=msgspec.json.decode,
        schema="pg_catalog",
    )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


def _migrations() -> list[tuple[str, str]]:
    files = resources.files("shared").joinpath("migrations")
    return sorted((f.name, f.read_text()) for f in files.iterdir() if f.name.endswith(".sql"))


async def migrate(dsn: str, role_passwords: dict[str, str] | None = None) -> list[str]:
    """Apply the migrations not yet applied, in order, then give the services' roles
    their passwords; returns the names of the migrations applied.

    An advisory lock makes concurrent callers wait instead of racing.
    """
    conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7305311)")
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version text PRIMARY KEY,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                r["version"]: r["checksum"]
                for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
            }
            for name, sql in _migrations():
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if name in done:
                    if done[name] != checksum:
                        raise RuntimeError(f"migration {name} changed after it was applied")
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    name,
                    checksum,
                )
                applied.append(name)
            for role, password in (role_passwords or {}).items():
                if role not in SERVICE_ROLES:
                    raise ValueError(f"{role} is not a role of the services")
                quoted = await conn.fetchval("SELECT quote_literal($1)", password)
                await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD {quoted}")
    finally:
        await conn.close()
    return applied
