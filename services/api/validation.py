"""Checks of what users send (pure): each problem is an `Invalid` naming its field, which
the api answers as a 422 (services/api/errors.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.durations import DurationError, format_duration, parse_duration
from shared.excludes import MAX_EXCLUDES, exclude_problem
from shared.freshness import MAX_WINDOW, MIN_WINDOW
from shared.groups import group_problem
from shared.labels import MAX_LABELS, label_problem
from shared.locations import Role
from shared.models import (
    MAX_RESTORE_PATH,
    RESTORE_PATH,
    SNAPSHOT_PATH,
    SNAPSHOT_REF,
    Connector,
    Recurrence,
    RestoreMode,
    Retention,
    RetryPolicy,
    ScheduleCreate,
    Task,
    TaskCreate,
    TaskType,
)
from shared.recurrence import MAX_INTERVAL, MIN_INTERVAL, interval_of
from shared.retention import MAX_COUNT, RULES
from shared.retries import MAX_ATTEMPTS, MAX_DELAY, MIN_DELAY
from shared.text import is_not_blank


class Invalid(ValueError):
    """A value that breaks a rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Slot:
    """A connector a task type takes: in which field, of which role, shown how."""

    field: str
    role: Role
    label: str


# What each task type does, and the connectors it takes (GET /rules serves them).
TASK_TYPES: dict[TaskType, tuple[str, tuple[Slot, ...]]] = {
    "backup": (
        "Back up a source to a store",
        (Slot("source_id", "source", "Source"), Slot("store_id", "store", "Store")),
    ),
    "restore": (
        "Restore a store's snapshot to a destination",
        (Slot("store_id", "store", "Store"), Slot("destination_id", "destination", "Destination")),
    ),
    "sync": (
        "Copy snapshots from one store to another",
        (Slot("store_id", "store", "From store"), Slot("target_store_id", "store", "To store")),
    ),
    "check": ("Verify the integrity of a store", (Slot("store_id", "store", "Store"),)),
    "prune": (
        "Delete a store's old snapshots by a retention policy",
        (Slot("store_id", "store", "Store"),),
    ),
}
SLOTS: dict[str, dict[str, Role]] = {
    kind: {slot.field: slot.role for slot in slots} for kind, (_, slots) in TASK_TYPES.items()
}
ALL_SLOTS = ("source_id", "store_id", "destination_id", "target_store_id")


def check_name(name: str, field: str = "name") -> str:
    """One line of 1 to 128 characters, not all blank; kept without the blanks around it."""
    if len(name) > 128 or not is_not_blank(name):
        raise Invalid(field, "name must be one line of 1 to 128 characters, not all blank")
    return name.strip()


def check_snapshot_id(value: str) -> str:
    """A full snapshot id or a prefix of one, lower-cased."""
    if not re.fullmatch(SNAPSHOT_REF, value):
        raise Invalid("snapshot_id", "snapshot_id must be 4 to 64 hexadecimal characters")
    return value.lower()


def check_snapshot_path(path: str) -> str:
    if not re.fullmatch(SNAPSHOT_PATH, path):
        raise Invalid("path", "path must be an absolute path inside the snapshot")
    return path


def check_restore_path(path: str) -> str:
    """An absolute path of names, none `.` or `..`; kept without a trailing `/`."""
    if len(path) > MAX_RESTORE_PATH or not re.fullmatch(RESTORE_PATH, path):
        raise Invalid(
            "restore_path",
            "restore_path must be an absolute path inside the snapshot, without . or .. "
            f"or empty names, of at most {MAX_RESTORE_PATH} characters",
        )
    return path.rstrip("/") or "/"


def _check_restore(body: TaskCreate) -> tuple[str | None, RestoreMode | None]:
    """A restore's path and mode (new_folder unless said); other types take neither."""
    if body.type != "restore":
        for field in ("restore_path", "restore_mode"):
            if getattr(body, field) is not None:
                raise Invalid(field, f"only a restore task takes a {field}")
        return None, None
    path = check_restore_path(body.restore_path) if body.restore_path is not None else None
    return path, body.restore_mode or "new_folder"


def _check_excludes(body: TaskCreate) -> list[str]:
    """A backup's excludes, each once; other types take none."""
    if body.type != "backup":
        if body.excludes:
            raise Invalid("excludes", "only a backup task takes excludes")
        return []
    return _each_once(body.excludes, "excludes", MAX_EXCLUDES, exclude_problem)


