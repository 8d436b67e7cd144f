import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.api.validation import Invalid, check_freshness, check_retry
from services.runner.concurrency import recommended_concurrency
from services.runner.plakar_output import SnapshotEntry
from services.runner.selection import SelectionError, select_restore_snapshot
from shared import claims, freshness
from shared.durations import DURATION_PATTERN, DurationError, format_duration, parse_duration
from shared.excludes import EXCLUDE_PATTERN, exclude_problem
from shared.ids import new_id
from shared.labels import LABEL_PATTERN, label_problem
from shared.models import RetryPolicy
from shared.retries import retry_job_id
from shared.secrets import MASK, mask_options, redact


def test_every_option_is_a_secret_unless_known_not_to_be() -> None:
    options = {"passphrase": "x", "client_secret": "y", "access_token": "z", "credentials": "c"}
    assert mask_options({**options, "dont_traverse_fs": "true"}) == {
        **dict.fromkeys(options, MASK),
        "dont_traverse_fs": "true",
    }
    assert redact("pass=abcabc and abc", ["abc", "abcabc"]) == f"pass={MASK} and {MASK}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("1d12h", 129600),
        ("P30D", 30 * 86400),
        ("PT12H", 43200),
        ("P1DT12H", 129600),
        ("p1w", 604800),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "30s", "PT30S", "1x", "P", "PT", "d", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_duration_format() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(129600) == "1d12h"


def test_labels() -> None:
    assert label_problem("nightly") is None
    assert label_problem("a" * 65) and label_problem("") and label_problem("a b")
    assert label_problem("a,b") and label_problem("!x")


def test_concurrency_is_positive() -> None:
    assert recommended_concurrency("backup", None) == 2
    assert recommended_concurrency("check", 8) == 8
    assert recommended_concurrency("backup", 8) == 16


# Newest first, as plakar lists them; the two newest share their printed second.
SNAPS = [
    SnapshotEntry("bb" * 32, "2026-01-03T00:00:00Z", 1, "/", ()),
    SnapshotEntry("ab" * 32, "2026-01-03T00:00:00Z", 1, "/", ("x", "y")),
    SnapshotEntry("aa" * 32, "2026-01-01T00:00:00Z", 1, "/", ("x",)),
]


def test_restore_selection() -> None:
    assert select_restore_snapshot(SNAPS, None, []).id == "bb" * 32
    assert select_restore_snapshot(SNAPS, None, ["x"]).id == "ab" * 32
    assert select_restore_snapshot(SNAPS, "aaaa", []).id == "aa" * 32
    with pytest.raises(SelectionError, match="matches 2"):
        select_restore_snapshot(SNAPS, "a", [])
    with pytest.raises(SelectionError, match="no snapshot matches"):
        select_restore_snapshot(SNAPS, "cc", [])
    with pytest.raises(SelectionError, match="carrying z"):
        select_restore_snapshot(SNAPS, None, ["z"])


def test_claims() -> None:
    assert claims.decide(None, 3) == claims.Run(1)
    running = claims.Claim(state="running", attempt=1, runner="r1")
    assert claims.decide(running, 3) == claims.Run(2)
    last = claims.Claim(state="running", attempt=3, runner="r1")
    assert isinstance(claims.decide(last, 3), claims.Finish)
    # The holder is alive: the message came back only because NATS was away.
    assert claims.decide(running, 3, holder_alive=True) == claims.Wait()
    # Its own claim, whose answer it never got: that attempt never ran plakar.
    assert claims.decide(running, 3, mine=True) == claims.Run(1)
    assert claims.decide(last, 3, mine=True) == claims.Run(3)
    assert claims.decide(running, 3, holder_alive=True, mine=True) == claims.Wait()
    assert claims.decide(claims.Claim(state="done", attempt=1), 3) == claims.Drop()
    assert claims.decide(claims.Claim(state="cancelled", attempt=0), 3) == claims.Drop()
    lost = claims.decide(claims.Claim(state="cancelled", attempt=2, cancel_by="bob"), 3)
    assert lost == claims.Finish(2, "cancelled", "cancelled by bob")


