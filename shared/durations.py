"""Durations as users write them: `30d`, `12h`, `90m`, `1d12h`, or ISO 8601 `P30D`, `PT12H`."""

from __future__ import annotations

import re

# A number of at most 12 digits: longer ones are refused before they are read.
_N = r"\d{1,12}"
_COMPACT = re.compile(rf"^(?:(?P<d>{_N})d)?(?:(?P<h>{_N})h)?(?:(?P<m>{_N})m)?$")
_ISO = re.compile(
    rf"^P(?:(?P<w>{_N})W)?(?:(?P<d>{_N})D)?"
    rf"(?:T(?:(?P<h>{_N})H)?(?:(?P<m>{_N})M)?(?:(?P<s>{_N})S)?)?$"
)


# What parse_duration reads, as a regular expression (for the OpenAPI document); the
# range (one minute to MAX_SECONDS) is checked after.
DURATION_PATTERN = (
    rf"^\s*(?:(?:{_N}[dD])?(?:{_N}[hH])?(?:{_N}[mM])?"
    rf"|[pP](?:{_N}[wW])?(?:{_N}[dD])?(?:[tT](?:{_N}[hH])?(?:{_N}[mM])?(?:{_N}[sS])?)?)\s*$"
)

# Ten years: a window longer than that takes in every snapshot anyway.
MAX_SECONDS = 3660 * 86400


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> int:
    """Seconds in the duration; at least one minute."""
    t = text.strip()
    m = _COMPACT.match(t.lower())
    if m and any(m.groupdict().values()):
        seconds = int(m["d"] or 0) * 86400 + int(m["h"] or 0) * 3600 + int(m["m"] or 0) * 60
    else:
        iso = _ISO.match(t.upper())
        if not iso or not any(iso.groupdict().values()) or t.upper().endswith("T"):
            raise DurationError(
                f"{text!r} is not a duration (write 30d, 12h, 90m, 1d12h or ISO 8601 like P30D)"
            )
        g = {k: int(v or 0) for k, v in iso.groupdict().items()}
        seconds = g["w"] * 604800 + g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]
    if seconds < 60:
        raise DurationError(f"{text!r} is shorter than one minute")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than {MAX_SECONDS // 86400} days")
    return seconds


def format_duration(seconds: int) -> str:
    """The compact form: 1d12h, 90m -> 1h30m."""
    d, rest = divmod(seconds // 60, 1440)
    h, m = divmod(rest, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else ""]
    return "".join(parts) or "0m"
