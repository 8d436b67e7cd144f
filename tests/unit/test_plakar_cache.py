"""The store's kept plakar cache: which one a run gets, what is thrown away (files only)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from services.runner import plakar_cache as pc


def test_key_is_short_stable_and_per_store() -> None:
    key = pc.cache_key("6f1c1d52-7d0e-4b0e-9a39-0c7c6a7b3f11")
    assert key == pc.cache_key("6f1c1d52-7d0e-4b0e-9a39-0c7c6a7b3f11")
    assert len(key) == 16 and key != pc.cache_key("another store")


def test_a_cache_is_reused_only_in_the_boot_it_was_written_in() -> None:
    assert pc.reusable("b1", "b1")
    assert not pc.reusable("b0", "b1")
    assert not pc.reusable(None, "b1")  # a cache never recorded: made afresh
    assert not pc.reusable("", "")  # no boot id to compare: never reused


def test_leftovers_are_the_per_run_caches_and_state_files_only(tmp_path: Path) -> None:
    keep = [
        tmp_path / "2.0.0/store/r1/state.db",
        tmp_path / "2.0.0/repository/r1/000002.log",
        tmp_path / "cookies/1.0.0/.disabled-security-check",
    ]
    gone = [
        tmp_path / "2.0.0/scan/ab12/LOCK",
        tmp_path / "2.0.0/packing/u1/LOCK",
        tmp_path / "2.0.0/check/u2/LOCK",
        tmp_path / "2.0.0/store/r1/5e2f.state",
    ]
    for f in keep + gone:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    found = set(pc.leftovers(tmp_path))
    assert found == {gone[0].parent, gone[1].parent, gone[2].parent, gone[3]}


async def test_runs_of_one_store_at_once_get_caches_of_their_own(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(pc.kept_cache(tmp_path, "store-a"))
        second = await stack.enter_async_context(pc.kept_cache(tmp_path, "store-a"))
        other = await stack.enter_async_context(pc.kept_cache(tmp_path, "store-b"))
        # Given as a link when the cache's own path is too long for plakar's socket.
        first, second, other = (p.resolve() for p in (first, second, other))
        assert first != second and first.parent == second.parent
        assert other.parent != first.parent
        assert oct(first.stat().st_mode & 0o777) == "0o700"
    # Once released, the first cache is the one the next run gets, with what it held.
    (first / "state").write_text("warm")
    async with pc.kept_cache(tmp_path, "store-a") as again:
        assert again.resolve() == first and (again / "state").read_text() == "warm"


async def test_a_killed_runs_leftovers_go_before_the_next_run(tmp_path: Path) -> None:
    async with pc.kept_cache(tmp_path, "s") as cache:
        scan = cache / "2.0.0/scan/ab12"
        scan.mkdir(parents=True)
        state = cache / "2.0.0/store/r1/state.db"
        state.parent.mkdir(parents=True)
        state.write_text("kept")
    async with pc.kept_cache(tmp_path, "s") as cache:
        assert not scan.exists() and state.read_text() == "kept"


async def test_a_cache_from_an_earlier_boot_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pc, "_boot", lambda: "boot-1")
    async with pc.kept_cache(tmp_path, "s") as cache:
        (cache / "state.db").write_text("unsynced")
    monkeypatch.setattr(pc, "_boot", lambda: "boot-2")
    async with pc.kept_cache(tmp_path, "s") as cache:
        assert not (cache / "state.db").exists()


async def test_a_cache_too_deep_for_plakars_socket_is_given_through_a_short_link(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 90)
    async with pc.kept_cache(deep, "s") as given:
        assert pc.socket_fits(given) and given.is_symlink()
        assert given.resolve() == (deep / pc.CACHES / pc.cache_key("s") / "0").resolve()


def test_security_check_cookie(tmp_path: Path) -> None:
    assert not pc.security_check_disabled(tmp_path)
    cookie = tmp_path / "cookies/1.0.0/.disabled-security-check"
    cookie.parent.mkdir(parents=True)
    cookie.touch()
    assert pc.security_check_disabled(tmp_path)


def test_pending_states_are_those_the_daemon_has_not_taken_in(tmp_path: Path) -> None:
    state = tmp_path / "2.0.0/store/r1/5e2f.state"
    state.parent.mkdir(parents=True)
    assert pc.pending_states(tmp_path) == []
    state.write_text("x")
    assert pc.pending_states(tmp_path) == [state]


async def test_a_job_waits_for_the_daemon_left_on_its_cache_to_take_in_a_state(
    tmp_path: Path,
) -> None:
    state = tmp_path / "2.0.0/store/r1/ab12.state"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"")
    # A process that looks like plakar's daemon of this cache (`... -cachedir DIR cached`),
    # and starts none (a child is its parent's likeness until it executes its program).
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(30)", "-cachedir", str(tmp_path), "cached"
    )
    try:
        assert pc.daemons(tmp_path) == [daemon.pid]
        waited = asyncio.create_task(pc.settled(tmp_path, patience_s=10))
        await asyncio.sleep(0.3)
        assert not waited.done(), "the daemon has a state to take in"
        state.unlink()  # taken in
        await asyncio.wait_for(waited, 1)
        state.write_bytes(b"")
        started = time.monotonic()
        await pc.settled(tmp_path, patience_s=0.2)  # a daemon that never takes it in
        # Its patience, not more (the bound leaves room for a loaded machine's /proc scans).
        assert 0.2 <= time.monotonic() - started < 5
    finally:
        daemon.kill()
        await daemon.wait()
    started = time.monotonic()
    await pc.settled(tmp_path, patience_s=30)  # no daemon: nothing to wait for
    assert time.monotonic() - started < 5


async def test_caches_unused_for_long_are_swept_unless_a_run_holds_one(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        caches = [
            (await stack.enter_async_context(pc.kept_cache(tmp_path, "s"))).resolve()
            for _ in range(3)
        ]
    gone, held, recent = caches
    now = time.time()
    for cache in (gone, held):
        (cache / "state.db").write_text("x")
        old = now - pc.UNUSED_S - 60
        os.utime(cache.with_suffix(".boot"), (old, old))
    async with AsyncExitStack() as stack:
        # A run holds the first cache free, `gone`: the sweep may not take it.
        first = (await stack.enter_async_context(pc.kept_cache(tmp_path, "s"))).resolve()
        assert first == gone
        old = now - pc.UNUSED_S - 60
        os.utime(first.with_suffix(".boot"), (old, old))
        assert pc.sweep(tmp_path, now) == [held]
        assert (gone / "state.db").exists() and not held.exists() and recent.exists()
    assert pc.sweep(tmp_path, now) == [gone]
    assert not gone.exists() and gone.with_suffix(".lock").exists()
    # A swept cache is made again for the next run that takes it.
    async with pc.kept_cache(tmp_path, "s") as again:
        assert again.resolve() == gone and not (again / "state.db").exists()
