"""Notification targets and rules as users send them (pure): checks, and what is masked
in answers (shared/models.py)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec

from services.api.validation import Invalid, check_name
from shared.locations import METADATA_HOSTS, address_problem, is_host_name
from shared.models import (
    EMAIL_ADDRESS,
    MAX_RECIPIENTS,
    NoticeKind,
    NotificationTarget,
    SmtpServer,
    TargetCreate,
)
from shared.secrets import MASK
from shared.text import is_one_line

MAX_URL = 2048


def check_target(body: TargetCreate, resolve: Sequence[str] = ()) -> TargetCreate:
    """A target with the fields of its kind only, normalised. `resolve`: the addresses of
    its host (a webhook's, an SMTP server's)."""
    name = check_name(body.name)
    if body.kind == "webhook":
        for field in ("to", "smtp"):
            if getattr(body, field) is not None:
                raise Invalid(field, f"a webhook target takes no {field}")
        if body.url is None:
            raise Invalid("url", "a webhook target needs a url")
        _check_credential(body.secret, "secret")
        return TargetCreate(
            name=name, kind="webhook", url=check_url(body.url, resolve), secret=body.secret
        )
    for field in ("url", "secret"):
        if getattr(body, field) is not None:
            raise Invalid(field, f"an email target takes no {field}")
    if not body.to:
        raise Invalid("to", "an email target needs at least one address in to")
    if body.smtp is None:
        raise Invalid("smtp", "an email target needs an smtp server: {host, port, …}")
    return TargetCreate(
        name=name, kind="email", to=check_recipients(body.to), smtp=check_smtp(body.smtp, resolve)
    )


def check_url(url: str, resolve: Sequence[str] = ()) -> str:
    """An http(s) URL to POST to: no credentials in it, no fragment, not a link-local or
    cloud metadata address (checked again as each delivery resolves it)."""
    if len(url) > MAX_URL or not is_one_line(url):
        raise Invalid("url", f"url must be one line of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises on a port that is not one
    except ValueError as e:
        raise Invalid("url", f"url is not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid("url", "url must begin with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url", "credentials do not belong in the url: use the secret to sign")
    if parts.fragment:
        raise Invalid("url", "url must not have a fragment")
    _check_host((parts.hostname or "").lower(), resolve, "url")
    return url


def check_recipients(to: list[str]) -> list[str]:
    if len(to) > MAX_RECIPIENTS:
        raise Invalid("to", f"at most {MAX_RECIPIENTS} addresses")
    kept: list[str] = []
    for address in to:
        if len(address) > 254 or not re.fullmatch(EMAIL_ADDRESS, address):
            raise Invalid("to", f"{address!r} is not an email address (name@domain)")
        if address not in kept:
            kept.append(address)
    return kept


def check_smtp(smtp: SmtpServer, resolve: Sequence[str] = ()) -> SmtpServer:
    _check_host(smtp.host.lower(), resolve, "smtp.host")
    if not 1 <= smtp.port <= 65535:
        raise Invalid("smtp.port", "port must be between 1 and 65535")
    _check_credential(smtp.username, "smtp.username")
    _check_credential(smtp.password, "smtp.password")
    if smtp.password is not None and smtp.username is None:
        raise Invalid("smtp.username", "a password needs a username")
    return smtp


def _check_host(host: str, resolve: Sequence[str], field: str) -> None:
    if not host:
        raise Invalid(field, "a host is needed")
    if host in METADATA_HOSTS:
        raise Invalid(field, f"{host} is a cloud metadata service")
    if not is_host_name(host) and not _is_address(host):
        raise Invalid(field, "host must be an IP address or an ASCII host name")
    for address in (host, *resolve):
        if problem := address_problem(address):
            raise Invalid(field, problem)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _check_credential(value: str | None, field: str) -> None:
    if value is not None and (not value or len(value) > 256 or not is_one_line(value)):
        raise Invalid(field, f"{field} must be one line of 1 to 256 characters")


def masked_url(url: str) -> str:
    """A webhook URL as answered: its origin, the rest masked (it often holds a token)."""
    parts = urlsplit(url)
    rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
    return f"{parts.scheme}://{parts.netloc}" + (f"/{MASK}" if rest not in ("", "/") else rest)


def masked(target: NotificationTarget) -> NotificationTarget:
    smtp = target.smtp
    if smtp is not None and smtp.password is not None:
        smtp = msgspec.structs.replace(smtp, password=MASK)
    return msgspec.structs.replace(
        target,
        url=masked_url(target.url) if target.url else None,
        secret=MASK if target.secret else None,
        smtp=smtp,
    )


def kept_secret(new: str | None, stored: str | None) -> str | None:
    """A value sent back as answered (masked) keeps the stored one."""
    return stored if new == MASK else new


def check_events(events: list[NoticeKind]) -> list[NoticeKind]:
    if not events:
        raise Invalid("events", "a rule tells of at least one event")
    return list(dict.fromkeys(events))
