"""Checks of what users send (pure): each problem names its field."""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.api.errors import bad
from shared.durations import DurationError, format_duration, parse_duration
from shared.labels import MAX_LABELS, label_problem
from shared.models import Connector, TaskCreate

_HEX = re.compile(r"^[0-9a-f]{4,64}$")

# Which connector each task type takes, in which field, with which role.
SLOTS: dict[str, dict[str, str]] = {
    "backup": {"source_id": "source", "store_id": "store"},
    "restore": {"store_id": "store", "destination_id": "destination"},
    "sync": {"store_id": "store", "target_store_id": "store"},
    "check": {"store_id": "store"},
}
ALL_SLOTS = ("source_id", "store_id", "destination_id", "target_store_id")


def check_name(name: str, field: str = "name") -> str:
    name = name.strip()
    if not name or len(name) > 128:
        raise bad(field, "name must have 1 to 128 characters")
    return name


def check_snapshot_id(value: str) -> str:
    """A full snapshot id or a prefix of one, lower-cased."""
    sid = value.strip().lower()
    if not _HEX.match(sid):
        raise bad("snapshot_id", "snapshot_id must be 4 to 64 hexadecimal characters")
    return sid


def check_snapshot_path(path: str) -> str:
    if not path.startswith("/") or "\n" in path or "\x00" in path:
        raise bad("path", "path must be an absolute path inside the snapshot")
    return path


def check_task(body: TaskCreate, connectors: Mapping[str, Connector]) -> TaskCreate:
    """Validate a task against the connectors it names; returns it normalised."""
    slots = SLOTS[body.type]
    for field in ALL_SLOTS:
        value = getattr(body, field)
        if field not in slots:
            if value is not None:
                raise bad(field, f"a {body.type} task takes no {field}")
            continue
        if value is None:
            raise bad(field, f"a {body.type} task needs {field} (a {slots[field]} connector)")
        found = connectors.get(value)
        if found is None:
            raise bad(field, f"connector {value} does not exist")
        if found.role != slots[field]:
            raise bad(field, f"connector {found.name!r} is a {found.role}, not a {slots[field]}")
    if body.type == "sync" and body.store_id == body.target_store_id:
        raise bad("target_store_id", "a sync needs two different stores")
    if len(body.labels) > MAX_LABELS:
        raise bad("labels", f"a task takes at most {MAX_LABELS} labels")
    labels: list[str] = []
    for label in body.labels:
        if problem := label_problem(label):
            raise bad("labels", problem)
        if label not in labels:
            labels.append(label)
    snapshot_id = body.snapshot_id
    if snapshot_id is not None:
        if body.type != "restore":
            raise bad("snapshot_id", "only a restore task takes a snapshot_id")
        snapshot_id = check_snapshot_id(snapshot_id)
    window = body.window
    if window is not None and window.strip() == "":
        window = None
    if window is not None:
        if body.type not in ("sync", "check"):
            raise bad("window", "only sync and check tasks take a window")
        try:
            window = format_duration(parse_duration(window))
        except DurationError as e:
            raise bad("window", str(e)) from e
    if body.concurrency is not None and not 1 <= body.concurrency <= 1024:
        raise bad("concurrency", "concurrency must be between 1 and 1024")
    name = check_name(body.name, "name") if body.name is not None else None
    return TaskCreate(
        type=body.type,
        name=name,
        source_id=body.source_id,
        store_id=body.store_id,
        destination_id=body.destination_id,
        target_store_id=body.target_store_id,
        labels=labels,
        snapshot_id=snapshot_id,
        window=window,
        concurrency=body.concurrency,
    )
