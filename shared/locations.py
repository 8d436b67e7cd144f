"""Which connectors the control plane accepts (pure): location kinds, their scope, and
the plakar options each takes. The api checks connectors against these rules when they
are saved, and runners again before plakar sees them.

Default deny: a location is one of the kinds below, and an option is one its plakar
integration takes (plakar's fs, ptar and http integrations, v1.1.4); nothing that makes
plakar run a command (`passphrase_cmd`) is ever accepted. Every option value is a secret
unless its key is in NON_SECRET.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from shared.text import CONTROL, is_one_line

Role = Literal["source", "store", "destination"]
Kind = Literal["fs", "ptar", "http"]

# The longest location and option value accepted, and the most options.
MAX_LOCATION = 4096
MAX_OPTION_VALUE = 1024
MAX_OPTIONS = 8


@dataclass(frozen=True)
class OptionRule:
    key: str
    secret: bool
    help: str
    # A non-secret value must match it in full.
    pattern: str | None = None


_PASSPHRASE = OptionRule(
    "passphrase", True, "encrypts the store (set it before initializing); kept secret"
)


@dataclass(frozen=True)
class KindRule:
    kind: Kind
    example: str
    options: dict[Role, tuple[OptionRule, ...]]

    @property
    def roles(self) -> tuple[Role, ...]:
        return tuple(self.options)


KINDS: dict[Kind, KindRule] = {
    "fs": KindRule(
        "fs",
        "/srv/data or fs:///srv/data",
        {
            "source": (
                OptionRule(
                    "dont_traverse_fs",
                    False,
                    "true: stay on the source's file system (do not cross mount points)",
                    r"true|false",
                ),
            ),
            "store": (_PASSPHRASE,),
            "destination": (),
        },
    ),
    "ptar": KindRule("ptar", "ptar:///backups/archive.ptar", {"store": (_PASSPHRASE,)}),
    "http": KindRule(
        "http",
        "https://backup.example.com:9876 (a store served by `plakar server`)",
        {
            "store": (
                _PASSPHRASE,
                OptionRule("auth_token", True, "bearer token of the plakar server; kept secret"),
            )
        },
    ),
}

NON_SECRET = frozenset(
    rule.key
    for kind in KINDS.values()
    for rules in kind.options.values()
    for rule in rules
    if not rule.secret
)

# Restoring into these (or below them) could replace the system itself.
SYSTEM_DIRS = (
    "/etc",
    "/bin",
    "/sbin",
    "/boot",
    "/dev",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sys",
    "/usr",
    "/var/lib",
)

# Addresses of cloud instance metadata services that are not link-local.
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)


@dataclass(frozen=True)
class Policy:
    """What an installation allows beyond the fixed rules."""

    # The control plane's own directories (data dir, runner work dirs): refused for every
    # role, excluded from backups that contain them.
    protected: tuple[str, ...] = ()
    # When set, every location must be under one: a path root, or an http(s) URL prefix.
    allowed: tuple[str, ...] = ()


# How a location of any kind begins, for the OpenAPI document (the rest is checked).
LOCATION_PATTERN = rf"^(?:/|fs://|ptar://|https?://)[^{CONTROL}]*$"


def is_secret(key: str) -> bool:
    return key not in NON_SECRET


# How each kind's locations begin.
PREFIXES: dict[Kind, tuple[str, ...]] = {
    "fs": ("/", "fs://"),
    "ptar": ("ptar://",),
    "http": ("http://", "https://"),
}


def kind_of(location: str) -> Kind | None:
    return next((k for k, starts in PREFIXES.items() if location.startswith(starts)), None)


def local_path(location: str) -> str | None:
    """The normalised absolute path of an fs or ptar location (None for others)."""
    kind = kind_of(location)
    if kind == "fs":
        path = location.removeprefix("fs://")
    elif kind == "ptar":
        path = location.removeprefix("ptar://")
    else:
        return None
    if not path.startswith("/"):
        return None
    return posixpath.normpath("/" + path.lstrip("/"))


def within(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it (both normalised absolute paths)."""
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root + "/") or root == "/"


Resolve = Callable[[str], Sequence[str]]


