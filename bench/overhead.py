"""Control-plane overhead: an incremental encrypted backup through the API against the
same `plakar backup` run directly with its own kept cache (a large tree and a small one),
dispatch latency (queued -> started), and how many plakar processes open the store per
job type (each is one key derivation on an encrypted store).

Openings are counted by running the runners' plakar through a wrapper that appends each
command line to a file: a command `at STORE CMD` opens the store once (and derives its key
once). plakar's `cached` daemon, which the runner starts through the wrapper too, names no
store: it is handed the derived key by the commands. `create` makes a store rather than
opening one.

A job's end is learnt from the api's event feed, as a client waiting for it would:
polling the job meanwhile would take from plakar CPU that the peer's runs have.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from websockets.asyncio.client import connect

from bench.common import Row, median
from tests.support.plakar import direct
from tests.support.stack import TERMINAL, Stack, running_stack, stack_dir

T = TypeVar("T")

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
# Five of each, as for the small tree, though the large tree's take seconds: the same
# plakar moves by up to 10 % from one run to the next here.
LARGE_RUNS = int(os.environ.get("BENCH_LARGE_RUNS", "5"))
LARGE_FILES = int(os.environ.get("BENCH_LARGE_FILES", "20000"))
SMALL_FILES = 50
FILE_SIZE = 4 * 1024
# Files rewritten before each pair of runs: every incremental backup has something new.
CHANGED = 20
PASSPHRASE = "bench-passphrase-93817"
_WRAPPER = '#!/bin/sh\nprintf \'%s\\n\' "$*" >> {log}\nexec {plakar} "$@"\n'


def _tree(root: Path, files: int, size: int) -> None:
    for i in range(files):
        d = root / f"d{i % 20}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(os.urandom(size))


def _change(root: Path, files: int) -> None:
    for i in range(min(files, CHANGED)):
        (root / f"d{i % 20}" / f"f{i}").write_bytes(os.urandom(FILE_SIZE))


def opens_store(command_line: str) -> bool:
    """Whether a plakar command line opens a store: `... at STORE CMD ...`, CMD not create."""
    words = command_line.split()
    if "at" not in words:
        return False
    at = words.index("at")
    return len(words) > at + 2 and words[at + 2] != "create"


class _Direct:
    """plakar run by hand on a store of its own, with its own cache kept between runs."""

    def __init__(self, plakar: str, work: Path) -> None:
        self.base, self.env = direct(plakar, work, PASSPHRASE)
        self.store = work / "store"
        self.run(["create"])

    def run(self, args: list[str], flags: tuple[str, ...] = ()) -> float:
        started = time.perf_counter()
        argv = [*self.base, *flags, "at", str(self.store), *args]
        subprocess.run(argv, check=True, capture_output=True, env=self.env)
        return time.perf_counter() - started


def _recorded(stack: Stack, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The job once the history recorded its end (at most milliseconds after its event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = stack.client.get(f"/jobs/{job_id}")
        if r.status_code == 200 and (job := r.json())["status"] in TERMINAL:
            assert job["status"] == "succeeded", job
            found: dict[str, Any] = job
            return found
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} was not recorded in {timeout} s")


async def _timed(stack: Stack, start: Callable[[], str], within_s: float) -> tuple[float, str]:
    async with connect(stack.ws_url("/events", kinds="finished")) as ws:
        started = time.perf_counter()
        job_id = start()
        async with asyncio.timeout(within_s):
            while json.loads(await ws.recv())["job_id"] != job_id:
                pass
        return time.perf_counter() - started, job_id


def _run(
    stack: Stack, start: Callable[[], str], timeout: float = 600
) -> tuple[float, dict[str, Any]]:
    """Start a job (`start` returns its id): the seconds until its end, and the job."""
    took, job_id = asyncio.run(_timed(stack, start, timeout))
    return took, _recorded(stack, job_id)


def _run_task(stack: Stack, task_id: str) -> tuple[float, dict[str, Any]]:
    return _run(stack, lambda: str(stack.post(f"/tasks/{task_id}/run", expect=202)["job_id"]))


def _create(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    """Create a task (which queues its first job) and wait for that job's end."""
    created: dict[str, Any] = {}

    def start() -> str:
        created.update(stack.post("/tasks", body, expect=201))
        return str(created["job_id"])

    _run(stack, start)
    return created


def _dispatch_ms(job: dict[str, Any]) -> float:
    q, s = (datetime.fromisoformat(job[k]) for k in ("queued_at", "started_at"))
    return (s - q).total_seconds() * 1000


