"""The cache daemon the runner keeps from one run of a store to the next
(services/runner/cache_daemon.py), with real plakar: what it serves, what it refuses, when
it stops."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.runner import plakar_cache as pc
from services.runner import process
from services.runner.cache_daemon import CacheDaemons
from tests.conftest import plakar_run

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Keeper = Callable[..., CacheDaemons]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keeper(plakar: str, clock: Clock) -> Iterator[Keeper]:
    """Makes a runner's keeper of daemons (idle time 60 s on `clock`, one idle daemon at
    most unless told), whose daemons are stopped after the test."""
    made: list[CacheDaemons] = []

    def make(program: str = plakar, max_idle: int = 1) -> CacheDaemons:
        made.append(CacheDaemons(program, 60, max_idle, clock))
        return made[-1]

    yield make
    for daemons in made:
        daemons.stop_all()


def plaintext_store(plakar: str, tmp_path: Path) -> tuple[Path, Path]:
    """A new plaintext store, and a source of one file to back up into it."""
    store, source = tmp_path / "store", tmp_path / "src"
    source.mkdir()
    (source / "a").write_bytes(os.urandom(4096))
    plakar_run(plakar, tmp_path / "direct", "at", str(store), "create", "-plaintext")
    return store, source


async def backup(plakar: str, cache: Path, store: Path, source: Path) -> None:
    argv = [plakar, "-cachedir", str(cache), "at", str(store), "backup", str(source)]
    code, lines = await process.capture(argv)
    assert code == 0, lines


async def gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while _state(pid) != b"Z":
        assert time.monotonic() < deadline, f"daemon {pid} is still up"
        await asyncio.sleep(0.02)


async def taken_in(cache: Path) -> None:
    """Until the daemon has taken in the states the runs wrote."""
    deadline = time.monotonic() + 10
    while pc.pending_states(cache):
        assert time.monotonic() < deadline, "the daemon did not take the state in"
        await asyncio.sleep(0.02)


def _state(pid: int) -> bytes:
    """The process's state letter; Z (a zombie) when it is gone altogether."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return b"Z"


@pytest.mark.timeout(120)
async def test_a_kept_daemon_serves_the_next_runs_of_its_store_until_idle(
    plakar: str, tmp_path: Path, keeper: Keeper, clock: Clock
) -> None:
    store, source = plaintext_store(plakar, tmp_path)
    work = tmp_path / "work"
    daemons = keeper()
    async with pc.kept_cache(work, "s", daemons, "settings-1") as cache:
        # It listens before plakar runs: plakar starts none of its own.
        [pid] = pc.daemons(cache)
        await backup(plakar, cache, store, source)
        assert pc.daemons(cache) == [pid]
    assert pc.daemons(cache) == [pid], "the daemon went with the run"

    clock.now += 59
    assert pc.stop_idle(daemons) == []
    async with pc.kept_cache(work, "s", daemons, "settings-1") as again:
        assert again == cache and pc.daemons(cache) == [pid]
        clock.now += 600  # a long run: its daemon is not idle
        assert pc.stop_idle(daemons) == []
        (source / "b").write_bytes(os.urandom(4096))
        await backup(plakar, cache, store, source)
        assert pc.daemons(cache) == [pid]

    # Other settings of the store (another location, a new secret): a new daemon.
    async with pc.kept_cache(work, "s", daemons, "settings-2") as other:
        assert other == cache
        [new] = pc.daemons(cache)
        assert new != pid
        await backup(plakar, cache, store, source)
    await gone(pid)
    await taken_in(cache)  # as it is by the time the daemon has been idle a while

    clock.now += 59.9
    assert pc.stop_idle(daemons) == []
    clock.now += 0.1
    assert pc.stop_idle(daemons) == [cache.resolve()]
    await gone(new)
    assert pc.daemons(cache) == []
    # The states it took in stay: the next daemon starts from them.
    assert list(cache.glob("*/store/*/state.db"))


