"""Fixtures with real parts: NATS with JetStream, PostgreSQL and plakar v1.1.4."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from xdist.scheduler import LoadScopeScheduling

from tests.support.plakar import direct
from tests.support.stack import Stack, running_stack, stack_dir
from tests.support.ui import launched_browser, signed_in

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


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one test: Playwright's synchronous API holds an
    event loop, which the test's own asyncio.run may not meet. Modules without one keep a
    browser for all their tests (`module_browser`)."""
    yield from launched_browser()


@pytest.fixture
def page(stack: Stack, browser: Browser) -> Iterator[Page]:
    """A page of the shared stack, signed in; the test fails on any error of the page's
    scripts."""
    errors: list[str] = []
    page = signed_in(browser, stack, errors=errors)
    yield page
    page.context.close()
    assert errors == []


# The modules go to the xdist workers (`-n 3`) one at a time, the longest first, each to
# the first worker free (longest processing time first): no worker is left with a long
# tail while the others idle, whatever the machine's load or the minute at which the
# schedule tests start. Each worker has its own shared stack. The weights are seconds a
# module took on a fresh clone (--durations=0); a module not listed comes after these.
WEIGHTS = {
    "test_nats_cluster": 134,
    "test_operations": 124,
    "test_schedules": 104,
    "test_runner_secrets": 89,
    "test_snapshot_files": 83,
    "test_reliability": 78,
    "test_freshness": 74,
    "test_ui_output": 71,
    "test_retries": 71,
    "test_ui_snapshots": 70,
    "test_openapi": 60,
    "test_kept_cache": 56,
    "test_streams": 53,
    "test_schedules_failover": 50,
    "test_cli_client": 46,
    "test_runner_groups": 45,
    "test_hostile_jobs": 42,
    "test_prune": 40,
    "test_ui_forms": 39,
    "test_ui_screenshots": 34,
    "test_security": 32,
    "test_roles": 26,
    "test_audit": 26,
    "test_notifications": 18,
    "test_ui": 15,
    "test_up": 14,
    "test_secrets": 13,
    "test_ui_history": 11,
}


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The heaviest modules first; the others (the unit tests) fill the end."""
    items.sort(key=lambda item: -WEIGHTS.get(_module(item.nodeid), 0))


class ByModule(LoadScopeScheduling):  # type: ignore[misc]  # xdist has no type hints
    """Sends the tests of a module to one worker, the modules in the order collected."""

    def _split_scope(self, nodeid: str) -> str:
        return nodeid.split("::", 1)[0]


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ByModule:
    config.option.loadscopereorder = False  # not by their number of tests
    return ByModule(config, log)


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
