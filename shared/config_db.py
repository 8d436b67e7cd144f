"""Reading the configuration tables (connectors, tasks): shared by the api and the runners."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from shared.db import Pool
from shared.durations import format_duration
from shared.models import Connector, RestorePoint, Retention, RetryPolicy, Task

CONNECTOR_COLUMNS = "id::text, name, role, location, options, created_at, runner_group, freshness_s"
TASK_COLUMNS = (
    "id::text, name, type, source_id::text, store_id::text, destination_id::text, "
    "target_store_id::text, labels, snapshot_id, snapshot_window, concurrency, created_at, "
    "restore_path, restore_mode, runner_group, excludes, retry_attempts, retry_delay_s, "
    "freshness_s, retention, restore_point"
)


def connector_from_row(row: Any) -> Connector:
    return Connector(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        location=row["location"],
        options=dict(row["options"]),
        created_at=row["created_at"],
        runner_group=row["runner_group"],
        freshness=_duration(row["freshness_s"]),
    )


def _duration(seconds: int | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def task_from_row(row: Any) -> Task:
    return Task(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        source_id=row["source_id"],
        store_id=row["store_id"],
        destination_id=row["destination_id"],
        target_store_id=row["target_store_id"],
        labels=list(row["labels"]),
        excludes=list(row["excludes"]),
        snapshot_id=row["snapshot_id"],
        restore_path=row["restore_path"],
        restore_mode=row["restore_mode"],
        restore_point=msgspec.convert(row["restore_point"], RestorePoint | None),
        window=row["snapshot_window"],
        concurrency=row["concurrency"],
        runner_group=row["runner_group"],
        retry=retry_policy(row["retry_attempts"], row["retry_delay_s"]),
        freshness=_duration(row["freshness_s"]),
        retention=msgspec.convert(row["retention"], Retention | None),
        created_at=row["created_at"],
    )


def retry_policy(attempts: int | None, delay_s: int | None) -> RetryPolicy | None:
    if attempts is None or delay_s is None:
        return None
    return RetryPolicy(attempts=attempts, delay=format_duration(delay_s))


async def get_connectors(pool: Pool, ids: Sequence[str]) -> dict[str, Connector]:
    rows = await pool.fetch(
        f"SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = ANY($1::uuid[])", list(ids)
    )
    return {r["id"]: connector_from_row(r) for r in rows}


async def get_connector(pool: Pool, connector_id: str) -> Connector | None:
    found = await get_connectors(pool, [connector_id])
    return found.get(connector_id)