@given(st.text(max_size=70))
def test_the_label_pattern_states_the_label_rule(label: str) -> None:
    stated = 1 <= len(label) <= 64 and re.fullmatch(LABEL_PATTERN, label) is not None
    assert (label_problem(label) is None) == stated


@given(st.from_regex(r"\s?[PpTt0-9dhmswDHMSW]{0,12}\s?", fullmatch=True))
def test_the_duration_pattern_takes_every_duration_read(text: str) -> None:
    try:
        parse_duration(text)
    except DurationError:
        return
    assert re.fullmatch(DURATION_PATTERN, text), text


def test_new_ids_are_random_version_4_uuids_as_text() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    "pattern",
    [
        "*.tmp",
        "cache/",
        "/home/*/Downloads",
        "!keep.tmp",
        "**/node_modules",
        "[a-z]*.log",
        "\\#not-a-comment",
        "a\\[b",
        "[!ab]x",
        "name with spaces",
    ],
)
def test_excludes_taken(pattern: str) -> None:
    assert exclude_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("", "1 to 256"),
        ("x" * 257, "1 to 256"),
        ("# comment", "not a comment"),
        (" lead", "no blank at either end"),
        ("trail ", "no blank at either end"),
        ("a\nb", "no control character"),
        ("!", "names nothing"),
        ("!/", "names nothing"),
        ("[abc", "no ] closes"),
        ("[]", "no ] closes"),
        ("[a/b]", "no ] closes"),
        ("dir\\", "escapes nothing"),
    ],
)
def test_excludes_refused(pattern: str, why: str) -> None:
    problem = exclude_problem(pattern)
    assert problem is not None and why in problem


@given(st.text(max_size=300))
def test_the_exclude_pattern_states_part_of_the_exclude_rule(pattern: str) -> None:
    if exclude_problem(pattern) is None:
        assert re.fullmatch(EXCLUDE_PATTERN, pattern)


def test_a_job_is_retried_by_one_job_of_its_own() -> None:
    job = str(uuid.uuid4())
    assert retry_job_id(job) == retry_job_id(job.upper())
    assert retry_job_id(job) != retry_job_id(retry_job_id(job))
    assert uuid.UUID(retry_job_id(job)).version == 5


@pytest.mark.parametrize(
    ("attempts", "delay", "field", "kept"),
    [
        (1, "1m", None, "1m"),
        (10, "P1D", None, "1d"),
        (3, " 90m ", None, "1h30m"),
        (0, "5m", "retry.attempts", None),
        (11, "5m", "retry.attempts", None),
        (2, "30s", "retry.delay", None),
        (2, "1d1m", "retry.delay", None),
        (2, "soon", "retry.delay", None),
    ],
)
def test_retry_policies(attempts: int, delay: str, field: str | None, kept: str | None) -> None:
    policy = RetryPolicy(attempts=attempts, delay=delay)
    if field is None:
        assert check_retry(policy) == RetryPolicy(attempts=attempts, delay=kept or delay)
    else:
        with pytest.raises(Invalid) as refused:
            check_retry(policy)
        assert refused.value.field == field


def test_freshness_is_judged_on_the_last_success_or_the_creation() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    assert freshness.state(None, None, created, created + 9 * day) is None
    assert freshness.state(day, None, created, created + day / 2) == "fresh"
    assert freshness.state(day, None, created, created + day) == "stale"
    success = created + 3 * day
    assert freshness.state(day, success, created, success + day - timedelta(seconds=1)) == "fresh"
    assert freshness.stale_at(day, success, created) == success + day


@pytest.mark.parametrize(
    ("given", "kept"), [("26h", "1d2h"), ("1m", "1m"), ("P366D", "366d"), ("", None), (None, None)]
)
def test_freshness_windows_taken(given: str | None, kept: str | None) -> None:
    assert check_freshness(given) == kept


@pytest.mark.parametrize("given", ["30s", "367d", "soon"])
def test_freshness_windows_refused(given: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_freshness(given)
    assert refused.value.field == "freshness"
