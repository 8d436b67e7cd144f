"""`make bench` prints one table: every benchmark's rows, a failed one's failure in place."""

from __future__ import annotations

from bench.common import Row, Section, table


def test_one_table_with_every_benchmark_and_a_failure_in_place() -> None:
    text = table(
        [
            Section("a", "First", [Row("jobs", 10000, "peer", 9999, "count")], 12.4),
            Section("b", "Second", [], 3.0, failure="RuntimeError: no stack"),
            Section("c", "Third", [Row("p99", 1.23456, "-", None, "ms")], 1.0),
        ]
    )
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["measure", "ours", "peer"]
    assert sum(line.startswith("measure") for line in lines) == 1
    assert "[a] First (12 s)" in lines
    assert any(line.split()[:3] == ["jobs", "10000", "9999"] for line in lines)
    assert lines[lines.index("[b] Second (3 s)") + 1] == "  FAILED: RuntimeError: no stack"
    assert any(line.split()[:3] == ["p99", "1.235", "-"] for line in lines)
    assert lines[-1] == "3 benchmarks, 1 failed, 16 s in all"
