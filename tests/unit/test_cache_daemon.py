"""What the runner checks before a kept cache daemon serves another job
(services/runner/cache_daemon.py; the daemon itself: tests/integration/test_cache_daemon.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from services.runner import cache_daemon
from shared.models import Connector


def store(location: str, **options: str) -> Connector:
    return Connector(
        id="s",
        name="s",
        role="store",
        location=location,
        options=options,
        created_at=datetime.now(UTC),
    )


def test_a_stores_settings_digest_changes_with_any_of_them() -> None:
    base = cache_daemon.store_settings(store("/a", passphrase="p", x="1"))
    assert base == cache_daemon.store_settings(store("/a", x="1", passphrase="p"))
    assert base != cache_daemon.store_settings(store("/b", passphrase="p", x="1"))
    assert base != cache_daemon.store_settings(store("/a", passphrase="q", x="1"))
    assert base != cache_daemon.store_settings(store("/a", passphrase="p"))


async def test_a_program_replaced_on_disk_is_told_apart(tmp_path: Path) -> None:
    program = tmp_path / "sleep"
    shutil.copy("/bin/sleep", program)
    proc = await asyncio.create_subprocess_exec(str(program), "30")
    try:
        assert not cache_daemon._replaced(proc.pid)
        shutil.copy("/bin/sleep", tmp_path / "new")
        os.replace(tmp_path / "new", program)  # as an upgrade installs a new version
        assert cache_daemon._replaced(proc.pid)
    finally:
        proc.kill()
        await proc.wait()
    assert cache_daemon._replaced(proc.pid)  # no such process: nothing to reuse
