"""Reading what plakar v1.1.4's `prune` and `rm` print (pure).

`prune` without `-apply` plans and deletes nothing: `prune: would keep K and delete D
snapshot(s), ...`, then one line per snapshot, newest first: `keep|delete <ts> <id8> ...`.
With `-trace snapshot` plakar also prints each snapshot's full id as it closes it, which
turns the plan's short ids into full ones in the same run. The control plane then
deletes exactly those with `rm -apply <full id>...`, which says `info: rm: removal of
<id8> completed successfully` for each: a snapshot counts as deleted only on that line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from services.runner.plakar_output import CLOSED

_HEADER = re.compile(r"^prune: would keep (?P<keep>\d+) and delete (?P<delete>\d+) snapshot")
_ENTRY = re.compile(r"^(?P<action>keep|delete)\s+\S+\s+(?P<id>[0-9a-f]{8})\s")
_REMOVED = re.compile(r"^info: rm: removal of (?P<id>[0-9a-f]{8}) completed successfully$")


class PlanUnreadable(Exception):
    """plakar's plan cannot be told for sure: nothing may be deleted on its word."""


@dataclass(frozen=True)
class Plan:
    keep: list[str]
    delete: list[str]


@dataclass
class PlanReader:
    """Fed the lines of one `prune` dry run (with `-trace snapshot`)."""

    counts: tuple[int, int] | None = None
    entries: list[tuple[str, str]] = field(default_factory=list)
    full_ids: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def feed(self, line: str) -> None:
        if m := CLOSED.match(line):
            self.full_ids[m["id"]].add(m["full"])
        elif m := _HEADER.match(line):
            self.counts = (int(m["keep"]), int(m["delete"]))
        elif self.counts is not None and (m := _ENTRY.match(line)):
            self.entries.append((m["action"], m["id"]))

    def plan(self) -> Plan:
        """The plan with full ids; raises PlanUnreadable when any part of it is unsure."""
        if self.counts is None:
            raise PlanUnreadable("plakar printed no prune plan")
        keep = [short for action, short in self.entries if action == "keep"]
        delete = [short for action, short in self.entries if action == "delete"]
        if (len(keep), len(delete)) != self.counts:
            raise PlanUnreadable(
                f"plakar planned to keep {self.counts[0]} and delete {self.counts[1]} "
                f"snapshots but listed {len(keep)} and {len(delete)}"
            )
        return Plan(keep=[self._full(s) for s in keep], delete=[self._full(s) for s in delete])

    def _full(self, short: str) -> str:
        found = self.full_ids.get(short, set())
        if len(found) != 1:
            how = "no full id" if not found else f"{len(found)} snapshots"
            raise PlanUnreadable(f"snapshot {short} of the plan has {how} in plakar's output")
        return next(iter(found))


@dataclass
class RemovalReader:
    """Fed the lines of one `rm -apply`: the short ids plakar said it removed."""

    removed: set[str] = field(default_factory=set)

    def feed(self, line: str) -> None:
        if m := _REMOVED.match(line):
            self.removed.add(m["id"])

    def confirmed(self, asked: list[str]) -> list[str]:
        """The full ids asked for whose removal plakar confirmed, in the order asked."""
        return [full for full in asked if full[:8] in self.removed]
