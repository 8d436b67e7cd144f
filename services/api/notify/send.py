"""Sending one notice to one target: a webhook's POST, or a mail over SMTP. A delivery
succeeds only on the receiver's word: a 2xx answer, or the SMTP server taking the mail."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import urlsplit

import aiosmtplib
import httpx
import msgspec

from shared.connector_check import host_addresses
from shared.locations import address_problem
from shared.models import NotificationTarget
from shared.notifications import SIGNATURE_HEADER, Notice, describe, kind_of, signature

WEBHOOK_TIMEOUT_S = 10.0
SMTP_TIMEOUT_S = 20.0
# What the detail of an attempt keeps of an error.
MAX_DETAIL = 300


@dataclass(frozen=True)
class Sent:
    ok: bool
    detail: str


async def send(
    target: NotificationTarget,
    notice: Notice,
    delivery_id: str,
    mail_from: str,
    event: str | None = None,
) -> Sent:
    """One attempt; never raises (but for cancellation). `event`: what the event header
    says, when not the notice's kind (a test)."""
    event = event or kind_of(notice)
    try:
        if target.kind == "webhook":
            return await _post(target, notice, delivery_id, event)
        return await _mail(target, notice, delivery_id, mail_from, event)
    except Exception as e:
        return Sent(
            False, (f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)[:MAX_DETAIL]
        )


async def _refused(host: str) -> str | None:
    """The host resolves to an address no notification may go to (resolved again here:
    a name may point elsewhere now than when the target was saved)."""
    for address in (host, *await host_addresses(host)):
        if problem := address_problem(address):
            return f"refused: {problem}"
    return None


async def _post(target: NotificationTarget, notice: Notice, delivery_id: str, event: str) -> Sent:
    assert target.url is not None
    if why := await _refused(urlsplit(target.url).hostname or ""):
        return Sent(False, why)
    body = msgspec.json.encode(notice)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "plakar-control-plane",
        "X-Plakar-Event": event,
        "X-Plakar-Delivery": delivery_id,
    }
    if target.secret:
        headers[SIGNATURE_HEADER] = signature(target.secret, body)
    # No redirect is followed (it could lead anywhere), nor any proxy of the environment.
    async with httpx.AsyncClient(
        timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False, trust_env=False
    ) as client:
        answer = await client.post(target.url, content=body, headers=headers)
    return Sent(200 <= answer.status_code < 300, f"HTTP {answer.status_code}")


async def _mail(
    target: NotificationTarget, notice: Notice, delivery_id: str, mail_from: str, event: str
) -> Sent:
    smtp = target.smtp
    assert smtp is not None
    assert target.to
    if why := await _refused(smtp.host):
        return Sent(False, why)
    subject, text = describe(notice)
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(target.to)
    test = " (test)" if event == "test" else ""
    message["Subject"] = f"[plakar]{test} {subject}"
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or None)
    message["X-Plakar-Event"] = event
    message["X-Plakar-Delivery"] = delivery_id
    details = msgspec.json.format(msgspec.json.encode(notice), indent=2).decode()
    message.set_content(f"{text}\n\n{details}\n")
    _, reply = await aiosmtplib.send(
        message,
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.username,
        password=smtp.password,
        start_tls=smtp.starttls,
        use_tls=False,
        timeout=SMTP_TIMEOUT_S,
    )
    return Sent(True, reply[:MAX_DETAIL] or "accepted")
