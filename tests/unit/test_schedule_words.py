"""Schedules in words (`Schedule.description`), as the UI shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.recurrence import describe

# A Monday.
RUN = datetime(2026, 1, 12, 2, 30, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("minutes", "anchored", "alone"),
    [
        (1, "Every minute", "Every minute"),
        (2, "Every 2 min", "Every 2 min"),
        (90, "Every 1 h 30 min", "Every 1 h 30 min"),
        (60, "Every hour at :30", "Every hour"),
        (300, "Every 5 h at :30", "Every 5 h"),
        (360, "Every 6 h at 02:30, 08:30, 14:30 and 20:30 UTC", "Every 6 h"),
        (720, "Twice daily at 02:30 and 14:30 UTC", "Twice daily"),
        (1440, "Daily at 02:30 UTC", "Daily"),
        (36 * 60, "Every 1 day 12 h", "Every 1 day 12 h"),
        (3 * 1440, "Every 3 days at 02:30 UTC", "Every 3 days"),
        (7 * 1440, "Every Monday at 02:30 UTC", "Weekly"),
        (14 * 1440, "Every 2 weeks on Monday at 02:30 UTC", "Every 2 weeks"),
        (30 * 1440, "Every 30 days at 02:30 UTC", "Every 30 days"),
    ],
)
def test_words(minutes: int, anchored: str, alone: str) -> None:
    interval = timedelta(minutes=minutes)
    assert describe(interval, RUN) == anchored
    assert describe(interval, None) == alone


def test_the_times_of_day_do_not_depend_on_which_run_is_the_anchor() -> None:
    later = RUN + 3 * timedelta(hours=6)
    assert describe(timedelta(hours=6), later) == describe(timedelta(hours=6), RUN)


def test_an_anchor_in_another_zone_is_said_in_utc() -> None:
    paris = RUN.astimezone(ZoneInfo("Europe/Paris"))
    assert describe(timedelta(days=1), paris) == "Daily at 02:30 UTC"


@given(
    st.integers(min_value=1, max_value=3660 * 1440),
    st.integers(min_value=0, max_value=400 * 1440),
)
def test_every_schedule_has_words_that_name_its_time_when_it_repeats_daily(
    minutes: int, offset: int
) -> None:
    anchor = RUN + timedelta(minutes=offset)
    words = describe(timedelta(minutes=minutes), anchor)
    assert words and words[0].isupper()
    if minutes % 1440 == 0:
        assert f"{anchor:%H:%M} UTC" in words
