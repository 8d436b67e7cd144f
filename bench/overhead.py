"""Control-plane overhead: a backup through the API against the same plakar command run
directly, and dispatch latency (queued -> started)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.common import Row, median
from tests.support.plakar import direct
from tests.support.stack import running_stack, stack_dir

RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def _tree(root: Path, files: int, size: int) -> None:
    for i in range(files):
        d = root / f"d{i % 20}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(os.urandom(size))


def _direct(plakar: str, work: Path, store: Path, src: Path, passphrase: str | None) -> float:
    base, env = direct(plakar, work, passphrase)
    started = time.perf_counter()
    subprocess.run(
        [*base, "at", str(store), "backup", str(src)], check=True, capture_output=True, env=env
    )
    return time.perf_counter() - started


def run() -> list[Row]:
    plakar = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "plakar")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="pcp-bench-") as tmp:
        root = Path(tmp)
        src = root / "src"
        _tree(src, files=2000, size=16 * 1024)
        with running_stack(stack_dir("bench-overhead"), runners=1) as stack:
            source = stack.connector("bench-src", "source", str(src))
            for kind, passphrase in (("plaintext", None), ("encrypted", "bench-passphrase-93817")):
                ours_store = stack.store(f"bench-{kind}", root / f"ours-{kind}", passphrase)
                peer_store = root / f"peer-{kind}"
                base, env = direct(plakar, root / f"init-{kind}", passphrase)
                plaintext = [] if passphrase else ["-plaintext"]
                subprocess.run(
                    [*base, "at", str(peer_store), "create", *plaintext],
                    check=True,
                    capture_output=True,
                    env=env,
                )
                task = stack.post(
                    "/tasks",
                    {"type": "backup", "source_id": source, "store_id": ours_store},
                    expect=201,
                )
                stack.wait_job(task["job_id"])  # warm-up run, not counted
                ours, dispatch, peer = [], [], []
                for i in range(RUNS):
                    peer.append(_direct(plakar, root / f"w{kind}{i}", peer_store, src, passphrase))
                    t0 = time.perf_counter()
                    job_id = stack.post(f"/tasks/{task['task']['id']}/run", expect=202)["job_id"]
                    job = stack.wait_job(job_id)
                    ours.append(time.perf_counter() - t0)
                    assert job["status"] == "succeeded", job
                    q, s = (datetime.fromisoformat(job[k]) for k in ("queued_at", "started_at"))
                    dispatch.append((s - q).total_seconds() * 1000)
                rows.append(
                    Row(
                        f"backup 2000 files/32 MiB, {kind} (median s)",
                        median(ours),
                        "plakar run directly",
                        median(peer),
                        "s",
                    )
                )
                rows.append(
                    Row(f"  overhead, {kind} (s)", median(ours) - median(peer), "-", None, "s")
                )
                rows.append(
                    Row(
                        f"  dispatch queued->started, {kind} (ms)",
                        median(dispatch),
                        "-",
                        None,
                        "ms",
                    )
                )
    return rows
