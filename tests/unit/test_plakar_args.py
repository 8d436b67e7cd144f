import json
from datetime import UTC, datetime
from pathlib import Path

from services.runner import plakar_args as pa
from shared.locations import Role
from shared.models import Connector, Task

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WS = pa.Workspace(config_dir=Path("/w/config"), cache_dir=Path("/w/cache"))
SECRET = "hunter2-very-secret"


def conn(role: Role, location: str, **options: str) -> Connector:
    return Connector(
        id=role,
        name=role,
        role=role,
        location=location,
        options=options,
        created_at=NOW,
    )


def task(**kw: object) -> Task:
    return Task(id="t1", created_at=NOW, **kw)  # type: ignore[arg-type]


BASE = ["plakar", "-configdir", "/w/config", "-cachedir", "/w/cache"]


def test_backup_argv_uses_names_and_tags_once() -> None:
    argv = pa.backup_argv("plakar", WS, task(type="backup", labels=["a", "b"]), 4, job="nightly")
    assert argv == [
        *BASE,
        "-concurrency",
        "4",
        "-trace",
        "snapshotBuilder",
        "at",
        "@store",
        "backup",
        "-job",
        "nightly",
        "-tag",
        "a,b",
        "@source",
    ]


def test_restore_sync_check_argv() -> None:
    plan = pa.RestorePlan(what="ab" * 32, target="/srv/restore")
    assert pa.restore_argv("plakar", WS, 2, plan)[-5:] == [
        "@store",
        "restore",
        "-to",
        "@destination:/srv/restore",
        "ab" * 32,
    ]
    sync = pa.sync_argv("plakar", WS, task(type="sync", labels=["x"]), 3, "2026-01-01T00:00:00Z")
    assert sync[-8:] == [
        "@store",
        "sync",
        "-since",
        "2026-01-01T00:00:00Z",
        "-tag",
        "x",
        "to",
        "@target",
    ]
    assert pa.check_argv("plakar", WS, task(type="check"), 1, None)[-2:] == ["@store", "check"]
    assert pa.check_argv("plakar", WS, task(type="check"), 1, None)[-5:-3] == ["-trace", "snapshot"]
    traced = pa.restore_argv("plakar", WS, 2, plan, trace=True)
    assert traced[-8:-6] == ["-trace", "snapshot"] and "-trace" not in pa.restore_argv(
        "plakar", WS, 2, plan
    )


def test_plakar_finds_a_whole_snapshot_by_full_id_or_the_latest_with_one_label() -> None:
    full = "AB" * 32
    assert pa.plakar_finds_it(task(type="restore", snapshot_id=full))
    assert not pa.plakar_finds_it(task(type="restore", snapshot_id=full[:8]))
    assert not pa.plakar_finds_it(task(type="restore", snapshot_id=full, restore_path="/a"))
    assert pa.plakar_finds_it(task(type="restore"))
    assert pa.plakar_finds_it(task(type="restore", labels=["x"]))
    assert not pa.plakar_finds_it(task(type="restore", labels=["x", "y"]))
    assert not pa.plakar_finds_it(task(type="restore", restore_path="/a"))
    latest = pa.restore_argv("plakar", WS, 2, pa.RestorePlan(what="", target="/r"), True, ["x"])
    assert latest[-5:] == ["restore", "-tag", "x", "-to", "@destination:/r"]
    when = datetime(2026, 12, 1, 21, 5, 9, tzinfo=UTC)
    assert pa.restore_folder("", when, "0123456789") == "restore-20261201-210509-01234567"
    assert pa.restore_folder("ab" * 32, when, "0123456789").startswith("restore-abababab-2026")


def test_create_is_plaintext_without_passphrase() -> None:
    assert pa.create_argv("plakar", WS, encrypted=False)[-1] == "-plaintext"
    assert pa.create_argv("plakar", WS, encrypted=True)[-1] == "create"


def test_secrets_go_to_config_files_only() -> None:
    cs = pa.ConnectorSet(
        store=conn("store", "/s", passphrase=SECRET),
        source=conn("source", "fs:///data"),
        target=conn("store", "/t", passphrase="other"),
    )
    files = pa.config_files(cs)
    stores = json.loads(files["stores.yml"])["stores"]
    assert stores["store"] == {"location": "/s", "passphrase": SECRET}
    assert stores["target"]["passphrase"] == "other"
    assert json.loads(files["sources.yml"])["sources"]["source"]["location"] == "fs:///data"
    argv = pa.backup_argv("plakar", WS, task(type="backup"), 1, job="j")
    assert all(SECRET not in a for a in argv)
