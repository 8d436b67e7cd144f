"""A snapshot's files as the api answers them (pure): the preview of a text file, the
header that names a download."""

from __future__ import annotations

import codecs
import posixpath
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

# A preview shows at most this much of a file.
PREVIEW_BYTES = 1024 * 1024


async def head(chunks: AsyncIterator[bytes], limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes from the start, and whether there were more. Reading stops
    as soon as it is known (one chunk past the limit at most is held)."""
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            return bytes(data[:limit]), True
    return bytes(data), False


def as_text(data: bytes, complete: bool) -> str | None:
    """The bytes as text, or None when they are not text: a NUL byte, or not UTF-8. A
    character cut at the end of an incomplete read is left out, not held against it."""
    if b"\0" in data:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
    except UnicodeDecodeError:
        return None


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")


def attachment(path: str) -> str:
    """Content-Disposition naming the file (RFC 6266: an ASCII fallback, then UTF-8)."""
    name = posixpath.basename(path.rstrip("/")) or "file"
    fallback = _UNSAFE.sub("_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
