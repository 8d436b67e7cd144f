"""Runner groups ("run on"): a task's jobs and a connector's actions are served only by
the runners of its group (pure).

A group is a name; runners start in one (`plakar-cp runner --group NAME`), tasks and
connectors may name one (null: the default group). Names are NATS subject tokens and
parts of consumer names, hence the narrow rule.
"""

from __future__ import annotations

import re

DEFAULT_GROUP = "default"
GROUP_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
GROUP_RULE = "1 to 32 lower-case letters, digits, - or _, starting with a letter or a digit"


def group_problem(name: str) -> str | None:
    """Why `name` is not a group name; None when it is one."""
    if re.fullmatch(GROUP_PATTERN, name):
        return None
    return f"a runner group is {GROUP_RULE}"


def group_of(name: str | None) -> str:
    """The group that serves a task or a connector naming `name` (null: the default)."""
    return name or DEFAULT_GROUP
