from services.runner.plakar_output import OutputState, parse_ls, parse_size, snapshot_of
from tests.unit import plakar_lines as real


def feed(text: str) -> OutputState:
    out = OutputState()
    for line in text.splitlines():
        out.feed(line)
    return out


def test_backup_lines() -> None:
    out = feed(real.BACKUP)
    assert out.ok_items == 9
    assert out.short_id == "d8378df7"
    assert out.result_seen and out.errors == 0
    assert out.bytes_out == int(1.2 * 1024 * 1024)  # "out: 1.2 MiB": what the store grew by
    assert out.short_ids == {"d8378df7"}
    assert out.error_lines == []


def test_result_with_errors_counts_even_without_ko_lines() -> None:
    out = feed("d8378df7: backup completed with 3 errors in 1s (in: 0 B, out: 1 KiB)")
    assert out.result_seen and out.errors == 3


def test_ko_lines_count_as_errors() -> None:
    out = feed("abcdef01: KO ✘ /etc/shadow: permission denied")
    assert out.failed_items == 1 and out.errors == 1


def test_sync_lines() -> None:
    out = feed(real.SYNC)
    assert out.errors == 0 and out.error_lines == []
    assert feed("error: failed to synchronize snapshot abc: boom").errors == 1


def test_fatal_line_is_kept() -> None:
    out = feed(real.OPEN_FAILED)
    assert out.error_lines == [real.OPEN_FAILED]


FULL = "eef47b9c4f08a576ec28861311425fb3c5a58d0039bb4733b46b614413cddbf7"
OTHER = "d754a23d5f19aa43eeb3cedc6b1e8f1ae2ad682fed7cdb9ff58b03ede61ba89a"


def test_full_id_of_a_backup_from_its_trace_line() -> None:
    # What plakar v1.1.4 prints with `-trace snapshotBuilder`: the result, then the close.
    out = feed(
        "eef47b9c: OK ✓ /tmp/src/a\n"
        "eef47b9c: backup completed without errors in 28ms (in: 0 B, out: 888 KiB)\n"
        f"trace: snapshotBuilder: {FULL}: Close(): eef47b9c"
    )
    assert snapshot_of("backup", out) == FULL
    assert out.error_lines == []


def test_a_backup_that_committed_nothing_has_no_snapshot() -> None:
    # plakar closes (and traces) the snapshot it was building even when the backup failed.
    out = feed(
        "eef47b9c: OK ✓ /tmp/src/a\n"
        f"trace: snapshotBuilder: {FULL}: Close(): eef47b9c\n"
        "/usr/bin/plakar: failed to backup source: boom"
    )
    assert snapshot_of("backup", out) is None
    assert out.error_lines == ["/usr/bin/plakar: failed to backup source: boom"]


def test_full_id_of_the_one_snapshot_checked_among_those_plakar_loaded() -> None:
    # `-trace snapshot`: plakar loads (and closes) every snapshot while it selects.
    lines = [
        f"trace: snapshot: repository.GetSnapshot({OTHER})",
        "trace: snapshot: d754a23d: Load()",
        f"trace: snapshot: {OTHER}: Close(): d754a23d",
        f"trace: snapshot: {FULL}: Close(): eef47b9c",
        "eef47b9c: OK ✓ /tmp/src",
        "eef47b9c: check completed without errors in 3ms (in: 2.2 KiB, out: 0 B)",
    ]
    out = feed("\n".join(lines))
    assert snapshot_of("check", out) == FULL
    assert snapshot_of("restore", feed("\n".join(lines[:-1]))) == FULL
    assert out.error_lines == [] and out.ok_items == 1
    assert snapshot_of("check", feed("\n".join(lines[:4]))) is None  # nothing checked
    assert snapshot_of("sync", out) is None


def test_ls_with_and_without_tags() -> None:
    first, second = parse_ls(real.LS.splitlines())
    assert first.id.startswith("d8378df7") and first.tags == ("t1",)
    assert first.size == 98 * 1024 and first.root == "/tmp/cap/src"
    assert second.tags == () and second.created_at == "2026-11-24T04:56:26Z"


def test_sizes() -> None:
    assert parse_size("0 B") == 0
    assert parse_size("2.9 KiB") == int(2.9 * 1024)
    assert parse_size("nonsense") is None


def test_terminal_prompt_is_seen() -> None:
    # What plakar v1.1.4 loops on when a sync target's passphrase is not configured.
    out = feed("destination store passphrase: \ninappropriate ioctl for device")
    assert out.prompt == "destination store passphrase"
