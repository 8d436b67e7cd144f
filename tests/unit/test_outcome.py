import pytest

from services.runner.outcome import decide
from services.runner.plakar_output import OutputState
from tests.unit import plakar_lines as real


def feed(text: str) -> OutputState:
    out = OutputState()
    for line in text.splitlines():
        out.feed(line)
    return out


def test_clean_backup_succeeds() -> None:
    assert decide("backup", 0, feed(real.BACKUP)).status == "succeeded"


def test_partial_failure_with_exit_zero_fails() -> None:
    out = feed("d8378df7: backup completed with 2 errors in 1s (in: 0 B, out: 1 KiB)")
    o = decide("backup", 0, out)
    assert o.status == "failed" and o.error == "plakar reported 2 errors"


def test_failed_sync_with_exit_zero_fails() -> None:
    o = decide("sync", 0, feed("error: failed to synchronize snapshot 1234: boom"))
    assert o.status == "failed"


def test_backup_without_result_line_fails() -> None:
    assert decide("backup", 0, OutputState()).error == "plakar printed no backup result"


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (65, real.CHECK_CORRUPT, "check found corruption: check failed for 1 snapshot"),
        (66, real.OPEN_FAILED, "store cannot be opened: failed to open the repository"),
        (77, real.WRONG_PASSPHRASE, "wrong passphrase or decryption failure: failed to unlock"),
        (78, "", "incompatible store version"),
        (3, "", "plakar exited with code 3"),
    ],
)
def test_exit_codes_explain_themselves(code: int, text: str, expected: str) -> None:
    o = decide("check", code, feed(text))
    assert o.status == "failed"
    assert o.error is not None and o.error.startswith(expected)


def test_cancel_wins() -> None:
    o = decide("backup", -2, OutputState(), cancelled_by="alice")
    assert o.status == "cancelled" and o.error == "cancelled by alice"


def test_check_of_nothing_is_a_failure() -> None:
    o = decide("check", 0, OutputState())
    assert o.status == "failed"
    assert o.error == "no snapshot matched the window and labels: nothing was checked"


def test_prompt_is_a_clear_failure() -> None:
    out = OutputState()
    out.feed("destination store passphrase: ")
    o = decide("sync", -9, out)
    assert o.status == "failed"
    assert o.error is not None and o.error.startswith("plakar asked for the destination store")
