"""Fixtures with real parts: NATS with JetStream, PostgreSQL and plakar v1.1.4."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.plakar import direct
from tests.support.stack import Stack, running_stack

PLAKAR = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "plakar")


@pytest.fixture(scope="session")
def plakar() -> str:
    assert os.access(PLAKAR, os.X_OK), "plakar is missing; run `make setup`"
    return PLAKAR


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One `plakar-cp up` shared by the integration tests of a session (of an xdist
    worker); each test leaves it quiet (see `_quiet_shared_stack`)."""
    with running_stack(tmp_path_factory.mktemp("stack") / "data") as s:
        yield s


@pytest.fixture(autouse=True)
def _quiet_shared_stack(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the shared stack, passed or failed: its schedules deleted,
    its jobs ended, so that no test sees another's firings or finds the runners busy."""
    yield
    if "stack" in request.fixturenames:
        shared: Stack = request.getfixturevalue("stack")
        shared.quiesce()


# Tests that wait on the clock run beside the others (pytest-xdist, `--dist loadgroup`):
# one worker per group, with a shared stack of its own where its tests use one.
GROUPS = {
    "test_schedules_restart": "restart",
    "test_schedules": "minutes",
    "test_schedules_failover": "minutes",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(GROUPS.get(item.path.stem, "main")))


def plakar_run(plakar: str, workdir: Path, *args: str, passphrase: str | None = None) -> str:
    """Run plakar directly (to check what the control plane did), with its own
    config and cache dirs; returns stdout."""
    base, env = direct(plakar, workdir, passphrase)
    done = subprocess.run([*base, *args], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, f"plakar {args}: {done.returncode} {done.stdout} {done.stderr}"
    return done.stdout
