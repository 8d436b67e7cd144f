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


@dataclass(frozen=True)
class Section:
    """One benchmark's part of the table: its rows, or why it failed, and how long it took."""

    name: str
    title: str
    rows: list[Row]
    seconds: float
    failure: str | None = None


WIDTH = 52


def _line(what: str, ours: str, peer: str, peer_is: str) -> str:
    return f"{what:{WIDTH}} {ours:>12} {peer:>12}  {peer_is}"


def _value(v: float, unit: str) -> str:
    return f"{v:.0f}" if unit == "count" else f"{v:.3f}"


def table(sections: list[Section]) -> str:
    """Every benchmark's rows in one table, a heading line per benchmark; a failed one
    shows its failure where its rows would be."""
    lines = [_line("measure", "ours", "peer", "peer is (unit)"), "-" * 110]
    for s in sections:
        lines.append(f"[{s.name}] {s.title} ({s.seconds:.0f} s)")
        if s.failure is not None:
            lines.append(f"  FAILED: {s.failure}")
        for r in s.rows:
            peer = "-" if r.peer is None else _value(r.peer, r.unit)
            ours = _value(r.ours, r.unit)
            lines.append(_line(f"  {r.what}", ours, peer, f"{r.peer_name} ({r.unit})"))
    total = sum(s.seconds for s in sections)
    failed = sum(s.failure is not None for s in sections)
    lines += ["-" * 110, f"{len(sections)} benchmarks, {failed} failed, {total:.0f} s in all"]
    return "\n".join(lines)