def location_problem(
    role: Role,
    location: str,
    policy: Policy,
    resolve: Resolve = lambda _: (),
    realpath: Callable[[str], str] = lambda p: p,
) -> str | None:
    """Why a location is refused for this role, or None. `resolve` gives the addresses of
    a host name; `realpath` resolves symbolic links of a path where they can be."""
    if not location or len(location) > MAX_LOCATION or not is_one_line(location):
        return f"location must be one line of 1 to {MAX_LOCATION} characters"
    kind = kind_of(location)
    if kind is None:
        return (
            "location must be an absolute path, fs://, ptar:// (a store) or http(s):// "
            "(a store served by plakar server); other kinds (stdin, stdout, s3, sftp, …) "
            "are not accepted"
        )
    if role not in KINDS[kind].options:
        return f"a {kind} location can only be a store"
    if kind == "http":
        return _url_problem(location, policy, resolve)
    path = local_path(location)
    if path is None:
        return "location must be an absolute path"
    for candidate in dict.fromkeys((path, realpath(path))):
        if problem := _path_problem(role, candidate, policy):
            return problem
    return None


def _path_problem(role: Role, path: str, policy: Policy) -> str | None:
    if role == "destination" and (path == "/" or any(within(path, d) for d in SYSTEM_DIRS)):
        return f"a restore destination may not be a system directory ({path})"
    for own in policy.protected:
        if within(path, own) or (role == "destination" and within(own, path)):
            return f"location {path} holds the control plane's own files ({own})"
    if policy.allowed and not any(
        within(path, root) for root in policy.allowed if root.startswith("/")
    ):
        return f"location is outside the allowed paths ({', '.join(policy.allowed)})"
    return None


def _url_problem(location: str, policy: Policy, resolve: Resolve) -> str | None:
    try:
        url = urlsplit(location)
        port = url.port
    except ValueError as e:
        return f"location is not a valid URL: {e}"
    host = (url.hostname or "").lower()
    if not host:
        return "location must name a host"
    if url.username is not None or url.password is not None:
        return "credentials do not belong in a location: use the auth_token option"
    if url.query or url.fragment:
        return "location must not have a query or a fragment"
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service"
    if _ip(host) is None and not is_host_name(host):
        return "host must be an IP address or an ASCII host name (punycode for others)"
    for address in (host, *resolve(host)):
        if problem := address_problem(address):
            return problem
    if policy.allowed and not any(
        _under_url(url.scheme, host, port, url.path, root)
        for root in policy.allowed
        if not root.startswith("/")
    ):
        return f"location is outside the allowed paths ({', '.join(policy.allowed)})"
    return None


# Letters, digits, hyphens and underscores (container names have them) in dot-separated
# labels of at most 63; nothing the resolver would have to encode.
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


def is_host_name(host: str) -> bool:
    return _HOST_NAME.fullmatch(host.lower()) is not None


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None


def address_problem(address: str) -> str | None:
    ip = _ip(address)
    if ip is None:
        return None  # a host name
    if ip.is_link_local or ip in _METADATA_IPS:
        return f"{address} is a link-local or cloud metadata address"
    if ip.is_unspecified or ip.is_multicast:
        return f"{address} is not a host address"
    return None


def _under_url(scheme: str, host: str, port: int | None, path: str, root: str) -> bool:
    r = urlsplit(root)
    return (
        r.scheme == scheme
        and (r.hostname or "").lower() == host
        and r.port == port
        and within(posixpath.normpath("/" + path.lstrip("/")), r.path or "/")
    )


def option_problem(role: Role, location: str, key: str, value: str) -> str | None:
    """Why an option is refused for a connector of this role and location, or None."""
    kind = kind_of(location)
    rules = {o.key: o for o in KINDS[kind].options.get(role, ())} if kind else {}
    if key not in rules:
        known = ", ".join(rules) or "none"
        return f"option {key!r} is not one a {kind or 'connector'} {role} takes ({known})"
    rule = rules[key]
    if len(value) > MAX_OPTION_VALUE or not is_one_line(value):
        return f"option {key!r} must be one line of at most {MAX_OPTION_VALUE} characters"
    if rule.pattern and not re.fullmatch(rule.pattern, value):
        return f"option {key!r} must match {rule.pattern}"
    return None


def ignore_pattern(path: str) -> str:
    """A plakar -ignore pattern (gitignore syntax) for exactly this absolute path."""
    return re.sub(r"([\\*?\[\]!# ])", r"\\\1", path)


def excluded_from(source_path: str, policy: Policy) -> list[str]:
    """The protected directories a backup of `source_path` must leave out."""
    return [own for own in policy.protected if within(own, source_path) and own != source_path]
