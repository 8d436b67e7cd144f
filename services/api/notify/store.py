"""SQL of notifications: targets, rules, the fan-out of events to deliveries, and the
deliveries' attempts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import msgspec

from shared.db import Pool
from shared.models import (
    Delivery,
    DeliveryAttempt,
    NotificationRule,
    NotificationTarget,
    SmtpServer,
    TargetCreate,
)

T = TypeVar("T")


class Duplicate(Exception):
    """A target of that name exists."""


_TARGET = "id::text, name, kind, url, secret, email_to, smtp, created_at"


def _target(row: Any) -> NotificationTarget:
    return NotificationTarget(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        url=row["url"],
        secret=row["secret"],
        to=None if row["email_to"] is None else list(row["email_to"]),
        smtp=msgspec.convert(row["smtp"], SmtpServer | None),
        created_at=row["created_at"],
    )


def _target_args(body: TargetCreate) -> tuple[Any, ...]:
    smtp = msgspec.to_builtins(body.smtp) if body.smtp else None
    return (body.name, body.kind, body.url, body.secret, body.to, smtp)


async def insert_target(pool: Pool, body: TargetCreate) -> NotificationTarget:
    try:
        row = await pool.fetchrow(
            f"""INSERT INTO notification_targets (id, name, kind, url, secret, email_to, smtp)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_TARGET}""",
            uuid.uuid4(),
            *_target_args(body),
        )
    except asyncpg.UniqueViolationError as e:
        raise Duplicate from e
    return _target(row)


async def update_target(
    pool: Pool, target_id: str, body: TargetCreate
) -> NotificationTarget | None:
    try:
        row = await pool.fetchrow(
            f"""UPDATE notification_targets SET name = $2, kind = $3, url = $4, secret = $5,
                       email_to = $6, smtp = $7
                WHERE id = $1 RETURNING {_TARGET}""",
            target_id,
            *_target_args(body),
        )
    except asyncpg.UniqueViolationError as e:
        raise Duplicate from e
    return _target(row) if row else None


async def get_target(pool: Pool, target_id: str) -> NotificationTarget | None:
    return await _get(pool, "notification_targets", _TARGET, target_id, _target)


async def list_targets(pool: Pool) -> list[NotificationTarget]:
    rows = await pool.fetch(f"SELECT {_TARGET} FROM notification_targets ORDER BY name")
    return [_target(r) for r in rows]


async def delete_target(pool: Pool, target_id: str) -> bool:
    """Its rules and deliveries go with it."""
    return await _delete(pool, "notification_targets", target_id)


async def _get(
    pool: Pool, table: str, columns: str, row_id: str, made: Callable[[Any], T]
) -> T | None:
    row = await pool.fetchrow(f"SELECT {columns} FROM {table} WHERE id = $1", row_id)
    return made(row) if row else None


async def _delete(pool: Pool, table: str, row_id: str) -> bool:
    result = await pool.execute(f"DELETE FROM {table} WHERE id = $1", row_id)
    return result.endswith(" 1")


_RULE = "id::text, target_id::text, events, task_id::text, connector_id::text, created_at"


def _rule(row: Any) -> NotificationRule:
    return NotificationRule(
        id=row["id"],
        target_id=row["target_id"],
        events=list(row["events"]),
        task_id=row["task_id"],
        connector_id=row["connector_id"],
        created_at=row["created_at"],
    )


async def insert_rule(
    pool: Pool, target_id: str, events: list[str], task_id: str | None, connector_id: str | None
) -> NotificationRule:
    row = await pool.fetchrow(
        f"""INSERT INTO notification_rules (id, target_id, events, task_id, connector_id)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_RULE}""",
        uuid.uuid4(),
        target_id,
        events,
        task_id,
        connector_id,
    )
    return _rule(row)


async def update_rule(pool: Pool, rule: NotificationRule) -> NotificationRule | None:
    row = await pool.fetchrow(
        f"""UPDATE notification_rules SET target_id = $2, events = $3, task_id = $4,
                   connector_id = $5
            WHERE id = $1 RETURNING {_RULE}""",
        rule.id,
        rule.target_id,
        rule.events,
        rule.task_id,
        rule.connector_id,
    )
    return _rule(row) if row else None


async def get_rule(pool: Pool, rule_id: str) -> NotificationRule | None:
    return await _get(pool, "notification_rules", _RULE, rule_id, _rule)


async def list_rules(pool: Pool) -> list[NotificationRule]:
    rows = await pool.fetch(f"SELECT {_RULE} FROM notification_rules ORDER BY created_at, id")
    return [_rule(r) for r in rows]


async def delete_rule(pool: Pool, rule_id: str) -> bool:
    return await _delete(pool, "notification_rules", rule_id)


# The fan-out: each new event becomes one delivery per target of the rules it matches
# (two rules naming one target send once); an event no rule matches is dropped.
_FAN_OUT = """
WITH new AS (
    SELECT event_id, kind, task_id, connector_ids FROM notification_events
    WHERE NOT fanned_out ORDER BY at LIMIT $1 FOR UPDATE SKIP LOCKED
),
made AS (
    INSERT INTO notification_deliveries (id, event_id, target_id, status, next_at)
    SELECT DISTINCT ON (new.event_id, r.target_id) gen_random_uuid(), new.event_id,
           r.target_id, 'pending', now()
    FROM new JOIN notification_rules r ON new.kind = ANY(r.events)
         AND (r.task_id IS NULL OR r.task_id = new.task_id)
         AND (r.connector_id IS NULL OR r.connector_id = ANY(new.connector_ids))
    ON CONFLICT DO NOTHING
    RETURNING event_id
),
kept AS (
    UPDATE notification_events e SET fanned_out = true FROM new
    WHERE e.event_id = new.event_id
      AND (EXISTS (SELECT FROM made WHERE made.event_id = e.event_id)
           OR EXISTS (SELECT FROM notification_deliveries d WHERE d.event_id = e.event_id))
)
DELETE FROM notification_events e USING new
WHERE e.event_id = new.event_id AND NOT EXISTS (SELECT FROM made WHERE made.event_id = e.event_id)
  AND NOT EXISTS (SELECT FROM notification_deliveries d WHERE d.event_id = e.event_id)
