"""Recurrence maths: properties over arbitrary schedules, clocks and downtimes."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.scheduler.timers import Timers
from shared.recurrence import (
    LATE,
    MIN_INTERVAL,
    NAMED,
    Rule,
    fired,
    firing_job_id,
    interval_of,
    rearm,
    restart,
    resume,
    upcoming,
)

EPOCH = datetime(2030, 1, 1, tzinfo=UTC)

instants = st.integers(min_value=0, max_value=400 * 86400).map(
    lambda s: EPOCH + timedelta(seconds=s)
)
minutes = st.integers(min_value=0, max_value=400 * 1440).map(lambda m: EPOCH + timedelta(minutes=m))
intervals = st.sampled_from(list(NAMED.values())) | st.integers(
    min_value=1, max_value=90 * 1440
).map(lambda m: timedelta(minutes=m))
# How late a firing is: mostly on time, sometimes after a long downtime.
delays = st.integers(min_value=0, max_value=5000).map(lambda ms: timedelta(milliseconds=ms)) | (
    st.integers(min_value=31, max_value=90 * 86400).map(lambda s: timedelta(seconds=s))
)
rules = st.builds(Rule, interval=intervals, start_at=st.none() | minutes, journalised=st.booleans())


def run(rule: Rule, now: datetime, delays: list[timedelta]) -> list[tuple[datetime, datetime]]:
    """Fire a schedule armed at `now` once per delay; returns (due, fired_at) pairs."""
    due = rearm(rule, None, now)
    out = []
    for delay in delays:
        fired_at = max(due, now) + delay
        out.append((due, fired_at))
        due = fired(rule, due, fired_at).next_run_at
        now = fired_at
    return out


@given(rules, instants, st.lists(delays, min_size=1, max_size=30))
def test_runs_are_monotonic_and_next_is_ahead_of_each_firing(
    rule: Rule, now: datetime, lateness: list[timedelta]
) -> None:
    runs = run(rule, now, lateness)
    dues = [d for d, _ in runs]
    assert dues == sorted(dues) and len(set(dues)) == len(dues)
    for due, fired_at in runs:
        after = fired(rule, due, fired_at)
        assert after.next_run_at > fired_at  # never a burst
        assert after.next_run_at - after.last_run_at == rule.interval


@given(rules, instants, st.lists(st.integers(0, 29_000), min_size=1, max_size=30))
def test_on_time_firings_keep_the_grid(rule: Rule, now: datetime, ms: list[int]) -> None:
    runs = run(rule, now, [timedelta(milliseconds=m) for m in ms])
    first = runs[0][0]
    for k, (due, _) in enumerate(runs):
        assert due == first + k * rule.interval


@given(rules, instants)
def test_start_is_honoured(rule: Rule, now: datetime) -> None:
    first = rearm(rule, None, now)
    if rule.start_at is None:
        assert first == now.replace(microsecond=0)  # at once
    elif rule.start_at >= now:
        assert first == rule.start_at
    else:  # passed: the start's grid, from now on
        assert now <= first < now + rule.interval
        assert (first - rule.start_at) % rule.interval == timedelta(0)


@given(rules, instants, st.integers(min_value=1, max_value=1000))
def test_journalised_restart_fires_once_then_relative_to_that_run(
    rule: Rule, last: datetime, missed: int
) -> None:
    journalised = Rule(rule.interval, rule.start_at, journalised=True)
    due = last + rule.interval
    # Down while `missed` runs were due, then back.
    back = due + (missed - 1) * rule.interval + LATE + timedelta(seconds=1)
    nxt = resume(
        journalised,
        last_run_at=last,
        journal_next=due,
        journal_current=True,
        same_session=False,
        now=back,
        session_started=back,
    )
    assert nxt == due <= back  # one catch-up, at once
    catch_up = fired(journalised, nxt, back)
    assert catch_up.catch_up
    assert catch_up.next_run_at == back.replace(microsecond=0) + rule.interval


@given(rules, instants, st.integers(min_value=0, max_value=1000 * 86400))
def test_non_journalised_restart_resets_to_the_restart(
    rule: Rule, due: datetime, downtime_s: int
) -> None:
    r = Rule(rule.interval, rule.start_at, journalised=False)
    restarted = due + timedelta(seconds=downtime_s)
    nxt = resume(
        r,
        last_run_at=due - r.interval,
        journal_next=due,
        journal_current=True,
        same_session=False,
        now=restarted,
        session_started=restarted,
    )
    if r.start_at is not None and r.start_at > restarted:
        assert nxt == r.start_at
    else:
        assert nxt == restarted.replace(microsecond=0) + r.interval
    assert nxt == restart(r, restarted)


@given(rules, instants, instants)
def test_failover_keeps_the_journal(rule: Rule, due: datetime, now: datetime) -> None:
    kept = resume(
        rule,
        last_run_at=None,
        journal_next=due,
        journal_current=True,
        same_session=True,
        now=now,
        session_started=EPOCH,
    )
    assert kept == due


@given(rules, instants, instants)
def test_re_enabling_catches_up_at_most_once(rule: Rule, last: datetime, now: datetime) -> None:
    nxt = rearm(rule, last, now)
    if rule.start_at is not None and rule.start_at >= now:
        assert nxt == rule.start_at
    elif rule.journalised:
        assert nxt == last + rule.interval  # if passed: one run at once, then relative
    else:
        assert nxt >= now  # never a catch-up


@given(
    st.lists(st.tuples(minutes, intervals), min_size=1, max_size=8),
    instants,
    st.integers(1, 200),
)
def test_upcoming_is_sorted_capped_and_within_30_days(
    schedules: list[tuple[datetime, timedelta]], now: datetime, limit: int
) -> None:
    horizon = timedelta(days=30)
    runs = upcoming(((i, n, iv) for i, (n, iv) in enumerate(schedules)), now, horizon, limit)
    assert len(runs) <= limit
    assert [at for at, _ in runs] == sorted(at for at, _ in runs)
    assert all(now <= at <= now + horizon for at, _ in runs)
    for key, (nxt, interval) in enumerate(schedules):
        mine = [at for at, k in runs if k == key]
        assert all(b - a == interval for a, b in itertools.pairwise(mine))
        if mine and nxt >= now:
            assert mine[0] == nxt


def test_a_missed_run_is_shown_as_running_now() -> None:
    now = EPOCH + timedelta(hours=5)
    runs = upcoming([("s", EPOCH, timedelta(hours=1))], now, timedelta(hours=2), 10)
    assert runs == [(now, "s"), (now + timedelta(hours=1), "s"), (now + timedelta(hours=2), "s")]


def test_named_recurrences_and_the_smallest_interval() -> None:
    assert interval_of("twice_daily") == timedelta(hours=12)
    assert interval_of("every_30_days") == timedelta(days=30)
    assert interval_of("custom", MIN_INTERVAL) == MIN_INTERVAL
    assert LATE < MIN_INTERVAL


def test_one_job_id_per_firing() -> None:
    due = EPOCH + timedelta(minutes=3)
    same = due.astimezone(UTC)
    assert firing_job_id("a", due) == firing_job_id("a", same)
    assert firing_job_id("a", due) != firing_job_id("a", due + MIN_INTERVAL)
    assert firing_job_id("a", due) != firing_job_id("b", due)


def test_timers_give_the_soonest_first_and_forget_removed_ones() -> None:
    t = Timers()
    t.set("a", EPOCH + timedelta(minutes=2))
    t.set("b", EPOCH + timedelta(minutes=1))
    t.set("c", EPOCH + timedelta(minutes=3))
    t.set("a", EPOCH + timedelta(minutes=5))  # moved
    t.remove("c")
    assert t.next_at() == EPOCH + timedelta(minutes=1)
    assert t.pop_due(EPOCH + timedelta(minutes=4)) == ["b"]
    assert t.keys() == {"a"} and t.next_at() == EPOCH + timedelta(minutes=5)
    assert t.pop_due(EPOCH + timedelta(minutes=5)) == ["a"] and t.next_at() is None


@given(st.uuids(), st.datetimes(timezones=st.just(UTC)))
def test_a_firing_job_id_is_the_uuid5_of_its_schedule_and_instant(
    schedule: uuid.UUID, due: datetime
) -> None:
    namespace = uuid.UUID("6f1d3c1e-9b3e-4c55-8a0a-5b7a6a1c2d40")
    expected = str(uuid.uuid5(namespace, f"{schedule}@{due.isoformat()}"))
    assert firing_job_id(str(schedule), due) == expected
