"""A backup's excludes: gitignore patterns that plakar leaves out (`-ignore`), matched
against each file's absolute path on the source's host (pure)."""

from __future__ import annotations

import re

from shared.text import CONTROL

# Patterns per task, characters per pattern.
MAX_EXCLUDES = 100
MAX_EXCLUDE = 256

# Not blank, not a comment, no blank at either end (gitignore drops trailing blanks, and
# a leading one is part of the name: both would surprise). For the OpenAPI document.
EXCLUDE_PATTERN = rf"^[^#\s{CONTROL}](?:[^{CONTROL}]*[^\s{CONTROL}])?$"


def exclude_problem(pattern: str) -> str | None:
    """Why a pattern is not acceptable, or None."""
    if not 1 <= len(pattern) <= MAX_EXCLUDE:
        return f"exclude {pattern[:40]!r} must have 1 to {MAX_EXCLUDE} characters"
    if not re.fullmatch(EXCLUDE_PATTERN, pattern):
        return (
            f"exclude {pattern!r} must be one gitignore pattern: no control character, "
            "no blank at either end, not a comment (#)"
        )
    if not pattern.strip("!/"):
        return f"exclude {pattern!r} names nothing"
    return _glob_problem(pattern)


def _glob_problem(pattern: str) -> str | None:
    """plakar matches each part of a path with Go's filepath.Match, for which a set of
    characters must be closed and a backslash must escape something: a pattern breaking
    either would silently match nothing."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            if i + 1 == len(pattern):
                return f"exclude {pattern!r} ends with a backslash that escapes nothing"
            i += 2
        elif pattern[i] == "[":
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            start = j
            while j < len(pattern) and pattern[j] not in "]/":
                j += 2 if pattern[j] == "\\" else 1
            if j >= len(pattern) or pattern[j] != "]" or j == start:
                return f"exclude {pattern!r} has a [ that no ] closes in the same name"
            i = j + 1
        else:
            i += 1
    return None