class _Bench:
    def __init__(self, plakar: str, root: Path, stack: Stack, log: Path) -> None:
        self.plakar, self.root, self.stack, self.log = plakar, root, stack, log
        self.dispatch: list[float] = []

    def openings(self, work: Callable[[], T]) -> tuple[int, T]:
        """Store openings by the runners' plakar while `work` runs, and what it returned."""
        before = len(self.log.read_text().splitlines())
        done = work()
        return sum(opens_store(c) for c in self.log.read_text().splitlines()[before:]), done

    def backup(self, name: str, files: int, runs: int) -> tuple[list[Row], str, str]:
        """Incremental backups, ours and plakar's alternately; rows, our store and task."""
        src = self.root / name
        _tree(src, files, FILE_SIZE)
        source = self.stack.connector(f"{name}-src", "source", str(src))
        store = self.stack.store(f"{name}-store", self.root / f"{name}-ours", PASSPHRASE)
        body = {"type": "backup", "source_id": source, "store_id": store}
        task = _create(self.stack, body)  # the full backups, not counted
        first = _recorded(self.stack, task["job_id"])
        peer = _Direct(self.plakar, self.root / f"{name}-peer")
        # The same command: the concurrency the runner chose, the source as a path.
        flags = ("-concurrency", str(first["concurrency"]))
        backup = ["backup", str(src)]
        peer.run(backup, flags)
        ours: list[float] = []
        theirs: list[float] = []
        opened = 0
        for i in range(runs):
            _change(src, files)

            def one_of_ours() -> None:
                took, job = _run_task(self.stack, task["task"]["id"])
                ours.append(took)
                self.dispatch.append(_dispatch_ms(job))

            if i % 2:
                theirs.append(peer.run(backup, flags))
                opened += self.openings(one_of_ours)[0]
            else:
                opened += self.openings(one_of_ours)[0]
                theirs.append(peer.run(backup, flags))
        a, b = median(ours), median(theirs)
        what = f"backup {files:,} files, incremental, encrypted"
        ratio, more = ("(target <= 1.05)", "") if files >= 20000 else ("", "(target <= +0.15)")
        rows = [
            Row(f"{what} (median s)", a, "plakar backup run directly, own kept cache", b, "s"),
            Row(f"  ours / plakar {ratio}", a / b, "-", None, "x"),
            Row(f"  ours - plakar {more}", a - b, "-", None, "s"),
        ]
        if opened != runs:
            rows.append(Row("  store openings per backup", opened / runs, "plakar", 1, "n"))
        return rows, store, task["task"]["id"]

    def job_openings(self, store: str, task_id: str) -> list[Row]:
        """Store openings of each job type, on the small store (one job each)."""
        stack = self.stack
        (self.root / "restored").mkdir()
        dest = stack.connector("bench-dest", "destination", str(self.root / "restored"))
        target = stack.store("bench-target", self.root / "target", PASSPHRASE)
        snapshot = _run_task(stack, task_id)[1]["snapshot_id"]
        kinds: dict[str, dict[str, Any]] = {
            "backup": {},
            "restore (latest)": {"type": "restore", "destination_id": dest},
            "restore (a snapshot by id)": {
                "type": "restore",
                "destination_id": dest,
                "snapshot_id": snapshot,
            },
            "restore (a path of it)": {
                "type": "restore",
                "destination_id": dest,
                "snapshot_id": snapshot,
                "restore_path": str(self.root / "small" / "d1"),
            },
            "restore (a snapshot by a short id)": {
                "type": "restore",
                "destination_id": dest,
                "snapshot_id": snapshot[:8],
            },
            "restore (a path of the latest)": {
                "type": "restore",
                "destination_id": dest,
                "restore_path": str(self.root / "small" / "d1"),
            },
            "check": {"type": "check"},
            # plakar opens the target too, in the same process.
            "sync": {"type": "sync", "target_store_id": target},
        }
        rows = []
        for kind, body in kinds.items():
            saved, of_kind = 0, task_id
            if body:
                # Saved with a paused schedule: its job runs below, apart from the save.
                paused = [{"recurrence": "daily", "enabled": False}]
                create = {**body, "store_id": store, "schedules": paused}
                saved, created = self.openings(partial(stack.post, "/tasks", create, 201))
                of_kind = created["task"]["id"]
            n = self.openings(partial(_run_task, stack, of_kind))[0]
            rows.append(Row(f"store openings: {kind}", n, "plakar itself (one command)", 1, "n"))
            if saved:
                rows.append(Row("    + when the task is saved (once)", saved, "-", None, "n"))
        return rows


def run() -> list[Row]:
    plakar = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "plakar")
    with tempfile.TemporaryDirectory(prefix="pcp-bench-") as tmp:
        root = Path(tmp)
        log = root / "plakar-commands.log"
        log.touch()
        wrapper = root / "plakar"
        wrapper.write_text(_WRAPPER.format(log=log, plakar=plakar))
        wrapper.chmod(0o700)
        env = {"PLAKAR_CP_PLAKAR_BIN": str(wrapper)}
        with running_stack(stack_dir("bench-overhead"), runners=1, env=env) as stack:
            bench = _Bench(plakar, root, stack, log)
            large, _, _ = bench.backup("large", LARGE_FILES, LARGE_RUNS)
            small, store, task_id = bench.backup("small", SMALL_FILES, RUNS)
            dispatch = Row(
                "dispatch queued->started (median ms)", median(bench.dispatch), "-", None, "ms"
            )
            return [*large, *small, dispatch, *bench.job_openings(store, task_id)]
