"""Labels: tags on snapshots (pure)."""

from __future__ import annotations

import re

from shared.text import CONTROL

_BAD = re.compile(rf"[\s,{CONTROL}]")
# Labels per task: plakar takes them as one comma-separated argument, so their number
# must keep it far below what the kernel allows an argument (128 KiB).
MAX_LABELS = 32


# The same rule as a regular expression, for the OpenAPI document.
LABEL_PATTERN = rf"^[^\s,!{CONTROL}][^\s,{CONTROL}]*$"


def label_problem(label: str) -> str | None:
    """Why a label is not acceptable, or None."""
    if not 1 <= len(label) <= 64:
        return f"label {label!r} must have 1 to 64 characters"
    if _BAD.search(label):
        return f"label {label!r} must not contain whitespace, control characters or commas"
    if label.startswith("!"):
        return f"label {label!r} must not start with '!'"
    return None
