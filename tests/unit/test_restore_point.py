"""What a restore restores, as the runner learns it from plakar's listings (plakar's
answers played back: the integration tests run the real one)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.runner import plakar_args as pa
from services.runner.restore_point import Located, StoreUnreadable, Unresolved, locate
from shared.models import RestorePoint
from tests.unit import plakar_lines as real

WS = pa.Workspace(config_dir=Path("/w/config"), cache_dir=Path("/w/cache"))
NEWEST = "d8378df7a4e2eef4c9a2d832d3d7b507f47b058fd05134cc86704f3651933782"
ROOT = "/tmp/cap/src"


def entry(mode: str, name: str) -> str:
    return f"2026-11-24T05:12:04Z {mode}     root     root    4.0 KiB {name}"


# The snapshot's root holds a folder `twin` that holds only a file `twin`, and a file.
LISTINGS = {
    "ls": (0, real.LS.splitlines()),
    f"ls {NEWEST}:{ROOT}": (0, [entry("drwxr-xr-x", "twin"), entry("-rw-r--r--", "a.txt")]),
    f"ls {NEWEST}:{ROOT}/twin": (0, [entry("-rw-r--r--", "twin")]),
}


def found(wanted: str | None, path: str | None, labels: tuple[str, ...] = ()) -> Located:
    asked: list[str] = []

    async def run(argv: list[str]) -> tuple[int, list[str]]:
        at = argv.index("@store") + 1
        key = " ".join(argv[at:])
        asked.append(key)
        return LISTINGS["ls" if key.startswith("ls -uuid") else key]

    located = asyncio.run(locate(run, "plakar", WS, wanted, labels, path))
    # Two listings at most: the snapshots, then the path's parent.
    assert asked[0].startswith("ls -uuid -tags") and len(asked) <= 2
    return located


def test_a_folder_holding_a_file_of_its_name_is_a_folder() -> None:
    located = found(NEWEST[:6], f"{ROOT}/twin")
    assert located == Located(NEWEST, f"{ROOT}/twin", RestorePoint(root=ROOT, kind="directory"))
    inner = found(NEWEST, f"{ROOT}/twin/twin")
    assert inner.point.kind == "file"


def test_the_whole_snapshot_or_above_its_root_is_its_root() -> None:
    for path in (None, "/tmp", ROOT):
        located = found(NEWEST, path)
        assert (located.path, located.point.kind) == (ROOT, "directory")


def test_the_latest_carrying_the_labels() -> None:
    assert found(None, None, ("t1",)).snapshot_id == NEWEST
    assert found(None, None).snapshot_id == NEWEST


@pytest.mark.parametrize(
    ("wanted", "path", "field", "message"),
    [
        ("0000", None, "snapshot_id", "no snapshot matches 0000"),
        (None, None, "snapshot_id", "no snapshot carrying t9 to restore"),
        (NEWEST, "/etc", "restore_path", "/etc is not in the snapshot"),
        (NEWEST, f"{ROOT}/gone", "restore_path", f"{ROOT}/gone is not in snapshot d8378df7"),
    ],
)
def test_what_is_not_there_names_its_field(
    wanted: str | None, path: str | None, field: str, message: str
) -> None:
    labels = ("t9",) if wanted is None else ()
    with pytest.raises(Unresolved, match=message) as e:
        found(wanted, path, labels)
    assert e.value.field == field


def test_a_store_that_cannot_be_listed() -> None:
    async def run(argv: list[str]) -> tuple[int, list[str]]:
        return 1, [real.WRONG_PASSPHRASE]

    with pytest.raises(StoreUnreadable, match="failed to unlock repository"):
        asyncio.run(locate(run, "plakar", WS, NEWEST, (), None))
