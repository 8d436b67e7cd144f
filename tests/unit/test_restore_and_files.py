"""What a restore restores and where, the paths it takes; a file's preview and the name
of its download (pure)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.api.files import PREVIEW_BYTES, as_text, attachment, head
from services.api.validation import Invalid, check_restore_path
from services.runner import plakar_args as pa
from shared.models import RestorePoint

SNAP = "9c6d6a3d" + "ab" * 28
WS = pa.Workspace(config_dir=Path("/w/config"), cache_dir=Path("/w/cache"))


def test_the_new_folder_is_named_after_snapshot_time_and_job() -> None:
    due = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=timezone(timedelta(hours=2)))
    name = pa.restore_folder(SNAP, due, "1a2b3c4d-0000-4000-8000-000000000000")
    assert name == "restore-9c6d6a3d-20260304-030607-1a2b3c4d"
    # Same snapshot, same second, another job: another folder.
    assert pa.restore_folder(SNAP, due, "ffff0000-0000-4000-8000-000000000000") != name


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (None, "/home/u"),
        ("/home/u", "/home/u"),
        ("/home", "/home/u"),  # above the root: all the snapshot holds
        ("/", "/home/u"),
        ("/home/u/docs", "/home/u/docs"),
    ],
)
def test_restore_source(path: str | None, source: str) -> None:
    assert pa.restore_source("/home/u", path) == source


@pytest.mark.parametrize("path", ["/etc", "/home/user", "/home/u2/docs"])
def test_restore_source_outside_the_snapshot(path: str) -> None:
    with pytest.raises(pa.RestoreOutside, match="not in the snapshot"):
        pa.restore_source("/home/u", path)


@pytest.mark.parametrize(
    ("root", "path", "is_dir", "folder", "what", "target"),
    [
        # The whole snapshot: into the destination, or a new folder of it.
        ("/home/u", "/home/u", True, None, SNAP, "/srv/r"),
        ("/home/u", "/home/u", True, "new", SNAP, "/srv/r/new"),
        # A folder keeps its place below the root (plakar writes its content there).
        ("/home/u", "/home/u/docs/x", True, None, f"{SNAP}:/home/u/docs/x", "/srv/r/docs/x"),
        ("/home/u", "/home/u/docs/x", True, "new", f"{SNAP}:/home/u/docs/x", "/srv/r/new/docs/x"),
        # A file goes into its folder's place (plakar writes the file there).
        (
            "/home/u",
            "/home/u/docs/a.txt",
            False,
            "new",
            f"{SNAP}:/home/u/docs/a.txt",
            "/srv/r/new/docs",
        ),
        ("/home/u", "/home/u/a.txt", False, None, f"{SNAP}:/home/u/a.txt", "/srv/r"),
        # A snapshot of /.
        ("/", "/etc/ssh", True, "new", f"{SNAP}:/etc/ssh", "/srv/r/new/etc/ssh"),
    ],
)
def test_restore_plan(
    root: str, path: str, is_dir: bool, folder: str | None, what: str, target: str
) -> None:
    point = RestorePoint(root=root, kind="directory" if is_dir else "file")
    plan = pa.restore_plan(SNAP, point, path, "/srv/r", folder)
    assert (plan.what, plan.target) == (what, target)


def test_cat_argv_names_the_store_and_the_file() -> None:
    assert pa.cat_argv("plakar", WS, "9c6d6a3d", "/a b/c")[-4:] == [
        "at",
        "@store",
        "cat",
        "9c6d6a3d:/a b/c",
    ]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/", "/"),
        ("/srv", "/srv"),
        ("/srv/data/", "/srv/data"),
        ("/a/.b/c..d/...", "/a/.b/c..d/..."),
    ],
)
def test_restore_paths_taken(given: str, kept: str) -> None:
    assert check_restore_path(given) == kept


@pytest.mark.parametrize(
    "path",
    ["", "srv", "/srv/../etc", "/srv/./x", "/..", "//srv", "/srv//x", "/a\nb", "/" + "x" * 4096],
)
def test_restore_paths_refused(path: str) -> None:
    with pytest.raises(Invalid) as e:
        check_restore_path(path)
    assert e.value.field == "restore_path"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def test_head_stops_past_the_limit() -> None:
    assert asyncio.run(head(_chunks(b"abc", b"def"), 10)) == (b"abcdef", False)
    assert asyncio.run(head(_chunks(b"abc", b"def"), 6)) == (b"abcdef", False)
    assert asyncio.run(head(_chunks(b"abc", b"def", b"never read"), 4)) == (b"abcd", True)
    assert PREVIEW_BYTES == 1 << 20


def test_text_or_not() -> None:
    assert as_text("héllo\n".encode(), complete=True) == "héllo\n"
    assert as_text(b"", complete=True) == ""
    assert as_text(b"a\0b", complete=True) is None
    assert as_text(b"\xff\xfe", complete=True) is None
    # A character cut by the limit is left out; cut at the real end, it is not text.
    assert as_text("aé".encode()[:-1], complete=False) == "a"
    assert as_text("aé".encode()[:-1], complete=True) is None


def test_download_names_the_file() -> None:
    assert attachment("/srv/report.pdf") == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert attachment('/x/ré"sumé;.txt') == (
        "attachment; filename=\"r__sum__.txt\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9%3B.txt"
    )
    assert attachment("/") == "attachment; filename=\"file\"; filename*=UTF-8''file"
