"""A passphrase never shows: not in API answers, output, events, logs or argv."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import nats
import pytest

from tests.support.stack import TERMINAL, Stack

pytestmark = pytest.mark.integration

SECRET = "Zebra-Quartz-Passphrase-90210"


def argv_of_all_processes() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    return found


async def all_events(url: str) -> list[bytes]:
    """Replay the whole events stream as an external tool would (read-only user)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.subscribe("plakar.events.>", ordered_consumer=True)
    data = []
    try:
        while True:
            msg = await sub.next_msg(timeout=2)
            data.append(msg.data)
            if msg.metadata.num_pending == 0:
                break
    finally:
        await nc.close()
    return data


def test_passphrase_never_leaks(stack: Stack, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):
        (src / f"f{i}").write_bytes(os.urandom(16 * 1024))
    store = stack.store("secret-store", tmp_path / "store", SECRET)
    source = stack.connector("secret-src", "source", str(src), dont_traverse_fs="false")
    created = stack.post(
        "/tasks",
        {"type": "backup", "source_id": source, "store_id": store, "concurrency": 1},
        expect=201,
    )
    seen_running = False
    while True:
        leaked = [a for a in argv_of_all_processes() if SECRET in a]
        assert leaked == [], leaked
        job = stack.get(f"/jobs/{created['job_id']}")
        seen_running |= job["status"] == "running"
        if job["status"] in TERMINAL:
            break
    assert job["status"] == "succeeded"

    answers = [
        stack.client.get(url).text
        for url in (
            "/connectors",
            f"/connectors/{store}",
            f"/connectors/{source}",
            "/tasks",
            "/jobs",
            f"/jobs/{job['id']}",
            f"/jobs/{job['id']}/output",
        )
    ]
    answers.append(stack.client.patch(f"/connectors/{store}", json={"options": {}}).text)
    for text in answers:
        assert SECRET not in text
    assert '"passphrase":"********"' in answers[1]
    assert '"dont_traverse_fs":"false"' in answers[2]  # known not to be a secret
    assert SECRET not in stack.logs()
    events = asyncio.run(all_events(stack.endpoints["events_nats_url"]))
    assert len(events) > 3
    assert not [e for e in events if SECRET.encode() in e]
    # A masked secret sent back unchanged keeps the stored one: the store still opens.
    again = stack.post(f"/tasks/{created['task']['id']}/run", expect=202)
    assert stack.wait_job(again["job_id"])["status"] == "succeeded"
