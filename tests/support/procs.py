"""Looking for live processes by their arguments (for 'no plakar left behind' checks)."""

from __future__ import annotations

from pathlib import Path


def processes(*needles: str) -> list[int]:
    """Live processes whose argument list holds every needle as one whole argument."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and all(n.encode() in args for n in needles):
            found.append(int(proc.name))
    return found
