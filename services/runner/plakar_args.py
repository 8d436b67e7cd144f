"""Building plakar's argument lists and configuration files (pure).

plakar is always run as an argument list, never through a shell. Connectors are
referred to by name (`@store`, `@source`, ...) from a per-job configuration
directory, so their secrets live only in those 0600 files and never in argv.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.locations import within
from shared.models import Connector, RestorePoint, Retention, Task
from shared.retention import retention_flags

STORE = "store"
TARGET = "target"
SOURCE = "source"
DESTINATION = "destination"


@dataclass(frozen=True)
class Workspace:
    config_dir: Path
    cache_dir: Path


@dataclass(frozen=True)
class ConnectorSet:
    """The connectors a task uses, resolved from their ids."""

    store: Connector
    source: Connector | None = None
    destination: Connector | None = None
    target: Connector | None = None


def _entry(c: Connector) -> dict[str, str]:
    return {"location": c.location, **c.options}


def config_files(connectors: ConnectorSet) -> dict[str, str]:
    """The content of stores.yml, sources.yml and destinations.yml (JSON is valid YAML)."""
    stores = {STORE: _entry(connectors.store)}
    if connectors.target:
        stores[TARGET] = _entry(connectors.target)
    sources = {SOURCE: _entry(connectors.source)} if connectors.source else {}
    dests = {DESTINATION: _entry(connectors.destination)} if connectors.destination else {}
    return {
        "stores.yml": json.dumps({"version": "v1.0.0", "stores": stores}),
        "sources.yml": json.dumps({"version": "v1.0.0", "sources": sources}),
        "destinations.yml": json.dumps({"version": "v1.0.0", "destinations": dests}),
    }


def base_argv(plakar: str, ws: Workspace, concurrency: int | None = None) -> list[str]:
    argv = [plakar, "-configdir", str(ws.config_dir), "-cachedir", str(ws.cache_dir)]
    if concurrency is not None:
        argv += ["-concurrency", str(concurrency)]
    return argv


def _trace_closing(subsystem: str) -> list[str]:
    """plakar then prints each snapshot's full id as it closes it (plakar_output.py): no
    second opening of the store to learn it."""
    return ["-trace", subsystem]


def _filters(labels: Sequence[str], window: str | None) -> list[str]:
    args: list[str] = []
    if window:
        args += ["-since", window]
    if labels:
        args += ["-tag", ",".join(labels)]
    return args


def backup_argv(
    plakar: str,
    ws: Workspace,
    task: Task,
    concurrency: int,
    job: str,
    ignore: Sequence[str] = (),
) -> list[str]:
    """`ignore`: gitignore patterns of what to leave out."""
    args = [
        *base_argv(plakar, ws, concurrency),
        *_trace_closing("snapshotBuilder"),
        "at",
        f"@{STORE}",
        "backup",
        "-job",
        job,
    ]
    if task.labels:
        # plakar takes the tags once, comma-separated.
        args += ["-tag", ",".join(task.labels)]
    for pattern in ignore:
        args += ["-ignore", pattern]
    return [*args, f"@{SOURCE}"]


class RestoreOutside(ValueError):
    """A restore path that is not in the snapshot."""


@dataclass(frozen=True)
class RestorePlan:
    """What plakar restores (`SNAPSHOT[:PATH]`) and the directory it writes it into."""

    what: str
    target: str


def restore_folder(snapshot_id: str, due_at: datetime, job_id: str) -> str:
    """The new folder a restore writes into, named after the snapshot (while plakar has
    not said which it restores: without it), the time the job was due (UTC, to the
    second) and the job: no two jobs share one, and a retried attempt of a job goes on in
    its own."""
    when = due_at.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    return "-".join(p for p in ("restore", snapshot_id[:8], when, job_id[:8]) if p)


def restore_source(root: str, path: str | None) -> str:
    """The path restored, in a snapshot whose files are under `root`: the root when none
    is given, or one above it (all the snapshot holds there is the root)."""
    path = path or root
    if within(root, path):
        return root
    if not within(path, root):
        raise RestoreOutside(f"{path} is not in the snapshot, whose files are under {root}")
    return path


def restore_plan(
    snapshot_id: str, point: RestorePoint, path: str, destination: str, folder: str | None
) -> RestorePlan:
    """Where `path` (from restore_source) goes: files keep their place below the
    snapshot's root, under the destination or under `folder` in it. plakar writes a
    directory's content into its -to directory, a file into its -to directory."""
    below = path.removeprefix(point.root.rstrip("/")).strip("/")
    if point.kind == "file":
        below = posixpath.dirname(below)
    target = posixpath.join(destination, folder or "", below).rstrip("/") or "/"
    what = snapshot_id if path == point.root else f"{snapshot_id}:{path}"
    return RestorePlan(what=what, target=target)


