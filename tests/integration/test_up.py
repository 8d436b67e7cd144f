"""`plakar-cp up`: endpoints, a restart that keeps data, and no process left behind."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.stack import running_stack, stack_dir

pytestmark = pytest.mark.integration


def _processes_under(path: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if str(path) in line]


def test_restart_keeps_data_and_stops_cleanly(tmp_path: Path) -> None:
    data = stack_dir("up")
    with running_stack(data, runners=1) as first:
        # Ready means ready: a connector action right away finds a runner.
        cid = first.connector("kept", "source", str(tmp_path))
        assert first.post(f"/connectors/{cid}/test", expect=200)["ok"] is True
        endpoints = json.loads((data / "endpoints.json").read_text())
        assert set(endpoints) == {"api_url", "ui_url", "api_token", "events_nats_url"}
        assert stat.S_IMODE(os.stat(data / "endpoints.json").st_mode) == 0o600
        assert endpoints["events_nats_url"].startswith("nats://events:")
        token = first.token
    assert first.process.returncode == 0
    assert _processes_under(data) == []

    # Started again at once: the services of the first run still look alive in NATS for
    # a few seconds, yet "ready" waits for the new runners themselves.
    with running_stack(data, runners=1) as second:
        assert second.post(f"/connectors/{cid}/test", expect=200)["ok"] is True
        assert second.token == token
        assert second.get(f"/connectors/{cid}")["name"] == "kept"
    assert _processes_under(data) == []
