"""Notifications' rules (pure): what a job's end tells, the signature, the backoff, the
checks and the masking of targets."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from services.api.notify.targets import check_target, kept_secret, masked, masked_url
from services.api.validation import Invalid
from shared.events import JobFinished
from shared.models import NotificationTarget, SmtpServer, TargetCreate
from shared.notifications import (
    MAX_ATTEMPTS,
    JobFailedNotice,
    JobRecoveredNotice,
    describe,
    job_notice,
    retry_delay,
    signature,
)
from shared.secrets import MASK

JOB = "6f1c2a4e-8d3b-4f7a-9c0e-1b2d3e4f5a6b"
TASK = "0b9e8d7c-6f5a-4e3d-8c2b-1a0f9e8d7c6b"


def finished(status: str) -> JobFinished:
    return JobFinished(job_id=JOB, seq=9, status=status, attempt=1, error="boom")  # type: ignore[arg-type]


def notice_of(status: str, previous: tuple[str, str] | None) -> object:
    return job_notice(finished(status), TASK, "nightly", "backup", [], previous)  # type: ignore[arg-type]


def test_what_a_jobs_end_tells() -> None:
    assert isinstance(notice_of("failed", None), JobFailedNotice)
    assert isinstance(notice_of("failed", ("x", "failed")), JobFailedNotice)
    recovered = notice_of("succeeded", ("prev", "failed"))
    assert isinstance(recovered, JobRecoveredNotice) and recovered.failed_job_id == "prev"
    for quiet in (
        notice_of("succeeded", None),
        notice_of("succeeded", ("prev", "succeeded")),
        notice_of("cancelled", ("prev", "failed")),
        notice_of("skipped", None),
    ):
        assert quiet is None


def test_a_notice_told_twice_is_one() -> None:
    event = finished("failed")
    once = job_notice(event, TASK, None, "check", [], None)
    again = job_notice(event, TASK, None, "check", [], None)
    assert once is not None and again is not None and once.event_id == again.event_id
    other = job_notice(finished("failed"), TASK, None, "check", [], None)
    assert other is not None and other.event_id != once.event_id


def test_the_signature_is_an_hmac_of_the_body() -> None:
    body = b'{"kind":"job.failed"}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) == f"sha256={expected}"


def test_retries_wait_four_times_longer_each_then_stop() -> None:
    base = timedelta(seconds=30)
    waits = [retry_delay(n, base) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:-1] == [base * 4**k for k in range(MAX_ATTEMPTS - 1)]
    assert waits[-1] is None


def test_a_mail_says_what_happened() -> None:
    notice = notice_of("failed", None)
    assert isinstance(notice, JobFailedNotice)
    subject, text = describe(notice)
    assert subject == "backup task nightly failed" and "boom" in text and JOB in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (TargetCreate(name="w", kind="webhook"), "url"),
        (TargetCreate(name="w", kind="webhook", url="ftp://h/x"), "url"),
        (TargetCreate(name="w", kind="webhook", url="http://u:p@h/x"), "url"),
        (TargetCreate(name="w", kind="webhook", url="http://169.254.169.254/"), "url"),
        (TargetCreate(name="w", kind="webhook", url="http://metadata/"), "url"),
        (TargetCreate(name="w", kind="webhook", url="http://h:99999/"), "url"),
        (TargetCreate(name="w", kind="webhook", url="http://h/", secret=""), "secret"),
        (TargetCreate(name="e", kind="email", to=["a@b"]), "smtp"),
        (TargetCreate(name="e", kind="email", smtp=SmtpServer(host="m")), "to"),
        (TargetCreate(name="e", kind="email", to=["a@b"], smtp=SmtpServer(host="m?")), "smtp.host"),
        (TargetCreate(name=" ", kind="webhook", url="http://h/"), "name"),
    ],
)
def test_targets_refused(body: TargetCreate, field: str) -> None:
    with pytest.raises(Invalid) as e:
        check_target(body)
    assert e.value.field == field


def test_a_host_that_resolves_to_a_metadata_address_is_refused() -> None:
    body = TargetCreate(name="w", kind="webhook", url="http://innocent.example/hook")
    with pytest.raises(Invalid):
        check_target(body, ["10.0.0.1", "169.254.169.254"])
    assert check_target(body, ["127.0.0.1"]).url == body.url


def test_what_is_masked() -> None:
    assert masked_url("https://hooks.example.com/services/T0/B0/tok") == (
        f"https://hooks.example.com/{MASK}"
    )
    assert masked_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    target = NotificationTarget(
        id="i",
        name="n",
        kind="email",
        to=["a@b"],
        smtp=SmtpServer(host="m", username="u", password="pw"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    shown = masked(target)
    assert shown.smtp is not None and shown.smtp.password == MASK and shown.smtp.username == "u"
    assert kept_secret(MASK, "stored") == "stored" and kept_secret("new", "stored") == "new"
