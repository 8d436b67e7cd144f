"""Telling freshness changes: the active scheduler judges every task and connector whose
rule asks for freshness (every LOOK_EVERY, and at the instant the next goes stale), and
when one's state differs from what it last told (the freshness journal) publishes
`freshness.lost` or `freshness.restored`, then records it. The first judgement of a rule
is told only when stale. An event's id (its `Nats-Msg-Id` too) is derived from the change
(the state and the instant it changed), so one told again after a crash or a failover is
the same event, dropped by NATS."""

from __future__ import annotations

import logging
from datetime import timedelta

from services.scheduler import journal
from services.scheduler.watch import Watch
from shared import freshness_db, subjects
from shared.dispatch import Message
from shared.durations import format_duration
from shared.events import FreshnessLost, FreshnessRestored, encode
from shared.ids import derived_id
from shared.notifications import Notice

log = logging.getLogger("plakar_cp.scheduler")

# Successes and changed rules are seen this often; going stale is seen when it happens.
LOOK_EVERY = timedelta(seconds=10)
# A look that could not publish is tried again this much later.
AGAIN_AFTER = timedelta(seconds=2)


class FreshnessWatch(Watch):
    """Tells the changes of freshness of tasks and connectors."""

    async def look(self) -> None:
        now = self.clock.now()
        judged = await freshness_db.judged(self.pool)
        told = await journal.freshness_told(self.pool)
        changed: list[tuple[str, str, str]] = []
        messages: list[Message] = []
        notices: list[tuple[Notice, str | None, list[str]]] = []
        soonest = now + LOOK_EVERY
        for j in judged:
            state = j.state(now)
            if state == "fresh":
                soonest = min(soonest, j.stale_at())
            before = told.get((j.watched, j.id))
            if state is None or state == before:
                continue
            changed.append((j.watched, j.id, state))
            if before is None and state == "fresh":
                continue  # a new rule met: nothing to tell
            kind = FreshnessLost if state == "stale" else FreshnessRestored
            tag = str(kind.__struct_config__.tag)
            since = j.stale_at() if state == "stale" else j.last_success
            event = kind(
                event_id=derived_id(f"{tag}:{j.watched}:{j.id}:{since}"),
                watched=j.watched,
                id=j.id,
                name=j.name,
                window=format_duration(int(j.window.total_seconds())),
                last_success_at=j.last_success,
            )
            messages.append(
                Message(
                    subjects.freshness_event(j.watched, j.id, tag), encode(event), event.event_id
                )
            )
            task = j.id if j.watched == "task" else None
            notices.append((event, task, [j.id] if j.watched == "connector" else []))
        self.look_at = soonest
        present = {(j.watched, j.id) for j in judged}
        forgotten = [key for key in told if key not in present]
        if not changed and not forgotten:
            return
        try:
            await self.publish(messages)
        except Exception as e:
            log.warning("publishing freshness changes failed (%s); again shortly", e)
            self.look_at = now + AGAIN_AFTER
            return
        await journal.record_freshness(self.pool, changed, forgotten, now, notices)
        for m in messages:
            log.info("%s", m.subject)
