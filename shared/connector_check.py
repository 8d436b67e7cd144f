"""Checking a connector against the rules of shared/locations.py, with what those rules
need from the host: the addresses of a URL's host, the real path behind symbolic links.
The api runs it when a connector is saved, a runner again before plakar sees it."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from shared import locations
from shared.locations import Policy, Role

RESOLVE_TIMEOUT_S = 2.0


async def problem(
    role: Role, location: str, options: Mapping[str, str], policy: Policy
) -> tuple[str, str] | None:
    """The field at fault and why, for the first rule the connector breaks; None if it
    breaks none."""
    hosts = await addresses(location)
    why = locations.location_problem(
        role, location, policy, resolve=lambda _: hosts, realpath=os.path.realpath
    )
    if why:
        return "location", why
    if len(options) > locations.MAX_OPTIONS:
        return "options", f"a connector takes at most {locations.MAX_OPTIONS} options"
    for key, value in options.items():
        if why := locations.option_problem(role, location, key, value):
            return f"options.{key[:64]}", why
    return None


async def addresses(location: str) -> list[str]:
    """Every address of an http(s) location's host; none for other kinds, or when the
    name does not resolve here (the runner that uses it checks again)."""
    if locations.kind_of(location) != "http":
        return []
    try:
        host = urlsplit(location).hostname
    except ValueError:
        return []
    return await host_addresses(host or "")


async def host_addresses(host: str) -> list[str]:
    """Every address of a host name; none for an address, or when the name does not
    resolve here."""
    if not host or not locations.is_host_name(host):
        return []  # an address needs no resolving; anything else is refused unresolved
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
