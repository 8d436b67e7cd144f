"""`plakar-cp connectors|tasks|schedules|jobs …` driving a whole encrypted backup and its
restore, as a script would: the real command in a process of its own, the api found
through endpoints.json or the environment, `--json` read back, a job's output followed
live, and exit statuses that say how a job ended or why the api refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack, many_files

pytestmark = pytest.mark.integration

PASSPHRASE = "cli-store-passphrase-5521"


class Cli:
    def __init__(self, stack: Stack, **env: str) -> None:
        self.env = {**os.environ, "PLAKAR_CP_DATA_DIR": str(stack.data_dir), **env}
        self.env.pop("PLAKAR_CP_API_URL", None)
        self.env.pop("PLAKAR_CP_TOKEN", None)
        self.env.update(env)

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        self.stderr = done.stderr
        return done.stdout

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code))


def test_a_backup_and_its_restore_through_the_command_line(stack: Stack, tmp_path: Path) -> None:
    cli = Cli(stack)  # endpoints.json of the stack's data dir
    source = many_files(tmp_path / "data", 30)
    (source / "notes.txt").write_text("restored through the command line\n")

    src = cli.json("connectors", "create", "--name", "client-src", "--role", "source",
                   "--location", str(source))  # fmt: skip
    store = cli.json("connectors", "create", "--name", "client-store", "--role", "store",
                     "--location", str(tmp_path / "store"),
                     "--option", f"passphrase={PASSPHRASE}")  # fmt: skip
    assert store["options"]["passphrase"] == "********"
    assert cli.json("connectors", "initialize", "client-store")["ok"] is True
    body = json.dumps({"type": "backup", "schedules": [{"recurrence": "daily", "enabled": False}]})
    task = cli.json("tasks", "create", "--body", body, "--name", "client-backup",
                    "--source", "client-src", "--store", store["id"], "--label", "cli")  # fmt: skip
    assert (task["task"]["source_id"], task["job_id"]) == (src["id"], None)

    # Run and follow: every line as it comes, the exit status the job's outcome.
    followed = cli("tasks", "run", "client-backup", "--follow")
    assert "OK ✓" in followed and "notes.txt" in followed
    assert cli.stderr.startswith("job ") and " succeeded: snapshot " in cli.stderr
    [job] = cli.json("jobs", "list", "--task", "client-backup", "--limit", "5")["items"]
    assert job["status"] == "succeeded" and job["snapshot_id"]
    assert "notes.txt" in cli("jobs", "output", job["id"])
    table = cli("jobs", "list", "--task", task["task"]["id"])
    assert table.splitlines()[0].split()[:3] == ["ID", "TYPE", "STATUS"]
    assert job["id"] in table

    # The restore, with its token in the environment rather than endpoints.json.
    endpoints = json.loads((stack.data_dir / "endpoints.json").read_text())
    env = Cli(
        stack,
        PLAKAR_CP_API_URL=endpoints["api_url"],
        PLAKAR_CP_TOKEN=endpoints["api_token"],
        PLAKAR_CP_DATA_DIR=str(tmp_path / "nowhere"),
    )
    dest = env.json("connectors", "create", "--name", "client-dest", "--role", "destination",
                    "--location", str(tmp_path / "restored"))  # fmt: skip
    restore = env.json("tasks", "create", "--type", "restore", "--name", "client-restore",
                       "--store", "client-store", "--destination", dest["id"],
                       "--snapshot", job["snapshot_id"], "--mode", "overwrite",
                       "--schedule", "daily")  # fmt: skip
    job_id = env("tasks", "run", "client-restore").strip()
    ended = env.json("jobs", "wait", job_id, "--timeout", "120")
    assert ended["status"] == "succeeded", ended
    assert (tmp_path / "restored" / "notes.txt").read_text() == (source / "notes.txt").read_text()
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == sorted(
        p.name for p in source.iterdir()
    )
    [schedule] = env.json("schedules", "list", "--task", "client-restore")
    assert schedule["recurrence"] == "daily" and schedule["task_id"] == restore["task"]["id"]
    assert env.json("schedules", "disable", schedule["id"])["enabled"] is False


def test_exit_statuses_say_how_a_job_ended_and_why_the_api_refused(
    stack: Stack, tmp_path: Path
) -> None:
    cli = Cli(stack)
    store = stack.store("client-empty-store", tmp_path / "store")
    check = cli.json("tasks", "create", "--type", "check", "--store", store,
                     "--schedule", '{"recurrence": "daily", "enabled": false}')  # fmt: skip
    # A check of an empty store fails: `run --wait` exits 1, with the reason.
    cli("tasks", "run", check["task"]["id"], "--wait", code=1)
    assert " failed: " in cli.stderr
    [failed] = cli.json("jobs", "list", "--task", check["task"]["id"])["items"]
    # Retried, followed: fails again.
    cli("jobs", "retry", failed["id"], "--follow", code=1)

    # A job that never starts (no runner serves its group): the wait times out, 3.
    idle = cli.json("tasks", "create", "--type", "check", "--store", store,
                    "--runner-group", "client-nobody", "--schedule", "daily")  # fmt: skip
    waiting = cli("tasks", "run", idle["task"]["id"]).strip()
    cli("jobs", "wait", waiting, "--timeout", "1", code=3)
    assert "still queued" in cli.stderr
    assert cli.json("jobs", "cancel", waiting)["status"] == "cancelled"
    cli("jobs", "wait", waiting, code=1)

    # The api's refusals: status 2 and the api's own reason.
    cli("tasks", "create", "--type", "backup", "--store", store, code=2)
    assert "422" in cli.stderr and "source" in cli.stderr
    cli("tasks", "show", "no-such-task", code=2)
    assert "no tasks named 'no-such-task'" in cli.stderr
    viewer = stack.post("/tokens", {"name": "client-viewer", "role": "viewer"}, expect=201)
    token_file = tmp_path / "viewer.token"
    token_file.write_text(viewer["token"] + "\n")
    cli("tasks", "run", check["task"]["id"], "--token-file", str(token_file), code=2)
    assert "403" in cli.stderr and "needs operator" in cli.stderr
    nowhere = Cli(stack, PLAKAR_CP_DATA_DIR=str(tmp_path / "nowhere"))
    nowhere("jobs", "list", code=2)
    assert "no api to talk to" in nowhere.stderr
