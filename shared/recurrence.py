"""Recurrence maths of schedules (pure): when a schedule runs next.

A schedule runs every `interval`, first at `start_at` (or at once when it has
none). Each run has a due instant; the *reference* of a schedule is the instant
of its last run, and the next run is due one interval after it.

- On time (fired at most `LATE` after it was due), a run's reference is its due
  instant, so the schedule keeps its grid (02:00, 02:00, ...) whatever the
  firing delays.
- Late (the control plane was down), a run is a catch-up: it runs once, and the
  schedule continues relative to the instant it actually ran. Missed runs are
  never replayed one by one.
- A journalised schedule keeps its reference across restarts (the scheduler
  persists it); a non-journalised one starts again from the restart instant.

Every instant here is a timezone-aware UTC datetime.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec

from shared.models import Recurrence

NAMED: dict[Recurrence, timedelta] = {
    "twice_daily": timedelta(hours=12),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "every_30_days": timedelta(days=30),
}
MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=3660)

# A run fired later than this after its due instant is a catch-up. Shorter than
# the smallest interval, so the next run is always ahead of the one just fired;
# longer than a scheduler failover, so a failover keeps the schedule's grid.
LATE = timedelta(seconds=30)

# Namespace of the ids of scheduled jobs (see `firing_job_id`).
_JOB_NAMESPACE = uuid.UUID("6f1d3c1e-9b3e-4c55-8a0a-5b7a6a1c2d40")


class Rule(msgspec.Struct, frozen=True):
    interval: timedelta
    start_at: datetime | None = None
    journalised: bool = True


class Firing(msgspec.Struct, frozen=True):
    """What a run changes: the reference it leaves and the next due instant."""

    last_run_at: datetime
    next_run_at: datetime
    catch_up: bool


def interval_of(recurrence: Recurrence, custom: timedelta | None = None) -> timedelta:
    """The interval of a named recurrence, or the custom one."""
    if recurrence == "custom":
        if custom is None:
            raise ValueError("a custom recurrence needs an interval")
        return custom
    return NAMED[recurrence]


def floor_second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def grid_at_or_after(start: datetime, interval: timedelta, t: datetime) -> datetime:
    """The first instant start + k * interval (k >= 0) that is not before t."""
    if t <= start:
        return start
    k = -((start - t) // interval)  # ceil((t - start) / interval)
    return start + k * interval


def rearm(rule: Rule, last_run_at: datetime | None, now: datetime) -> datetime:
    """Next run of a schedule created, changed or re-enabled at `now`.

    A start instant still ahead is the next run. A schedule that never ran and
    whose start instant has passed keeps the grid of its start instant; with no
    start instant it runs at once. A journalised schedule that ran before is due
    one interval after its last run (if that has passed: one catch-up run at
    once); a non-journalised one never catches up.
    """
    if rule.start_at is not None and rule.start_at >= now:
        return rule.start_at
    if last_run_at is None:
        if rule.start_at is None:
            return floor_second(now)
        return grid_at_or_after(rule.start_at, rule.interval, now)
    following = last_run_at + rule.interval
    if rule.journalised or following >= now:
        return following
    return floor_second(now) + rule.interval


def restart(rule: Rule, restart_at: datetime) -> datetime:
    """Next run of a non-journalised schedule after a control-plane restart:
    its start instant if still ahead, else one interval after the restart."""
    if rule.start_at is not None and rule.start_at > restart_at:
        return rule.start_at
    return floor_second(restart_at) + rule.interval


def resume(
    rule: Rule,
    *,
    last_run_at: datetime | None,
    journal_next: datetime | None,
    journal_current: bool,
    same_session: bool,
    now: datetime,
    session_started: datetime,
) -> datetime:
    """Next run of an enabled schedule when a scheduler arms it: at start-up, on
    taking over, or when told the schedule changed.

    A journal computed for an older revision of the schedule (or none) is
    recomputed as of now. Otherwise it holds, except for a non-journalised
    schedule in a new session (the control plane restarted): its reference is
    the restart instant.
    """
    if journal_next is None or not journal_current:
        return rearm(rule, last_run_at, now)
    if not rule.journalised and not same_session:
        return restart(rule, session_started)
    return journal_next


def fired(rule: Rule, due: datetime, fired_at: datetime) -> Firing:
    """The reference and next run once the run due at `due` fired at `fired_at`."""
    catch_up = fired_at - due > LATE
    reference = floor_second(fired_at) if catch_up else due
    return Firing(reference, reference + rule.interval, catch_up)


def firing_job_id(schedule_id: str, due: datetime) -> str:
    """The job of one firing: the same for every scheduler that fires it, so a
    firing repeated after a failover is deduplicated."""
    # uuid.uuid5, without its UUID objects: a third of the time of a burst's firings.
    name = f"{schedule_id}@{due.astimezone(UTC).isoformat()}".encode()
    h = bytearray(hashlib.sha1(_JOB_NAMESPACE.bytes + name, usedforsecurity=False).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


K = TypeVar("K")


def _runs(
    key: K, first: datetime, interval: timedelta, until: datetime
) -> Iterator[tuple[datetime, K]]:
    at = first
    while at <= until:
        yield at, key
        at += interval


def upcoming(
    schedules: Iterable[tuple[K, datetime, timedelta]],
    now: datetime,
    horizon: timedelta,
    limit: int,
) -> list[tuple[datetime, K]]:
    """The next runs of several schedules, given each one's next run and interval,
    soonest first, up to `now + horizon` and at most `limit` of them.

    A next run already past is overdue: the scheduler runs it at once (`now`)."""
    until = now + horizon
    streams = [_runs(key, max(nxt, now), interval, until) for key, nxt, interval in schedules]
    merged = heapq.merge(*streams, key=lambda pair: pair[0])
    return list(itertools.islice(merged, limit))


# Words for a schedule (GET /schedules answers them as `description`).

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
# Times of day a sub-daily schedule lists in full ("at 00:30, 06:30, 12:30 and 18:30").
_TIMES_LISTED = 4


def _span(interval: timedelta) -> str:
    """An interval in days, hours and minutes: "1 day 12 h", "90 days", "2 min"."""
    minutes = int(interval / MIN_INTERVAL)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else ""]
    return " ".join(p for p in [*parts, f"{mins} min" if mins else ""] if p)


def _clock(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%H:%M")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def describe(interval: timedelta, anchor: datetime | None) -> str:
    """A schedule in words: "Every 2 min", "Daily at 02:30 UTC", "Every Monday at 02:30
    UTC". `anchor` is one of its runs (the next one, the last one or its start): it sets
    the time of day and the weekday; without one, the interval alone is said."""
    if interval == MIN_INTERVAL:
        return "Every minute"
    if interval < _HOUR or (interval < _DAY and interval % _HOUR):
        return f"Every {_span(interval)}"
    if interval < _DAY:
        hours = interval // _HOUR
        head = "Every hour" if hours == 1 else "Twice daily" if hours == 12 else f"Every {hours} h"
        if anchor is None:
            return head
        if _DAY % interval or _DAY // interval > _TIMES_LISTED:
            return f"{head} at :{anchor.astimezone(UTC):%M}"
        at = anchor.astimezone(UTC)
        midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
        first = at - (at - midnight) // interval * interval
        times = [_clock(first + k * interval) for k in range(_DAY // interval)]
        return f"{head} at {_and(times)} UTC"
    if interval % _DAY:
        return f"Every {_span(interval)}"
    days = interval // _DAY
    if days % 7 == 0:
        weeks = days // 7
        head = "Weekly" if weeks == 1 else f"Every {weeks} weeks"
        if anchor is None:
            return head
        weekday = _WEEKDAYS[anchor.astimezone(UTC).weekday()]
        every = f"Every {weekday}" if weeks == 1 else f"{head} on {weekday}"
        return f"{every} at {_clock(anchor)} UTC"
    head = "Daily" if days == 1 else f"Every {days} days"
    return head if anchor is None else f"{head} at {_clock(anchor)} UTC"
