"""Durations as users write them: `30d`, `12h`, `90m`, `1d12h`, or ISO 8601 `P30D`, `PT12H`."""

from __future__ import annotations

import re

_COMPACT = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


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
    return seconds


def format_duration(seconds: int) -> str:
    """The compact form: 1d12h, 90m -> 1h30m."""
    d, rest = divmod(seconds // 60, 1440)
    h, m = divmod(rest, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else ""]
    return "".join(parts) or "0m"
