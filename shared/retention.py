"""A prune's retention policy (pure): which of a store's snapshots it keeps, as plakar's
`prune` matchers say it. `days` keeps every snapshot of the last N days; `per_<period>`
keeps the newest N of each hour, day, week, month or year (plakar's calendar buckets,
in UTC). A snapshot any rule keeps is kept; the others it considers are deleted."""

from __future__ import annotations

# The policy's keys, with their plakar flags and what each means (GET /rules serves them).
RULES: dict[str, tuple[str, str]] = {
    "days": ("-days", "keep every snapshot of the last N days"),
    "per_hour": ("-per-hour", "keep the newest N snapshots of each hour"),
    "per_day": ("-per-day", "keep the newest N snapshots of each day"),
    "per_week": ("-per-week", "keep the newest N snapshots of each week"),
    "per_month": ("-per-month", "keep the newest N snapshots of each month"),
    "per_year": ("-per-year", "keep the newest N snapshots of each year"),
}
# A count beyond this keeps everything a store could hold; it is a typing slip.
MAX_COUNT = 100_000


def retention_flags(counts: dict[str, int]) -> list[str]:
    """plakar's flags for a policy's counts (set ones only), in the rules' order."""
    args: list[str] = []
    for key, (flag, _) in RULES.items():
        if counts.get(key):
            args += [flag, str(counts[key])]
    return args
