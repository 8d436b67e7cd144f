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
    """One `plakar-cp up` shared by the integration tests of a session."""
    with running_stack(tmp_path_factory.mktemp("stack") / "data") as s:
        yield s


def plakar_run(plakar: str, workdir: Path, *args: str, passphrase: str | None = None) -> str:
    """Run plakar directly (to check what the control plane did), with its own
    config and cache dirs; returns stdout."""
    base, env = direct(plakar, workdir, passphrase)
    done = subprocess.run([*base, *args], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, f"plakar {args}: {done.returncode} {done.stdout} {done.stderr}"
    return done.stdout
