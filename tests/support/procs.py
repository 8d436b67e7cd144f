"""Looking for live processes by their arguments (for 'no plakar left behind' checks)."""

from __future__ import annotations

from pathlib import Path


def processes(*needles: str) -> list[int]:
    """Live processes whose argument list holds every needle as one whole argument.

    A child caught between fork and exec still shows its parent's arguments (plakar
    starting its cache daemon, say): a match whose parent matches too is not counted."""
    found: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, parent = stat[0], int(stat[1])
        if state != "Z" and all(n.encode() in args for n in needles):
            found[int(proc.name)] = parent
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


def argv(pid: int) -> list[str]:
    """A process's arguments; none once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
