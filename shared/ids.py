"""Ids: random ones, and ones derived from what they name (pure)."""

from __future__ import annotations

import os
import uuid

_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_id() -> str:
    """A random (version 4) UUID, as text: built from its hex digits rather than through
    a `uuid.UUID`, a third of the cost, as a burst of firings makes three per job."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_DERIVED = uuid.UUID("5d0c64c8-41a5-4b0b-9d55-2f4e3f6b9a61")


def derived_id(key: str) -> str:
    """A UUID (version 5) that only `key` gives: the id of what must exist once however
    often it is made (a retry of a job, the telling of a change)."""
    return str(uuid.uuid5(_DERIVED, key))
