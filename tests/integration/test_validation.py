"""Bad input gets a 4xx that names the field, never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOPE = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def ids(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("validation")
    return {
        "src": stack.connector("val-src", "source", str(d)),
        "store": stack.connector("val-store", "store", str(d / "s")),
        "store2": stack.connector("val-store2", "store", str(d / "s2")),
        "dest": stack.connector("val-dest", "destination", str(d / "d")),
    }


CASES: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("connector: no name", {"role": "source", "location": "/x"}, 400, "name"),
    ("connector: bad role", {"name": "a", "role": "bucket", "location": "/x"}, 400, "role"),
    ("connector: relative", {"name": "a", "role": "source", "location": "x/y"}, 422, "location"),
    (
        "connector: option",
        {"name": "a", "role": "source", "location": "/x", "options": {"bad key": "v"}},
        422,
        "options.bad key",
    ),
]

TASKS: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown type", {"type": "archive", "store_id": "{store}"}, 400, "type"),
    ("missing store", {"type": "check"}, 422, "store_id"),
    ("missing connector", {"type": "check", "store_id": NOPE}, 422, "store_id"),
    ("not a uuid", {"type": "check", "store_id": "abc"}, 422, "store_id"),
    (
        "wrong role",
        {"type": "backup", "source_id": "{store}", "store_id": "{store2}"},
        422,
        "source_id",
    ),
    (
        "extra slot",
        {"type": "check", "store_id": "{store}", "source_id": "{src}"},
        422,
        "source_id",
    ),
    (
        "same stores",
        {"type": "sync", "store_id": "{store}", "target_store_id": "{store}"},
        422,
        "target_store_id",
    ),
    ("bad label", {"type": "check", "store_id": "{store}", "labels": ["a b"]}, 422, "labels"),
    ("negated label", {"type": "check", "store_id": "{store}", "labels": ["!x"]}, 422, "labels"),
    (
        "too many labels",
        {"type": "check", "store_id": "{store}", "labels": [f"l{i}" for i in range(33)]},
        422,
        "labels",
    ),
    ("bad window", {"type": "check", "store_id": "{store}", "window": "soon"}, 422, "window"),
    (
        "excludes on a check",
        {"type": "check", "store_id": "{store}", "excludes": ["*.tmp"]},
        422,
        "excludes",
    ),
    *[
        (
            f"exclude {pattern!r}",
            {"type": "backup", "source_id": "{src}", "store_id": "{store}", "excludes": [pattern]},
            422,
            "excludes",
        )
        for pattern in ("[abc", "a\\", "# note", "x\ny", " lead", "!", "", "x" * 257)
    ],
    (
        "freshness too short",
        {"type": "check", "store_id": "{store}", "freshness": "30s"},
        422,
        "freshness",
    ),
    (
        "freshness unreadable",
        {"type": "check", "store_id": "{store}", "freshness": "daily"},
        422,
        "freshness",
    ),
    (
        "retry without delay",
        {"type": "check", "store_id": "{store}", "retry": {"attempts": 2}},
        400,
        "retry.delay",
    ),
    (
        "retry too often",
        {"type": "check", "store_id": "{store}", "retry": {"attempts": 11, "delay": "5m"}},
        422,
        "retry.attempts",
    ),
    (
        "too many excludes",
        {
            "type": "backup",
            "source_id": "{src}",
            "store_id": "{store}",
            "excludes": [f"*.{i}" for i in range(101)],
        },
        422,
        "excludes",
    ),
    (
        "excludes not a list",
        {"type": "backup", "source_id": "{src}", "store_id": "{store}", "excludes": "*.tmp"},
        400,
        "excludes",
    ),
    (
        "window on backup",
        {"type": "backup", "source_id": "{src}", "store_id": "{store}", "window": "1d"},
        422,
        "window",
    ),
    (
        "concurrency 0",
        {"type": "check", "store_id": "{store}", "concurrency": 0},
        422,
        "concurrency",
    ),
    (
        "concurrency text",
        {"type": "check", "store_id": "{store}", "concurrency": "x"},
        400,
        "concurrency",
    ),
    (
        "bad snapshot",
        {
            "type": "restore",
            "store_id": "{store}",
            "destination_id": "{dest}",
            "snapshot_id": "xyz",
        },
        422,
        "snapshot_id",
    ),
    ("unknown field", {"type": "check", "store_id": "{store}", "colour": "red"}, 400, "colour"),
    (
        "restore path with ..",
        {
            "type": "restore",
            "store_id": "{store}",
            "destination_id": "{dest}",
            "restore_path": "/srv/../etc",
        },
        422,
        "restore_path",
    ),
    (
        "restore path on a check",
        {"type": "check", "store_id": "{store}", "restore_path": "/srv"},
        422,
        "restore_path",
    ),
    (
        "restore mode unknown",
        {
            "type": "restore",
            "store_id": "{store}",
            "destination_id": "{dest}",
            "restore_mode": "merge",
        },
        400,
        "restore_mode",
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_connectors(
    stack: Stack, name: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    r = stack.client.post("/connectors", json=body)
    assert r.status_code == status, r.text
    assert r.json().get("field") == field, r.text


@pytest.mark.parametrize(("name", "body", "status", "field"), TASKS, ids=[c[0] for c in TASKS])
def test_bad_tasks(
    stack: Stack, ids: dict[str, str], name: str, body: dict[str, Any], status: int, field: str
) -> None:
    filled = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    r = stack.client.post("/tasks", json=filled)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field, r.text
    assert r.json()["error"]


def test_not_json_and_unknown_ids(stack: Stack) -> None:
    r = stack.client.post(
        "/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    for url in (
        f"/tasks/{NOPE}",
        "/tasks/abc",
        f"/jobs/{NOPE}",
        "/jobs/zzz",
        f"/connectors/{NOPE}",
    ):
        assert stack.client.get(url).status_code == 404
    assert stack.client.post(f"/tasks/{NOPE}/run").status_code == 404
    r = stack.client.get("/jobs", params={"cursor": "!!"})
    assert (r.status_code, r.json()["field"]) == (422, "cursor")
    r = stack.client.get("/jobs", params={"status": "exploded"})
    assert r.status_code == 400


def test_task_lifecycle_and_connector_in_use(
    stack: Stack, ids: dict[str, str], tmp_path: Path
) -> None:
    created = stack.post(
        "/tasks", {"type": "check", "store_id": ids["store"], "name": "nightly"}, expect=201
    )
    task_id = created["task"]["id"]
    assert created["job_id"]
    assert stack.get(f"/tasks/{task_id}")["name"] == "nightly"
    r = stack.client.patch(f"/tasks/{task_id}", json={"labels": ["prod"], "window": "30d"})
    assert r.status_code == 200, r.text
    assert (r.json()["labels"], r.json()["window"], r.json()["name"]) == (
        ["prod"],
        "30d",
        "nightly",
    )
    r = stack.client.patch(f"/tasks/{task_id}", json={"concurrency": 0})
    assert (r.status_code, r.json()["field"]) == (422, "concurrency")
    r = stack.client.delete(f"/connectors/{ids['store']}")
    assert r.status_code == 409
    assert stack.client.delete(f"/tasks/{task_id}").status_code == 204
    assert stack.client.get(f"/tasks/{task_id}").status_code == 404
    dup = stack.client.post(
        "/connectors", json={"name": "val-src", "role": "source", "location": str(tmp_path)}
    )
    assert (dup.status_code, dup.json()["field"]) == (409, "name")
