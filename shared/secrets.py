"""Which connector options are secrets, and how they are kept out of sight."""

from collections.abc import Iterable, Mapping

MASK = "********"


def is_secret_key(key: str) -> bool:
    k = key.lower()
    return k in {"passphrase", "password", "token"} or k.startswith("secret") or k.endswith("_key")


def mask_options(options: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASK if is_secret_key(k) else v) for k, v in options.items()}


def secret_values(options: Mapping[str, str]) -> list[str]:
    return [v for k, v in options.items() if is_secret_key(k) and v]


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret containing another is masked whole.
    for s in sorted(set(secrets), key=len, reverse=True):
        if s:
            text = text.replace(s, MASK)
    return text
