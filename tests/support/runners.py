"""Runner processes of a test's own beside a stack's (`plakar-cp runner --group --slots`),
as an operator starts one on another host."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.infra import external_services
from tests.support.stack import REPO, Stack, stop


def runner_nats_url(stack: Stack) -> str:
    """The NATS URL of the stack's runner user."""
    external = external_services()
    if external:
        return external.nats_url
    host = stack.endpoints["events_nats_url"].rsplit("@", 1)[1]
    return f"nats://runner:{stack.credentials()['runner']}@{host}"


def live_group(stack: Stack, group: str) -> dict[str, Any] | None:
    """The group as GET /runner-groups lists it, if any of its runners is live."""
    groups: list[dict[str, Any]] = stack.get("/runner-groups")
    return next((g for g in groups if g["name"] == group), None)


@contextmanager
def extra_runner(
    stack: Stack, work: Path, name: str, group: str, slots: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """A runner `name` of `group` with `slots`, started and announced; stopped (SIGTERM)
    at the end unless the test ended it. Its log is work/`name`.log."""
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {
        **os.environ,
        "PLAKAR_CP_NATS_URL": runner_nats_url(stack),
        "PLAKAR_CP_WORK_DIR": str(work / name),
        "PLAKAR_CP_INSTANCE_ID": name,
        "PLAKAR_CP_ACK_WAIT": "6",
    }
    env.pop("PLAKAR_CP_DATABASE_URL", None)
    argv = [sys.executable, "-m", "services.cli", "runner", "--group", group]
    log = open(work / f"{name}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [*argv, "--slots", str(slots)], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while not any(r["id"] == name for r in stack.get("/health", expect=None)["runners"]):
            assert proc.poll() is None, (work / f"{name}.log").read_text()
            assert time.monotonic() < deadline, f"runner {name} did not announce itself"
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)
        log.close()
