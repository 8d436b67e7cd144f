"""Draining a queue of small check jobs with runner processes x slots, against plakar run
directly by a plain parallel loop (`xargs -P`, as many at once as the runners' slots) on
the same checks of the same store, each with a cache of its own as a runner's job has.

Each shape's jobs are queued first, for a runner group of its own with no live runner
(they wait), then its runners start; jobs/s counts from the first job started to the last
finished, as the history recorded them. Scaling efficiency: jobs/s divided by the slots,
relative to one runner with one slot (the peer: to `xargs -P 1`)."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import asyncpg

from bench.common import Row
from services.runner.concurrency import recommended_concurrency
from tests.support.plakar import direct
from tests.support.runners import extra_runner
from tests.support.stack import Stack, many_files, running_stack, stack_dir

JOBS = int(os.environ.get("BENCH_DRAIN_JOBS", "1000"))
# Runner processes x slots each.
SHAPES = [(1, 1), (1, 2), (2, 2), (4, 1)]


def _peer(plakar: str, root: Path, store: Path, at_once: int) -> float:
    """Jobs per second of JOBS checks run by `xargs -P at_once`, a fresh cache each."""
    base, env = direct(plakar, root / f"peer-{at_once}")
    caches = root / f"peer-{at_once}" / "caches"
    # plakar -configdir DIR, and the concurrency a runner gives a check on this host.
    one = " ".join(shlex.quote(a) for a in base[:3])
    one += f" -concurrency {recommended_concurrency('check', os.cpu_count())}"
    cache = f"{shlex.quote(str(caches))}/$0"
    check = f"mkdir -p {cache} && {one} -cachedir {cache} at {shlex.quote(str(store))} check"
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-P", str(at_once), "-n", "1", "sh", "-c", f"{check} >/dev/null"],
        input="\n".join(str(i) for i in range(JOBS)).encode(),
        check=True,
        env=env,
    )
    return JOBS / (time.perf_counter() - started)


def _queue(stack: Stack, group: str, store: str) -> str:
    """JOBS checks of a task of `group`, queued (no runner of the group is live yet)."""
    body = {
        "type": "check",
        "name": f"drain {group}",
        "store_id": store,
        "runner_group": group,
        "schedules": [{"recurrence": "daily", "enabled": False}],
    }
    task_id: str = stack.post("/tasks", body, expect=201)["task"]["id"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: stack.post(f"/tasks/{task_id}/run", expect=202), range(JOBS)))
    return task_id


def _drained(stack: Stack, task_id: str) -> tuple[int, int, float]:
    """Jobs ended, succeeded, and the seconds from the first start to the last end."""

    async def ask() -> asyncpg.Record:
        conn = await asyncpg.connect(stack.database_url())
        try:
            row = await conn.fetchrow(
                """SELECT count(*) FILTER (WHERE finished_at IS NOT NULL) AS ended,
                          count(*) FILTER (WHERE status = 'succeeded') AS ok,
                          EXTRACT(EPOCH FROM max(finished_at) - min(started_at)) AS took
                   FROM jobs WHERE task_id = $1""",
                task_id,
            )
            assert row is not None
            return row
        finally:
            await conn.close()

    row = asyncio.run(ask())
    return row["ended"], row["ok"], float(row["took"] or 0)


def _ours(stack: Stack, root: Path, store: str, processes: int, slots: int) -> float:
    group = f"drain-{processes}x{slots}"
    task_id = _queue(stack, group, store)
    with ExitStack() as runners:
        for i in range(processes):
            name = f"{group}-r{i + 1}"
            runners.enter_context(extra_runner(stack, root / "runners", name, group, slots))
        deadline = time.monotonic() + 60 + JOBS * 2
        while (drained := _drained(stack, task_id))[0] < JOBS:
            assert time.monotonic() < deadline, f"{group}: {drained[0]} of {JOBS} jobs ended"
            time.sleep(0.5)
    ended, ok, took = drained
    assert ok == JOBS, f"{group}: {JOBS - ok} jobs did not succeed"
    return ended / took


def run() -> list[Row]:
    plakar = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "plakar")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="pcp-bench-") as tmp:
        root = Path(tmp)
        with running_stack(stack_dir("bench-drain"), runners=1) as stack:
            store_path = root / "store"
            store = stack.store("drain-store", store_path)
            source = stack.connector("drain-src", "source", str(many_files(root / "src", 10)))
            backup = {"type": "backup", "source_id": source, "store_id": store}
            job = stack.wait_job(stack.post("/tasks", backup, expect=201)["job_id"])
            assert job["status"] == "succeeded", job  # a snapshot for the checks to read
            peers = {
                n: _peer(plakar, root, store_path, n) for n in sorted({p * s for p, s in SHAPES})
            }
            base: tuple[float, float] | None = None
            for processes, slots in SHAPES:
                ours = _ours(stack, root, store, processes, slots)
                peer = peers[processes * slots]
                base = base or (ours, peer)
                at_once = processes * slots
                rows.append(
                    Row(
                        f"drain {JOBS} checks, {processes} runner(s) x {slots} slot(s)",
                        ours,
                        f"xargs -P {at_once}",
                        peer,
                        "jobs/s",
                    )
                )
                rows.append(
                    Row(
                        f"  scaling efficiency vs 1x1 ({at_once} at once)",
                        ours / (at_once * base[0]),
                        f"xargs -P {at_once} vs -P 1",
                        peer / (at_once * base[1]),
                        "ratio",
                    )
                )
    return rows