def _check_retention(body: TaskCreate) -> Retention | None:
    """A prune's retention, at least one count; other types take none."""
    if body.type != "prune":
        if body.retention is not None:
            raise Invalid("retention", "only a prune task takes a retention")
        return None
    counts = body.retention.counts() if body.retention else {}
    if not counts:
        keys = ", ".join(RULES)
        raise Invalid("retention", f"a prune task needs a retention with at least one of {keys}")
    for key, n in counts.items():
        if not 1 <= n <= MAX_COUNT:
            raise Invalid(f"retention.{key}", f"{key} must be between 1 and {MAX_COUNT}")
    return body.retention


# What decides which snapshots a prune deletes.
_PRUNE_SCOPE = ("store_id", "labels", "retention")


def check_confirmed(body: TaskCreate, current: Task | None = None) -> None:
    """A prune deletes snapshots: it is saved only when the operator confirms what its
    preview showed, and again when a change alters what it deletes (`body` validated)."""
    if body.type != "prune" or body.confirm:
        return
    if current is not None and all(getattr(body, f) == getattr(current, f) for f in _PRUNE_SCOPE):
        return
    raise Invalid(
        "confirm",
        "a prune deletes snapshots: look at what it would delete (POST /tasks/preview), "
        'then send "confirm": true',
    )


def _each_once(
    values: list[str], field: str, most: int, problem_of: Callable[[str], str | None]
) -> list[str]:
    """`values` (at most `most`), each checked, each kept once in order."""
    if len(values) > most:
        raise Invalid(field, f"a task takes at most {most} {field}")
    kept: list[str] = []
    for value in values:
        if problem := problem_of(value):
            raise Invalid(field, problem)
        if value not in kept:
            kept.append(value)
    return kept


def _duration_within(text: str, field: str, low: timedelta, high: timedelta, what: str) -> str:
    """A duration between `low` and `high`, in the compact form."""
    try:
        seconds = parse_duration(text)
    except DurationError as e:
        raise Invalid(field, str(e)) from e
    if not low.total_seconds() <= seconds <= high.total_seconds():
        raise Invalid(field, what)
    return format_duration(seconds)


def check_retry(policy: RetryPolicy | None) -> RetryPolicy | None:
    """A retry policy, its delay in the compact form."""
    if policy is None:
        return None
    if not 1 <= policy.attempts <= MAX_ATTEMPTS:
        raise Invalid("retry.attempts", f"attempts must be between 1 and {MAX_ATTEMPTS}")
    what = "a retry's delay must be between 1 minute and 1 day"
    delay = _duration_within(policy.delay, "retry.delay", MIN_DELAY, MAX_DELAY, what)
    return RetryPolicy(attempts=policy.attempts, delay=delay)


def check_freshness(value: str | None, field: str = "freshness") -> str | None:
    """A freshness window in the compact form; None (or blank): no rule."""
    if value is None or not value.strip():
        return None
    what = "a freshness window must be between 1 minute and 366 days"
    return _duration_within(value, field, MIN_WINDOW, MAX_WINDOW, what)


def check_task(body: TaskCreate, connectors: Mapping[str, Connector]) -> TaskCreate:
    """Validate a task against the connectors it names; returns it normalised."""
    slots = SLOTS[body.type]
    for field in ALL_SLOTS:
        value = getattr(body, field)
        if field not in slots:
            if value is not None:
                raise Invalid(field, f"a {body.type} task takes no {field}")
            continue
        if value is None:
            raise Invalid(field, f"a {body.type} task needs {field} (a {slots[field]} connector)")
        found = connectors.get(value)
        if found is None:
            raise Invalid(field, f"connector {value} does not exist")
        if found.role != slots[field]:
            raise Invalid(
                field, f"connector {found.name!r} is a {found.role}, not a {slots[field]}"
            )
    if body.type == "sync" and body.store_id == body.target_store_id:
        raise Invalid("target_store_id", "a sync needs two different stores")
    labels = _each_once(body.labels, "labels", MAX_LABELS, label_problem)
    snapshot_id = body.snapshot_id
    if snapshot_id is not None:
        if body.type != "restore":
            raise Invalid("snapshot_id", "only a restore task takes a snapshot_id")
        snapshot_id = check_snapshot_id(snapshot_id)
    restore_path, restore_mode = _check_restore(body)
    window = body.window
    if window is not None and window.strip() == "":
        window = None
    if window is not None:
        if body.type not in ("sync", "check"):
            raise Invalid("window", "only sync and check tasks take a window")
        try:
            window = format_duration(parse_duration(window))
        except DurationError as e:
            raise Invalid("window", str(e)) from e
    if body.concurrency is not None and not 1 <= body.concurrency <= 1024:
        raise Invalid("concurrency", "concurrency must be between 1 and 1024")
    name = check_name(body.name, "name") if body.name is not None else None
    runner_group = check_task_group(body, connectors)
    return TaskCreate(
        type=body.type,
        name=name,
        source_id=body.source_id,
        store_id=body.store_id,
        destination_id=body.destination_id,
        target_store_id=body.target_store_id,
        labels=labels,
        excludes=_check_excludes(body),
        snapshot_id=snapshot_id,
        restore_path=restore_path,
        restore_mode=restore_mode,
        window=window,
        concurrency=body.concurrency,
        runner_group=runner_group,
        retry=check_retry(body.retry),
        freshness=check_freshness(body.freshness),
        retention=_check_retention(body),
        confirm=body.confirm,
    )


