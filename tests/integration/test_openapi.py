"""The OpenAPI document tells the truth: schemathesis, with every check, against a live
stack whose locations are confined to a temporary directory (the cases it generates
create connectors, initialize stores and run tasks for real)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import Stack, running_stack, stack_dir

CONFIG = Path(__file__).with_name("schemathesis.toml")


def objects(stack: Stack, allowed: Path) -> dict[str, str]:
    """A store with a snapshot, a source, a task with a schedule, a job: the ids the
    operations on one object use (the config names them)."""
    (allowed / "src").mkdir()
    (allowed / "src" / "a.txt").write_text("a file\n")
    store = stack.store("st-store", allowed / "store")
    source = stack.connector("st-src", "source", str(allowed / "src"))
    task = {"name": "st-task", "type": "backup", "source_id": source, "store_id": store}
    task_id = stack.post("/tasks", task, expect=201)["task"]["id"]
    schedule = {"recurrence": "daily", "start_at": "2030-01-01T00:00:00Z"}
    schedule_id = stack.post(f"/tasks/{task_id}/schedules", schedule, expect=201)["id"]
    job = stack.wait_job(stack.post(f"/tasks/{task_id}/run", expect=202)["job_id"])
    assert job["status"] == "succeeded", job
    # Nothing listens on port 9 here: a test sending fails at once.
    hook = {"name": "st-hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}
    target_id = stack.post("/notifications/targets", hook, expect=201)["id"]
    rule = {"target_id": target_id, "events": ["job.failed"], "task_id": task_id}
    rule_id = stack.post("/notifications/rules", rule, expect=201)["id"]
    return {
        "ST_TARGET_ID": target_id,
        "ST_RULE_ID": rule_id,
        "ST_CONNECTOR_ID": store,
        "ST_TASK_ID": task_id,
        "ST_SCHEDULE_ID": schedule_id,
        "ST_JOB_ID": job["id"],
        "ST_SNAPSHOT_ID": job["snapshot_id"],
    }


# Schemathesis runs real plakar for the actions it calls (key derivations of seconds each
# on an encrypted store): minutes on a loaded machine. Its own bound is the run's.
RUN_TIMEOUT_S = 540


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_the_api_answers_as_its_document_says(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    env = {"PLAKAR_CP_ALLOWED_PATHS": str(allowed)}
    with running_stack(stack_dir("openapi"), runners=1, env=env) as stack:
        ids = objects(stack, allowed)
        st = [str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG)]
        schema = stack.endpoints["api_url"].removesuffix("/api/v1") + "/schema/openapi.json"
        run = subprocess.run(
            [*st, "--no-color", "run", schema, "--checks", "all"],
            env={**os.environ, **ids, "PLAKAR_CP_API_TOKEN": stack.token},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert run.returncode == 0, run.stdout[-30000:] + run.stderr[-5000:]
        # Nothing it sent harmed the stack.
        assert stack.get("/health")["status"] == "ok"
