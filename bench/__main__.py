"""`make bench`: every benchmark, each figure beside a peer measured in the same run, in
one table. A benchmark that fails shows its failure in the table; the others still run."""

from __future__ import annotations

import importlib
import sys
import time
import traceback

from bench.common import Row, Section, table

BENCHMARKS = {
    "overhead": "Control-plane overhead against plakar run directly",
    "scheduler": "Scheduler: a burst of schedules due at once, and idle with many",
    "pipeline": "Output pipeline: runner -> NATS -> PostgreSQL and WebSocket clients",
    "history": "History API latency over a large job table (HTTP, keyset cursors)",
    "runners": "Draining small check jobs with runner processes x slots",
}
# `make bench` stays under 10 minutes; draining 1,000 jobs takes half an hour alone
# (`make bench-scale`).
SCALE = {"runners"}


def _run(name: str) -> Section:
    started = time.monotonic()
    rows: list[Row] = []
    failure = None
    try:
        rows = importlib.import_module(f"bench.{name}").run()
    except Exception as e:
        traceback.print_exc()
        failure = f"{type(e).__name__}: {e}".splitlines()[0][:200]
    took = time.monotonic() - started
    print(f"bench {name}: {'failed' if failure else 'done'} in {took:.0f} s", file=sys.stderr)
    return Section(name, BENCHMARKS[name], rows, took, failure)


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmarks {unknown}; known: {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    chosen = names or [n for n in BENCHMARKS if n not in SCALE]
    sections = [_run(name) for name in chosen]
    print(table(sections), flush=True)
    return 1 if any(s.failure for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
