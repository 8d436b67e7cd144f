"""What a restore restores, learnt from the store: the snapshot (its full id), its root,
and whether the path restored is a folder or a file (plakar writes a folder's content
into its target directory, a file itself). plakar's `ls` answers one of these per run,
so learning them takes two openings of the store.

A task that names a snapshot learns them once, when it is saved (a snapshot never
changes): its jobs then only restore. A job whose task names none (the latest snapshot
changes) learns them before it restores."""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from services.runner import plakar_args as pa
from services.runner.plakar_output import parse_dir, parse_ls
from services.runner.process import failure
from services.runner.selection import SelectionError, select_restore_snapshot
from shared.models import RestorePoint

# Runs plakar: its exit code and lines (secrets masked).
Run = Callable[[list[str]], Awaitable[tuple[int, list[str]]]]


class Unresolved(Exception):
    """No snapshot (or several) matches, or the snapshot does not hold the path."""

    def __init__(self, field: Literal["snapshot_id", "restore_path"], message: str) -> None:
        super().__init__(message)
        self.field = field


class StoreUnreadable(Exception):
    pass


@dataclass(frozen=True)
class Located:
    snapshot_id: str
    # The path restored: the root when the task names none or one above it.
    path: str
    point: RestorePoint


async def locate(
    run: Run,
    plakar: str,
    ws: pa.Workspace,
    wanted: str | None,
    labels: Sequence[str],
    path: str | None,
) -> Located:
    """The snapshot `wanted` names (else the latest carrying all `labels`) and what it
    holds at `path`."""
    code, lines = await run(pa.list_snapshots_argv(plakar, ws, [] if wanted else labels))
    if code != 0:
        raise StoreUnreadable(f"could not list the store's snapshots: {failure(code, lines)}")
    try:
        chosen = select_restore_snapshot(parse_ls(lines), wanted, labels)
    except SelectionError as e:
        raise Unresolved("snapshot_id", str(e)) from None
    try:
        source = pa.restore_source(chosen.root, path)
    except pa.RestoreOutside as e:
        raise Unresolved("restore_path", str(e)) from None
    kind = "directory" if source == chosen.root else await _kind(run, plakar, ws, chosen.id, source)
    return Located(chosen.id, source, RestorePoint(root=chosen.root, kind=kind))


async def _kind(
    run: Run, plakar: str, ws: pa.Workspace, snapshot_id: str, path: str
) -> Literal["directory", "file"]:
    """As the path's parent lists it: listing a file and a directory holding only a
    file of its name look alike."""
    parent, name = posixpath.split(path)
    code, lines = await run(pa.browse_argv(plakar, ws, snapshot_id, parent))
    found = [e for e in parse_dir(lines) if e.name == name] if code == 0 else []
    if not found:
        raise Unresolved("restore_path", f"{path} is not in snapshot {snapshot_id[:8]}")
    return "directory" if found[0].kind == "directory" else "file"