def check_group(name: str | None, field: str = "runner_group") -> str | None:
    if name is not None and (problem := group_problem(name)):
        raise Invalid(field, problem)
    return name


def check_task_group(body: TaskCreate, connectors: Mapping[str, Connector]) -> str | None:
    """The runner group of a task's jobs. A connector that names a group (a source on
    one host's disk) can only be reached from there: the task runs there, and names that
    group or none (it then takes the connector's). Connectors naming no group (a store
    on S3, say) go with any group."""
    group = check_group(body.runner_group)
    for field in ALL_SLOTS:
        found = connectors.get(getattr(body, field) or "")
        if found is None or found.runner_group is None or found.runner_group == group:
            continue
        if group is None:
            group = found.runner_group
            continue
        where = "the task's" if body.runner_group is not None else "its other connectors'"
        raise Invalid(
            "runner_group" if body.runner_group is not None else field,
            f"connector {found.name!r} is served by runner group {found.runner_group}, "
            f"not {where} group {group}",
        )
    return group


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as validated, ready to store."""

    recurrence: Recurrence
    interval_minutes: int
    start_at: datetime | None
    journalised: bool
    enabled: bool


def _check_interval(body: ScheduleCreate, prefix: str) -> int:
    """The interval in minutes; a custom interval is given in days, hours, minutes."""
    field = f"{prefix}interval"
    if body.recurrence != "custom":
        if body.interval is not None:
            raise Invalid(field, f"interval is only for a custom recurrence, not {body.recurrence}")
        return int(interval_of(body.recurrence) / MIN_INTERVAL)
    if body.interval is None:
        raise Invalid(field, "a custom recurrence needs an interval: {days, hours, minutes}")
    for part in ("days", "hours", "minutes"):
        if getattr(body.interval, part) < 0:
            raise Invalid(f"{field}.{part}", f"{part} cannot be negative")
    i = body.interval
    # In whole minutes, as integers: a huge value is refused, never overflows.
    total = (i.days * 24 + i.hours) * 60 + i.minutes
    if total < 1:
        raise Invalid(field, "the interval must be at least 1 minute")
    if total > MAX_INTERVAL // MIN_INTERVAL:
        raise Invalid(field, f"the interval must be at most {MAX_INTERVAL.days} days")
    return total


def _check_start(start_at: datetime | None, field: str) -> datetime | None:
    """A UTC instant to the minute."""
    if start_at is None:
        return None
    if start_at.utcoffset() != timedelta(0):
        raise Invalid(field, "start_at must be in UTC (end it with Z or +00:00)")
    if start_at.second or start_at.microsecond:
        raise Invalid(field, "start_at must be to the minute, with no seconds")
    return start_at.replace(tzinfo=UTC)


def check_schedule(body: ScheduleCreate, prefix: str = "") -> ScheduleSpec:
    """Validate a schedule; field names in errors start with `prefix`."""
    return ScheduleSpec(
        recurrence=body.recurrence,
        interval_minutes=_check_interval(body, prefix),
        start_at=_check_start(body.start_at, f"{prefix}start_at"),
        journalised=body.journalised,
        enabled=body.enabled,
    )


# Job history filters. An RFC 3339 date-time with its offset (leap seconds aside: no
# clock of ours stamps one).
RFC3339 = r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$"


def check_instant(value: str, field: str) -> datetime:
    """An RFC 3339 date-time, as an instant in UTC."""
    if not re.fullmatch(RFC3339, value):
        raise Invalid(field, f"{field} must be an RFC 3339 date-time, e.g. 2025-01-31T00:00:00Z")
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(field, f"{field} is not a date and time that exists") from None


def check_period(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The jobs queued from `since` (included) to `until` (excluded), either open."""
    start = check_instant(since, "since") if since is not None else None
    end = check_instant(until, "until") if until is not None else None
    if start is not None and end is not None and end <= start:
        raise Invalid("until", "until must be after since")
    return start, end