"""


async def fan_out(pool: Pool, batch: int = 200) -> None:
    await pool.execute(_FAN_OUT, batch)


# Taken for one attempt: no other api process takes it meanwhile; if this one dies, it
# is due again once the lease ends.
_TAKE_DUE = """
UPDATE notification_deliveries d SET next_at = now() + $2 * interval '1 second'
FROM (
    SELECT id FROM notification_deliveries
    WHERE status = 'pending' AND next_at <= now()
    ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED
) due, notification_events e
WHERE d.id = due.id AND e.event_id = d.event_id
RETURNING d.id::text, d.target_id::text, d.attempts, e.kind, e.body
"""


async def take_due(pool: Pool, limit: int, lease_s: float) -> list[Any]:
    return list(await pool.fetch(_TAKE_DUE, limit, lease_s))


async def record_attempt(
    pool: Pool,
    delivery_id: str,
    attempt: int,
    at: datetime,
    ok: bool,
    detail: str,
    again_in: timedelta | None,
) -> None:
    """Record an attempt; the delivery is delivered, failed for good (`again_in` None),
    or pending until then."""
    status = "delivered" if ok else ("pending" if again_in is not None else "failed")
    next_at = at + again_in if (not ok and again_in is not None) else None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO notification_attempts (delivery_id, attempt, at, ok, detail)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            delivery_id,
            attempt,
            at,
            ok,
            detail,
        )
        await conn.execute(
            """UPDATE notification_deliveries SET status = $2, attempts = $3, next_at = $4
               WHERE id = $1""",
            delivery_id,
            status,
            attempt,
            next_at,
        )


async def list_deliveries(pool: Pool, target_id: str | None, limit: int) -> list[Delivery]:
    rows = await pool.fetch(
        """SELECT d.id::text, d.event_id::text, e.kind, d.target_id::text, d.status,
                  d.next_at, d.created_at,
                  COALESCE(jsonb_agg(jsonb_build_object(
                      'attempt', a.attempt, 'at', a.at, 'ok', a.ok, 'detail', a.detail)
                      ORDER BY a.attempt) FILTER (WHERE a.attempt IS NOT NULL), '[]') AS attempts
           FROM notification_deliveries d
           JOIN notification_events e ON e.event_id = d.event_id
           LEFT JOIN notification_attempts a ON a.delivery_id = d.id
           WHERE $1::uuid IS NULL OR d.target_id = $1
           GROUP BY d.id, e.kind
           ORDER BY d.created_at DESC, d.id LIMIT $2""",
        target_id,
        limit,
    )
    return [
        Delivery(
            id=r["id"],
            event_id=r["event_id"],
            kind=r["kind"],
            target_id=r["target_id"],
            status=r["status"],
            attempts=msgspec.convert(r["attempts"], list[DeliveryAttempt]),
            next_at=r["next_at"] if r["status"] == "pending" else None,
            created_at=r["created_at"],
        )
        for r in rows
    ]


# Ended deliveries are kept this long, as are the events they told.
KEEP = timedelta(days=30)


async def forget_old(pool: Pool) -> None:
    await pool.execute(
        """DELETE FROM notification_events e WHERE fanned_out AND at < now() - $1::interval
           AND NOT EXISTS (SELECT FROM notification_deliveries d
                           WHERE d.event_id = e.event_id AND d.status = 'pending')""",
        KEEP,
    )