_FULL_ID = re.compile(r"[0-9a-fA-F]{64}")


def plakar_finds_it(task: Task) -> bool:
    """A restore of a whole snapshot that plakar finds by itself, in its one opening of
    the store: one named by its full id, or the latest one (carrying the task's label when
    it has one: plakar's `-tag` takes a single tag, where a task's labels must all be
    carried). Its output tells which snapshot it restored."""
    if task.restore_path:
        return False
    if task.snapshot_id:
        return bool(_FULL_ID.fullmatch(task.snapshot_id))
    return len(task.labels) <= 1


def restore_argv(
    plakar: str,
    ws: Workspace,
    concurrency: int,
    plan: RestorePlan,
    trace: bool = False,
    labels: Sequence[str] = (),
) -> list[str]:
    """`trace`: plakar prints the full id of the snapshot it restored (plakar_output.py).
    A plan without `what` restores the latest snapshot carrying `labels` (one at most)."""
    return [
        *base_argv(plakar, ws, concurrency),
        *(_trace_closing("snapshot") if trace else []),
        "at",
        f"@{STORE}",
        "restore",
        *([] if plan.what else _filters(labels, None)),
        "-to",
        # `@name:PATH`: the destination connector, written at PATH instead of its location.
        f"@{DESTINATION}:{plan.target}",
        *([plan.what] if plan.what else []),
    ]


def sync_argv(
    plakar: str, ws: Workspace, task: Task, concurrency: int, window: str | None
) -> list[str]:
    return [
        *base_argv(plakar, ws, concurrency),
        "at",
        f"@{STORE}",
        "sync",
        *_filters(task.labels, window),
        "to",
        f"@{TARGET}",
    ]


def check_argv(
    plakar: str, ws: Workspace, task: Task, concurrency: int, window: str | None
) -> list[str]:
    return [
        *base_argv(plakar, ws, concurrency),
        *_trace_closing("snapshot"),
        "at",
        f"@{STORE}",
        "check",
        *_filters(task.labels, window),
    ]


def prune_plan_argv(
    plakar: str,
    ws: Workspace,
    labels: Sequence[str],
    retention: Retention,
    concurrency: int | None = None,
) -> list[str]:
    """plakar's dry run of a prune (it deletes nothing without -apply), printing the full
    id of each snapshot it reads (prune_plan.py)."""
    return [
        *base_argv(plakar, ws, concurrency),
        *_trace_closing("snapshot"),
        "at",
        f"@{STORE}",
        "prune",
        *_filters(labels, None),
        *retention_flags(retention.counts()),
    ]


def remove_argv(plakar: str, ws: Workspace, snapshot_ids: Sequence[str]) -> list[str]:
    """Delete exactly these snapshots (full ids: a prefix could name more than one)."""
    return [*base_argv(plakar, ws), "at", f"@{STORE}", "rm", "-apply", *snapshot_ids]


def list_snapshots_argv(
    plakar: str, ws: Workspace, labels: Sequence[str] = (), window: str | None = None
) -> list[str]:
    return [
        *base_argv(plakar, ws),
        "at",
        f"@{STORE}",
        "ls",
        "-uuid",
        "-tags",
        *_filters(labels, window),
    ]


def cat_argv(plakar: str, ws: Workspace, snapshot: str, path: str) -> list[str]:
    """The file's bytes on stdout, as stored (no decompression, no highlighting)."""
    return [*base_argv(plakar, ws), "at", f"@{STORE}", "cat", f"{snapshot}:{path}"]


def browse_argv(plakar: str, ws: Workspace, snapshot: str, path: str) -> list[str]:
    return [*base_argv(plakar, ws), "at", f"@{STORE}", "ls", f"{snapshot}:{path}"]


def store_info_argv(plakar: str, ws: Workspace) -> list[str]:
    return [*base_argv(plakar, ws), "at", f"@{STORE}", "info"]


def create_argv(plakar: str, ws: Workspace, encrypted: bool) -> list[str]:
    args = [*base_argv(plakar, ws), "at", f"@{STORE}", "create"]
    return args if encrypted else [*args, "-plaintext"]


def ping_argv(plakar: str, ws: Workspace, role: str) -> list[str]:
    name = {"store": STORE, "source": SOURCE, "destination": DESTINATION}[role]
    return [*base_argv(plakar, ws), role, "ping", name]


def disable_security_check_argv(plakar: str, ws: Workspace) -> list[str]:
    return [*base_argv(plakar, ws), "-disable-security-check"]