@pytest.mark.timeout(60)
async def test_without_a_kept_daemon_plakar_starts_its_own_and_it_is_stopped_after(
    plakar: str, tmp_path: Path, keeper: Keeper
) -> None:
    store, source = plaintext_store(plakar, tmp_path)
    # A daemon that never listens (a plakar that is not one): the run goes on without it.
    daemons = keeper(program="/bin/true")
    async with pc.kept_cache(tmp_path / "work", "s", daemons, "x") as cache:
        assert pc.daemons(cache) == []
        await backup(plakar, cache, store, source)
        [own] = pc.daemons(cache)  # plakar's own: `plakar -cachedir DIR cached`
    deadline = time.monotonic() + 30
    while pc.daemons(cache):  # stopped at once, or after taking in the backup's state
        assert time.monotonic() < deadline, f"plakar's daemon {own} outlived its work"
        await asyncio.sleep(0.05)
    assert daemons.idle(busy=lambda _: False) == []


@pytest.mark.timeout(60)
async def test_a_run_that_fails_takes_its_daemon_with_it(
    plakar: str, tmp_path: Path, keeper: Keeper
) -> None:
    daemons = keeper()
    seen: list[int] = []

    async def failing_run() -> None:
        async with pc.kept_cache(tmp_path / "work", "s", daemons, "x") as cache:
            seen.extend(pc.daemons(cache))
            raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError):
        await failing_run()
    [pid] = seen
    await gone(pid)
    assert daemons.idle(busy=lambda _: False) == []
    async with pc.kept_cache(tmp_path / "work", "s", daemons, "x") as again:
        assert pc.daemons(again) not in ([], [pid])


@pytest.mark.timeout(60)
async def test_past_its_slots_a_runner_keeps_the_daemons_idle_the_least(
    plakar: str, tmp_path: Path, keeper: Keeper, clock: Clock
) -> None:
    daemons = keeper(max_idle=2)
    pids: dict[str, int] = {}
    for store in ("s", "t", "u"):
        async with pc.kept_cache(tmp_path / "work", store, daemons, "x") as cache:
            [pids[store]] = pc.daemons(cache)
        clock.now += 1
    await gone(pids["s"])  # idle the longest, one too many
    for store in ("t", "u"):
        async with pc.kept_cache(tmp_path / "work", store, daemons, "x") as cache:
            assert pc.daemons(cache) == [pids[store]]


@pytest.mark.timeout(60)
async def test_a_daemon_taking_in_a_state_is_left_to_it_for_a_while(
    plakar: str, tmp_path: Path, keeper: Keeper, clock: Clock
) -> None:
    daemons = keeper()
    async with pc.kept_cache(tmp_path / "work", "s", daemons, "x") as cache:
        [pid] = pc.daemons(cache)
        # A state the backup wrote, not taken in yet.
        state = cache / "2.0.0" / "store" / "r" / "ab12.state"
        state.parent.mkdir(parents=True)
        state.write_bytes(b"")
    clock.now += 60
    assert pc.stop_idle(daemons) == []
    assert pc.daemons(cache) == [pid]
    clock.now += 60  # stuck on it: stopped all the same
    assert pc.stop_idle(daemons) == [cache.resolve()]
    await gone(pid)


@pytest.mark.timeout(60)
async def test_a_daemon_idle_too_long_is_not_reused_even_before_its_stop(
    plakar: str, tmp_path: Path, keeper: Keeper, clock: Clock
) -> None:
    daemons = keeper()
    async with pc.kept_cache(tmp_path / "work", "s", daemons, "x") as cache:
        [pid] = pc.daemons(cache)
    clock.now += 60  # no stop came (a busy runner): it may be about to exit by itself
    async with pc.kept_cache(tmp_path / "work", "s", daemons, "x") as again:
        assert pc.daemons(again) not in ([], [pid])
    await gone(pid)


@pytest.mark.timeout(60)
async def test_a_daemon_behind_a_wrapper_that_does_not_exec_is_stopped_whole(
    plakar: str, tmp_path: Path, keeper: Keeper
) -> None:
    wrapper = tmp_path / "plakar-wrapper"
    wrapper.write_text(f'#!/bin/sh\n"{plakar}" "$@"\n')
    wrapper.chmod(0o700)
    daemons = keeper(program=str(wrapper))
    async with pc.kept_cache(tmp_path / "work", "s", daemons, "x") as cache:
        wrapped = pc.daemons(cache)  # the wrapper, and plakar as its child
    assert len(wrapped) == 2
    daemons.stop_all()
    for pid in wrapped:
        await gone(pid)
