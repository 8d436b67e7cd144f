"""Firings due together: one job per firing, overlaps within a batch skipped, the cycle
collector held off while they fire."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from services.scheduler.active import _cycles_paused
from services.scheduler.batch import plan
from services.scheduler.journal import Entry
from shared.recurrence import Rule, firing_job_id

DUE = datetime(2030, 1, 1, 2, 0, tzinfo=UTC)


def entry(schedule_id: str, task_id: str, due: datetime | None = DUE) -> Entry:
    return Entry(
        id=schedule_id,
        task_id=task_id,
        rule=Rule(interval=timedelta(days=1), start_at=None, journalised=True),
        enabled=True,
        revision=1,
        journal_revision=1,
        session="s",
        next_run_at=due,
        last_run_at=None,
    )


def test_one_job_per_task_the_others_skipped_as_overlapping_it() -> None:
    entries = [entry("s3", "a"), entry("s1", "a"), entry("s2", "a"), entry("s4", "b")]
    planned = plan(entries, {}, {}, DUE + timedelta(seconds=1))
    by_id = {p.entry.id: p.record for p in planned}
    first = firing_job_id("s1", DUE)
    assert by_id["s1"].skip_reason is None and by_id["s1"].job_id == first
    for skipped in ("s2", "s3"):
        assert by_id[skipped].skip_reason == f"job {first} of this task is still queued"
    assert by_id["s4"].skip_reason is None
    assert len({r.job_id for r in by_id.values()}) == 4
    assert all(r.next_run_at == DUE + timedelta(days=1) and not r.catch_up for r in by_id.values())


def test_the_soonest_due_queues_its_job() -> None:
    earlier = DUE - timedelta(minutes=1)
    planned = plan([entry("s1", "a"), entry("s2", "a", earlier)], {}, {}, DUE)
    assert [(p.entry.id, p.record.skip_reason is None) for p in planned] == [
        ("s2", True),
        ("s1", False),
    ]


def test_jobs_running_or_unconfirmed_make_every_firing_an_overlap() -> None:
    active = {"a": {"j-run": "running"}}
    unconfirmed = {"b": ["j-queued"]}
    planned = plan([entry("s1", "a"), entry("s2", "b")], active, unconfirmed, DUE)
    reasons = {p.entry.id: p.record.skip_reason for p in planned}
    assert reasons == {
        "s1": "job j-run of this task is still running",
        "s2": "job j-queued of this task is still queued",
    }
    assert unconfirmed == {"b": ["j-queued"]}  # left as it was


def test_a_late_firing_is_a_catch_up_and_one_without_due_instant_is_left_out() -> None:
    planned = plan([entry("s1", "a"), entry("s2", "b", None)], {}, {}, DUE + timedelta(hours=3))
    assert [p.entry.id for p in planned] == ["s1"]
    assert planned[0].record.catch_up and planned[0].record.due_at == DUE


def test_the_cycle_collector_is_held_off_while_a_burst_fires_and_left_as_it_was() -> None:
    assert gc.isenabled()
    try:
        with _cycles_paused():
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()  # by someone else: left so
        with _cycles_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
