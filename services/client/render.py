"""What the command-line client prints (pure): tables of lists, an object field by field,
and the exit status a job's outcome gives."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# Exit statuses of the commands that wait for a job.
SUCCEEDED = 0
NOT_SUCCEEDED = 1  # failed, cancelled or skipped
TIMED_OUT = 3

COLUMNS: dict[str, tuple[str, ...]] = {
    "connectors": ("id", "name", "role", "location", "freshness_state"),
    "tasks": ("id", "name", "type", "source_id", "store_id", "freshness_state"),
    "schedules": ("id", "task_id", "recurrence", "enabled", "next_run_at", "last_run_at"),
    "jobs": ("id", "type", "status", "trigger", "queued_at", "finished_at", "snapshot_id"),
    "snapshots": ("id", "created_at", "tags", "size", "root"),
}


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    text = str(value)
    return text.replace("\n", " ").replace("\t", " ")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows under a header, each column as wide as its widest cell."""
    cells = [[c.upper() for c in columns], *([cell(r.get(c)) for c in columns] for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def fields(obj: dict[str, Any]) -> str:
    """An object a field a line."""
    width = max((len(k) for k in obj), default=0)
    return "\n".join(f"{k.ljust(width)}  {cell(v)}" for k, v in obj.items())


def outcome(job: dict[str, Any]) -> int:
    return SUCCEEDED if job.get("status") == "succeeded" else NOT_SUCCEEDED


def summary(job: dict[str, Any]) -> str:
    """One line on how a job ended."""
    parts = [f"job {job['id']} {job['status']}"]
    if job.get("snapshot_id"):
        parts.append(f"snapshot {job['snapshot_id']}")
    if job.get("error"):
        parts.append(str(job["error"]))
    return ": ".join(parts)
