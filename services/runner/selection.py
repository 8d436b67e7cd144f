"""Which snapshot a restore restores (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from services.runner.plakar_output import SnapshotEntry


class SelectionError(Exception):
    pass


def select_restore_snapshot(
    snapshots: Sequence[SnapshotEntry], wanted: str | None, labels: Sequence[str]
) -> SnapshotEntry:
    """The snapshot named by `wanted` (full id or unique prefix); without it, the
    latest carrying all `labels` (the latest of all when there are none).
    `snapshots` come newest first, as plakar lists them."""
    if wanted:
        matches = [s for s in snapshots if s.id.startswith(wanted.lower())]
        if not matches:
            raise SelectionError(f"no snapshot matches {wanted}")
        if len({s.id for s in matches}) > 1:
            raise SelectionError(f"{wanted} matches {len(matches)} snapshots; give more of the id")
        return matches[0]
    candidates = [s for s in snapshots if set(labels) <= set(s.tags)]
    if not candidates:
        which = f" carrying {', '.join(labels)}" if labels else ""
        raise SelectionError(f"no snapshot{which} to restore")
    return candidates[0]
