"""Freshness (pure): a task or a connector may say how recent its last successful job must
be ("26h"). Past that it is stale, whether or not any job ran: what catches a schedule
that stopped, or one whose every run fails. The api shows the state, the scheduler tells
its changes (`freshness.lost`, `freshness.restored`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

FreshnessState = Literal["fresh", "stale"]
Watched = Literal["task", "connector"]

MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=366)


def stale_at(window: timedelta, last_success: datetime | None, created_at: datetime) -> datetime:
    """When it goes stale: `window` after its last success, or after it was created
    (a new task has that long to succeed a first time)."""
    return (last_success or created_at) + window


def state(
    window: timedelta | None, last_success: datetime | None, created_at: datetime, now: datetime
) -> FreshnessState | None:
    """Its state now; None when it asks for no freshness."""
    if window is None:
        return None
    return "stale" if now >= stale_at(window, last_success, created_at) else "fresh"
