"""What the command-line client prints, and the exit status a job's outcome gives."""

from __future__ import annotations

from typing import Any

from services.client import render


def test_a_table_lines_up_its_columns_and_shows_empty_cells() -> None:
    rows: list[dict[str, Any]] = [
        {"id": "a", "status": "succeeded", "labels": ["x", "y"]},
        {"id": "bbbb", "status": None, "labels": [], "other": "not shown"},
    ]
    assert render.table(rows, ("id", "status", "labels")).splitlines() == [
        "ID    STATUS     LABELS",
        "a     succeeded  x,y",
        "bbbb  -          -",
    ]


def test_a_cell_stays_on_its_line() -> None:
    assert render.cell("two\nlines\there") == "two lines here"
    assert render.cell({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'


def test_only_a_success_exits_zero() -> None:
    assert render.outcome({"status": "succeeded"}) == render.SUCCEEDED == 0
    for status in ("failed", "cancelled", "skipped"):
        assert render.outcome({"status": status}) == render.NOT_SUCCEEDED == 1


def test_the_summary_names_the_snapshot_or_the_error() -> None:
    ok = {"id": "j1", "status": "succeeded", "snapshot_id": "abc"}
    assert render.summary(ok) == "job j1 succeeded: snapshot abc"
    bad = {"id": "j2", "status": "failed", "error": "store locked"}
    assert render.summary(bad) == "job j2 failed: store locked"
