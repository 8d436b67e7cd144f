"""Looking for live processes by their arguments (for 'no plakar left behind' checks)."""

from __future__ import annotations

import os
from pathlib import Path


def processes(*needles: str, under: int | None = None) -> list[int]:
    """Live processes whose argument list holds every needle as one whole argument; only
    the descendants of `under` if given.

    A child caught between fork and exec still shows its parent's arguments (plakar
    starting its cache daemon, say): a match whose parent matches too is not counted.
    Tests sample this every few milliseconds while jobs run: a process's state is read
    only once its arguments match, and a stack's processes are looked for among its own
    (a few reads, where all of /proc is hundreds on a busy machine)."""
    wanted = [n.encode() for n in needles]
    found: dict[int, int] = {}
    names = [str(p) for p in descendants(under)] if under else os.listdir("/proc")
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                raw = f.read()
            args = raw.split(b"\0")
            if not all(n in args for n in wanted):
                continue
            with open(f"/proc/{name}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if stat[0] != "Z":
            found[int(name)] = int(stat[1])
    return [pid for pid, parent in found.items() if parent not in found]


def children(pid: int) -> list[int]:
    """The live children of a process, as the kernel lists them for each of its threads:
    a few reads, where a look through all of /proc costs milliseconds on a busy machine."""
    found = []
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for thread in threads:
        try:
            found += [int(c) for c in (thread / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """A process's children, theirs, and so on."""
    found, todo = [], [pid]
    while todo:
        more = children(todo.pop())
        found += more
        todo += more
    return found


def argv(pid: int) -> list[str]:
    """A process's arguments; none once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
