"""A job's progress from plakar's lines (pure, but for stat calls on local sources)."""

from __future__ import annotations

import os
import stat
import time

from services.runner.plakar_output import OutputState
from shared.models import Progress

PRESCAN_BUDGET_S = 2.0


def local_path(location: str) -> str | None:
    if location.startswith("fs://"):
        return location[len("fs://") :]
    return location if location.startswith("/") else None


def prescan(root: str, budget_s: float = PRESCAN_BUDGET_S) -> int | None:
    """Total bytes of regular files under root, or None if it takes too long."""
    deadline = time.monotonic() + budget_s
    total = 0
    stack = [root]
    while stack:
        if time.monotonic() > deadline:
            return None
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


class ProgressTracker:
    """Counts items plakar reported; for a local backup source, also bytes and percent."""

    def __init__(self) -> None:
        self._root: str | None = None
        self._total_bytes: int | None = None
        self._bytes = 0
        self._files = 0
        self._seen_tail: str | None = None
        # Bytes the run wrote to the store, once plakar's result line tells.
        self.bytes_added: int | None = None

    def watch_source(self, location: str) -> None:
        self._root = local_path(location)

    def measure_source(self) -> None:
        """The source's size, for `percent` (a thread may run it beside plakar's backup:
        until it is known, no percent)."""
        if self._root:
            self._total_bytes = prescan(self._root)

    def feed(self, out: OutputState) -> None:
        self._files = out.ok_items
        if out.bytes_out is not None:
            self.bytes_added = out.bytes_out
        path = out.ok_paths_tail
        if path is None or path == self._seen_tail or self._root is None:
            return
        self._seen_tail = path
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISREG(st.st_mode):
            self._bytes += st.st_size

    def current(self) -> Progress:
        percent = None
        if self._total_bytes:
            percent = round(min(99.9, 100.0 * self._bytes / self._total_bytes), 1)
        return Progress(percent=percent, files=self._files, bytes=self._bytes)

    def final(self, succeeded: bool) -> Progress:
        p = self.current()
        if succeeded:
            p.percent = 100.0
        return p
