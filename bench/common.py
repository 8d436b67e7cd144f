"""What every benchmark prints: its figure beside a peer measured in the same run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    what: str
    ours: float
    peer_name: str
    peer: float | None
    unit: str


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def table(title: str, rows: list[Row]) -> str:
    lines = [title, f"{'measure':44} {'ours':>12} {'peer':>12}  peer is", "-" * 96]
    for r in rows:
        peer = f"{r.peer:12.3f}" if r.peer is not None else f"{'-':>12}"
        lines.append(f"{r.what:44} {r.ours:12.3f} {peer}  {r.peer_name} ({r.unit})")
    return "\n".join(lines)
