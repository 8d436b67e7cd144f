"""Keeping secrets out of sight: every option value is one unless its key is known not to
be (shared/locations.py)."""

from collections.abc import Iterable, Mapping

from shared.locations import is_secret

MASK = "********"


def mask_options(options: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASK if is_secret(k) else v) for k, v in options.items()}


def secret_values(options: Mapping[str, str]) -> list[str]:
    return [v for k, v in options.items() if is_secret(k) and v]


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret containing another is masked whole.
    for s in sorted(set(secrets), key=len, reverse=True):
        if s:
            text = text.replace(s, MASK)
    return text
