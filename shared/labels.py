"""Labels: tags on snapshots (pure)."""

from __future__ import annotations

import re

_BAD = re.compile(r"[\s,]")
# Labels per task: plakar takes them as one comma-separated argument, so their number
# must keep it far below what the kernel allows an argument (128 KiB).
MAX_LABELS = 32


def label_problem(label: str) -> str | None:
    """Why a label is not acceptable, or None."""
    if not 1 <= len(label) <= 64:
        return f"label {label!r} must have 1 to 64 characters"
    if _BAD.search(label):
        return f"label {label!r} must not contain whitespace or commas"
    if label.startswith("!"):
        return f"label {label!r} must not start with '!'"
    return None
