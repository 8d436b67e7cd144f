"""Prune: reading plakar's plan and removals, the retention rules, the confirmation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.api.validation import Invalid, check_confirmed, check_task
from services.runner import plakar_args as pa
from services.runner.prune_plan import PlanReader, PlanUnreadable, RemovalReader
from shared.models import Connector, Retention, Task, TaskCreate
from shared.retention import MAX_COUNT

K1 = "164bacb0271e7d80901be3ca266e7ed1887b9756e792b2bef042f73e40d0dae9"
D1 = "815111dcf2dfff2b1923fb8a2fb154f82cc16be0ac9f4e91aac092fcc12803ad"
D2 = "4f8a8c9aa8bdd2951c474104520c2920a3fbc47ad003be80409154635ac28460"
OTHER = "8e0df667e2e8ae1bd2c787cdde9c1c7c24adbe40b1518fc9ac403de2ba70aa44"


def closing(full: str) -> list[str]:
    """What `-trace snapshot` prints as plakar reads one snapshot."""
    return [
        f"trace: snapshot: repository.GetSnapshot({full})",
        f"trace: snapshot: {full[:8]}: Load()",
        f"trace: snapshot: {full}: Close(): {full[:8]}",
    ]


# What plakar v1.1.4 printed here for `prune -tag x -per-day 1` (paths shortened).
PLAN = [
    *closing(K1),
    *closing(D2),
    *closing(D1),
    *closing(OTHER),  # read, but its labels do not match: in neither list
    "prune: would keep 1 and delete 2 snapshot(s), run with -apply to proceed",
    "keep     2026-12-02T02:55:31Z   164bacb0      18 B /tmp/pr/src tags=x  "
    "match=day:2026-12-02 rank=1 cap=1",
    "delete   2026-12-02T02:55:31Z   815111dc      16 B /tmp/pr/src tags=x  "
    "match=day:2026-12-02 rank=2 cap=1",
    "delete   2026-12-02T02:55:22Z   4f8a8c9a      14 B /tmp/pr/src tags=x  "
    "match=day:2026-12-02 rank=3 cap=1",
]


def read(lines: list[str]) -> PlanReader:
    reader = PlanReader()
    for line in lines:
        reader.feed(line)
    return reader


def test_a_plan_is_read_with_full_ids_newest_first() -> None:
    plan = read(PLAN).plan()
    assert plan.keep == [K1]
    assert plan.delete == [D1, D2]


def test_an_empty_store_plans_nothing() -> None:
    plan = read(["prune: would keep 0 and delete 0 snapshot(s), run with -apply"]).plan()
    assert plan.keep == plan.delete == []


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ([], "no prune plan"),
        # plakar could not read a snapshot it would delete: it counts it, lists it not.
        (PLAN[:-1], "listed 1 and 1"),
        ([line for line in PLAN if D2 not in line], "4f8a8c9a of the plan has no full id"),
        # Two snapshots of the store share a short id: which one is meant cannot be told.
        (
            [*PLAN, *closing(D2[:8] + "0" * 56)],
            "4f8a8c9a of the plan has 2 snapshots",
        ),
    ],
)
def test_a_plan_in_doubt_deletes_nothing(lines: list[str], why: str) -> None:
    with pytest.raises(PlanUnreadable, match=why):
        read(lines).plan()


def test_a_path_that_looks_like_a_plan_line_before_the_plan_is_not_one() -> None:
    # Before the header nothing is an entry, whatever it looks like.
    lines = ["delete   2026-12-02T02:55:31Z   164bacb0  x", *PLAN]
    assert read(lines).plan().delete == [D1, D2]


def test_only_removals_plakar_confirmed_count() -> None:
    removal = RemovalReader()
    for line in [
        "info: rm: removal of 815111dc completed successfully",
        "error: something about 4f8a8c9a",
    ]:
        removal.feed(line)
    assert removal.confirmed([D1, D2]) == [D1]


def test_the_argument_lists() -> None:
    ws = pa.Workspace(config_dir=Path("/c"), cache_dir=Path("/k"))
    argv = pa.prune_plan_argv("plakar", ws, ["a", "b"], Retention(per_day=7, days=3))
    assert argv[-7:] == ["prune", "-tag", "a,b", "-days", "3", "-per-day", "7"]
    assert argv[5:7] == ["-trace", "snapshot"] and "-apply" not in argv
    assert pa.remove_argv("plakar", ws, [D1])[-3:] == ["rm", "-apply", D1]


STORE = Connector(
    id="00000000-0000-4000-8000-000000000001",
    name="s",
    role="store",
    location="/s",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def prune(**fields: object) -> TaskCreate:
    return TaskCreate(type="prune", store_id=STORE.id, **fields)  # type: ignore[arg-type]


def test_a_prune_needs_a_retention_and_only_a_prune_takes_one() -> None:
    for body, field in [
        (prune(), "retention"),
        (prune(retention=Retention()), "retention"),
        (prune(retention=Retention(per_day=0)), "retention.per_day"),
        (prune(retention=Retention(days=MAX_COUNT + 1)), "retention.days"),
        (prune(retention=Retention(days=1), excludes=["x"]), "excludes"),
        (prune(retention=Retention(days=1), window="1d"), "window"),
        (
            TaskCreate(type="check", store_id=STORE.id, retention=Retention(days=1)),
            "retention",
        ),
    ]:
        with pytest.raises(Invalid) as e:
            check_task(body, {STORE.id: STORE})
        assert e.value.field == field
    kept = check_task(prune(retention=Retention(per_week=4), labels=["a", "a"]), {STORE.id: STORE})
    assert kept.retention == Retention(per_week=4) and kept.labels == ["a"]


def test_a_prune_is_saved_only_once_confirmed_and_again_when_its_scope_changes() -> None:
    body = check_task(prune(retention=Retention(days=7)), {STORE.id: STORE})
    with pytest.raises(Invalid) as e:
        check_confirmed(body)
    assert e.value.field == "confirm"
    check_confirmed(check_task(prune(retention=Retention(days=7), confirm=True), {STORE.id: STORE}))
    saved = Task(
        id="t",
        type="prune",
        store_id=STORE.id,
        retention=Retention(days=7),
        created_at=STORE.created_at,
    )
    check_confirmed(
        check_task(prune(retention=Retention(days=7), name="n"), {STORE.id: STORE}), saved
    )
    for changed in (
        prune(retention=Retention(days=6)),
        prune(retention=Retention(days=7), labels=["x"]),
    ):
        with pytest.raises(Invalid):
            check_confirmed(check_task(changed, {STORE.id: STORE}), saved)
