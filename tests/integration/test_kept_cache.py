"""The runner keeps plakar's cache per store: backups of one store at once, and a runner
killed mid-backup, on real stacks and real plakar (services/runner/plakar_cache.py). The
stores are plaintext: the cache is the point, and each plakar run on an encrypted store
derives its key, a second of CPU."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.runner.plakar_cache import CACHES, cache_key, daemons
from tests.conftest import plakar_run
from tests.support.procs import children, processes
from tests.support.stack import Stack, many_files, running_stack, stack_dir

pytestmark = pytest.mark.integration

# Slow enough at concurrency 1 for two backups to overlap, or to kill one mid-way.
FILES = 3000


def backup_task(stack: Stack, name: str, source: str, store: str) -> dict[str, Any]:
    body = {
        "type": "backup",
        "name": name,
        "source_id": source,
        "store_id": store,
        "concurrency": 1,
    }
    created: dict[str, Any] = stack.post("/tasks", body, expect=201)
    return created


def run(stack: Stack, task: dict[str, Any]) -> str:
    job_id: str = stack.post(f"/tasks/{task['task']['id']}/run", expect=202)["job_id"]
    return job_id


def plakar_snapshots(plakar: str, work: Path, store: Path) -> str:
    """The snapshots plakar itself lists, with their full ids."""
    return plakar_run(plakar, work, "at", str(store), "ls", "-uuid")


def caches_of(stack: Stack, store_id: str) -> Path:
    return stack.data_dir / "work" / "r1" / CACHES / cache_key(store_id)


def when(job: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(job[key])


@pytest.mark.timeout(240)
def test_backups_of_one_store_at_once_each_get_a_kept_cache(plakar: str, tmp_path: Path) -> None:
    source_dir = many_files(tmp_path / "src", FILES)
    # The runner keeps a cache's daemon this long after its last job.
    env = {"PLAKAR_CP_RUNNER_SLOTS": "2", "PLAKAR_CP_CACHE_DAEMON_IDLE": "8"}
    with running_stack(stack_dir("kept-cache"), runners=1, env=env) as stack:
        source = stack.connector("kc-src", "source", str(source_dir))
        store = stack.store("kc-store", tmp_path / "store")
        first, second = (backup_task(stack, f"kc-{n}", source, store) for n in (1, 2))
        jobs = [stack.wait_job(j, timeout=180) for j in (first["job_id"], second["job_id"])]
        assert [j["status"] for j in jobs] == ["succeeded", "succeeded"], jobs
        a, b = jobs
        assert when(a, "started_at") < when(b, "finished_at")
        assert when(b, "started_at") < when(a, "finished_at"), "the backups did not overlap"
        caches = caches_of(stack, store)
        assert sorted(p.name for p in caches.iterdir() if p.is_dir()) == ["0", "1"]

        # Both again, one after the other now: each finds a warm cache of the store, the
        # first free one, and the daemon the runner keeps on it.
        again, kept = [], []
        for t in (first, second):
            again.append(stack.wait_job(run(stack, t), timeout=180))
            kept.append(daemons(caches / "0"))
        assert [j["status"] for j in again] == ["succeeded", "succeeded"], again
        assert kept[0] == kept[1] and len(kept[0]) == 1, kept
        assert sorted(p.name for p in caches.iterdir() if p.is_dir()) == ["0", "1"]
        listing = plakar_snapshots(plakar, tmp_path / "direct", tmp_path / "store")
        for job in jobs + again:
            assert len(job["snapshot_id"]) == 64 and job["snapshot_id"] in listing, job
        assert len({j["snapshot_id"] for j in jobs + again}) == 4
        output = stack.get(f"/jobs/{again[1]['id']}/output")
        # One plakar command per backup: no `info` to learn the snapshot's id.
        assert output.count("$ ") == 1 and " info " not in output
        # The runner stops the daemons it keeps once no job used them for a while.
        deadline = time.monotonic() + 30
        while any(daemons(c) for c in caches.iterdir() if c.is_dir()):
            assert time.monotonic() < deadline, "a cache daemon outlived its work"
            time.sleep(0.1)


@pytest.mark.timeout(240)
def test_a_backup_after_a_runner_killed_mid_backup_succeeds(plakar: str, tmp_path: Path) -> None:
    source_dir = many_files(tmp_path / "src", FILES)
    with running_stack(stack_dir("kept-cache-kill"), runners=1) as stack:
        source = stack.connector("kk-src", "source", str(source_dir))
        store = stack.store("kk-store", tmp_path / "store")
        task = backup_task(stack, "kk", source, store)
        warm = stack.wait_job(task["job_id"], timeout=180)
        assert warm["status"] == "succeeded", warm
        (source_dir / "d0" / "new.bin").write_bytes(os.urandom(64 * 1024))

        job_id = run(stack, task)
        stack.wait_running(job_id, lines=200)
        runner = stack.get(f"/jobs/{job_id}")["runner"]
        pid = next(r["pid"] for r in stack.get("/health")["runners"] if r["id"] == runner)
        os.kill(pid, signal.SIGKILL)
        cache = caches_of(stack, store) / "0"
        deadline = time.monotonic() + 10
        while processes("backup", "kk") or daemons(cache):
            assert time.monotonic() < deadline, "plakar or its daemon outlived the runner"
            time.sleep(0.05)
        left = list(cache.glob("*/scan/*"))
        assert left, "the killed backup left no per-run cache behind"

        # The job's next attempt (the supervisor starts the runner again) takes that cache.
        retried = stack.wait_job(job_id, timeout=150)
        assert retried["status"] == "succeeded" and retried["attempt"] == 2, retried
        assert not any(p.exists() for p in left), "the killed run's leftovers are still there"
        after = stack.wait_job(run(stack, task), timeout=180)
        assert after["status"] == "succeeded", after
        listing = plakar_snapshots(plakar, tmp_path / "direct", tmp_path / "store")
        for job in (warm, retried, after):
            assert job["snapshot_id"] in listing, (job, listing)
        # The new file is in the snapshot the retried backup made.
        output = stack.get(f"/jobs/{job_id}/output")
        assert f"{retried['snapshot_id'][:8]}: OK ✓ {source_dir}/d0/new.bin" in output


@pytest.mark.timeout(240)
def test_a_runner_killed_leaves_no_plakar_behind_a_wrapper_that_forks_it(
    plakar: str, tmp_path: Path
) -> None:
    """plakar given as a script that runs it without `exec`: the kernel kills the script
    with the runner, and the supervisor the plakar it had started (deploy/orphans.py)."""
    wrapper = tmp_path / "plakar-wrapper"
    wrapper.write_text(f'#!/bin/sh\n"{plakar}" "$@"\n')
    wrapper.chmod(0o755)
    source_dir = many_files(tmp_path / "src", FILES)
    env = {"PLAKAR_CP_PLAKAR_BIN": str(wrapper)}
    with running_stack(stack_dir("kept-cache-wrapper"), runners=1, env=env) as stack:
        source = stack.connector("kw-src", "source", str(source_dir))
        store = stack.store("kw-store", tmp_path / "store")
        job_id = backup_task(stack, "kw", source, store)["job_id"]
        stack.wait_running(job_id, lines=50)
        [script] = processes("backup", "kw")
        [backup] = children(script)
        cache = caches_of(stack, store) / "0"
        assert daemons(cache), "the runner keeps no daemon behind the wrapper"
        # Held still: whatever outlives the runner is there to be seen, not ended by itself.
        os.kill(backup, signal.SIGSTOP)
        runner = stack.get(f"/jobs/{job_id}")["runner"]
        pid = next(r["pid"] for r in stack.get("/health")["runners"] if r["id"] == runner)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while processes("backup", "kw") or daemons(cache):
            assert time.monotonic() < deadline, "plakar or its daemon outlived the runner"
            time.sleep(0.05)
        assert "stopped processes a dead job left" in stack.up_log.read_text()
