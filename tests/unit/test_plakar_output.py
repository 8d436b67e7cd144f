from services.runner.plakar_output import OutputState, parse_full_id, parse_ls, parse_size
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


def test_full_id_from_info() -> None:
    assert parse_full_id(real.INFO.splitlines()) == (
        "52e0e95afaebc3041fdf4c10821bfa9c668c48ab4cda01b7d5e19db007ac6798"
    )
    assert parse_full_id(["nothing"]) is None


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
