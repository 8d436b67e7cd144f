"""Fixtures with real parts: NATS with JetStream, PostgreSQL and plakar v1.1.4."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from xdist.scheduler import LoadScopeScheduling

from tests.support.plakar import direct
from tests.support.stack import Stack, running_stack, stack_dir
from tests.support.ui import signed_in

PLAKAR = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "plakar")


@pytest.fixture(scope="session")
def plakar() -> str:
    assert os.access(PLAKAR, os.X_OK), "plakar is missing; run `make setup`"
    return PLAKAR


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """One `plakar-cp up` shared by the integration tests of a session (of an xdist
    worker); each test leaves it quiet (see `_quiet_shared_stack`)."""
    with running_stack(stack_dir("shared")) as s:
        yield s


@pytest.fixture(autouse=True)
def _quiet_shared_stack(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the shared stack, passed or failed: its schedules deleted,
    its jobs ended, so that no test sees another's firings or finds the runners busy."""
    yield
    if "stack" in request.fixturenames:
        shared: Stack = request.getfixturevalue("stack")
        shared.quiesce()


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# The CPU controller's group of this machine's processes (cgroup v1).
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")


@contextmanager
def _favoured() -> Iterator[None]:
    """Processes started inside get ten times the CPU share of the stack's and the other
    test workers' processes: a user's browser runs on the user's machine, not on the two
    cores the server and the tests share here. A CPU group does it (Chromium sets its
    processes' niceness itself); where none can be made, they start as equals."""
    group = CPU_CGROUP / "plakar-cp-test-browsers"  # one for every run, kept
    me = str(os.getpid())
    try:
        group.mkdir(exist_ok=True)
        (group / "cpu.shares").write_text("10240")
        (group / "cgroup.procs").write_text(me)
    except OSError:
        yield
        return
    try:
        yield  # children started here stay in the group
    finally:
        (CPU_CGROUP / "cgroup.procs").write_text(me)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (for one test: Playwright's synchronous API holds an
    event loop, which the other tests' asyncio.run may not meet)."""
    with _favoured():  # Playwright's driver and Chromium stay favoured
        p = sync_playwright().start()
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()
        p.stop()


@pytest.fixture
def page(stack: Stack, browser: Browser) -> Iterator[Page]:
    """A page of the shared stack, signed in; the test fails on any error of the page's
    scripts."""
    errors: list[str] = []
    page = signed_in(browser, stack, errors=errors)
    yield page
    page.context.close()
    assert errors == []


# Tests that wait on the clock run beside the others (pytest-xdist, `-n 3`): one worker
# per group, each with a shared stack of its own where its tests use one: the schedule
# tests that wait for real minute boundaries; the other fault tests on stacks of their
# own; everything else. Modules are moved between them to balance their times.
GROUPS = {
    # Balanced by their sums under --durations=0 on a fresh clone (main 647 s, clock 619 s,
    # faults 522 s before this change). A fourth worker made the run slower: the two cores
    # are busy already.
    "test_schedules": "clock",
    "test_nats_cluster": "clock",
    # Wait a retry's minute, a freshness window's.
    "test_retries": "clock",
    "test_freshness": "clock",
    "test_prune": "clock",
    "test_ui_snapshots": "clock",
    "test_cli_client": "clock",
    "test_reliability": "faults",
    "test_hostile_jobs": "faults",
    "test_security": "faults",
    "test_runner_secrets": "faults",
    "test_kept_cache": "faults",
    "test_schedules_failover": "faults",
    "test_snapshot_files": "faults",
    "test_runner_groups": "faults",
    "test_secrets": "faults",
    "test_streams": "faults",
}


class ByGroup(LoadScopeScheduling):  # type: ignore[misc]  # xdist has no type hints
    """Sends all the tests of a group to one worker."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        return GROUPS.get(module, "main")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ByGroup:
    return ByGroup(config, log)


def plakar_run(plakar: str, workdir: Path, *args: str, passphrase: str | None = None) -> str:
    """Run plakar directly (to check what the control plane did), with its own
    config and cache dirs; returns stdout."""
    base, env = direct(plakar, workdir, passphrase)
    done = subprocess.run([*base, *args], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, f"plakar {args}: {done.returncode} {done.stdout} {done.stderr}"
    return done.stdout


def snapshot_paths(plakar: str, workdir: Path, store: Path, snapshot: str, path: str) -> list[str]:
    """Every path at and below `path` in a snapshot, as plakar itself lists them."""
    listing = plakar_run(
        plakar, workdir, "at", str(store), "ls", "-recursive", f"{snapshot}:{path}"
    )
    return [line.split()[-1] for line in listing.splitlines()]
