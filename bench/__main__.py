"""`make bench`: every benchmark, each figure beside a peer measured in the same run."""

from __future__ import annotations

import importlib
import sys

from bench.common import table

BENCHMARKS = {
    "overhead": "Control-plane overhead against plakar run directly",
    "scheduler": "Scheduler lateness with many schedules due at once",
    "pipeline": "Output pipeline: runner -> NATS -> PostgreSQL and WebSocket clients",
    "history": "History API latency over a large job table (HTTP, keyset cursors)",
    "runners": "Draining small check jobs with runner processes x slots",
}


def main(names: list[str]) -> int:
    for name in names or list(BENCHMARKS):
        module = importlib.import_module(f"bench.{name}")
        print(table(BENCHMARKS[name], module.run()), flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
