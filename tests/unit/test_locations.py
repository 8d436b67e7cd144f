"""Which connectors are accepted: location kinds, their scope, and their options."""

from __future__ import annotations

import asyncio

import pytest

from shared import connector_check
from shared.locations import (
    Policy,
    Role,
    excluded_from,
    ignore_pattern,
    location_problem,
    option_problem,
)

DATA = "/srv/plakar-cp"
POLICY = Policy(protected=(DATA, "/var/tmp/runner-work"))


def problem(role: Role, location: str, policy: Policy = POLICY, **kw: object) -> str | None:
    return location_problem(role, location, policy, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("role", "location"),
    [
        ("source", "/home/me"),
        ("source", "/"),
        ("source", "fs:///etc"),
        ("store", "/var/lib/backups/store"),
        ("store", "ptar:///backups/a.ptar"),
        ("store", "https://backup.example.com:9876/store"),
        ("store", "http://127.0.0.1:9876"),
        ("destination", "/restore/here"),
        ("destination", "/var/restore"),
    ],
)
def test_accepted(role: Role, location: str) -> None:
    assert problem(role, location) is None


@pytest.mark.parametrize(
    ("role", "location", "why"),
    [
        ("source", "relative/path", "absolute path"),
        ("source", "stdin://", "not accepted"),
        ("destination", "stdout://", "not accepted"),
        ("destination", "stderr:", "not accepted"),
        ("store", "s3://bucket", "not accepted"),
        ("store", "sftp://host/x", "not accepted"),
        ("store", "tar:///x.tar", "not accepted"),
        ("store", "ptar+https://host/x.ptar", "not accepted"),
        ("source", "ptar:///x.ptar", "only be a store"),
        ("destination", "https://host/x", "only be a store"),
        ("store", "ptar://relative.ptar", "absolute path"),
        ("store", "/a\nb", "one line"),
        ("store", DATA, "own files"),
        ("source", f"{DATA}/credentials.json", "own files"),
        ("store", f"fs://{DATA}/../plakar-cp/pg", "own files"),
        ("store", f"ptar://{DATA}/x.ptar", "own files"),
        ("destination", "/srv", "own files"),
        ("destination", "/", "system directory"),
        ("destination", "/etc", "system directory"),
        ("destination", "/etc/cron.d", "system directory"),
        ("destination", "/usr/local/bin", "system directory"),
        ("destination", "/lib64", "system directory"),
        ("destination", "/var/lib/dpkg", "system directory"),
        ("destination", "//etc/./", "system directory"),
        ("store", "http://169.254.169.254/latest/meta-data", "link-local"),
        ("store", "http://[fe80::1]:80/", "link-local"),
        ("store", "http://[fd00:ec2::254]/", "metadata"),
        ("store", "http://100.100.100.200/", "metadata"),
        ("store", "http://metadata.google.internal/", "metadata"),
        ("store", "http://0.0.0.0:9876/", "not a host address"),
        ("store", "https://user:pw@host/x", "credentials"),
        ("store", "https://host/x?token=1", "query"),
        ("store", "http://b\u00fccher.example/", "ASCII host name"),
        ("store", "http://\U0010c33cB&/", "ASCII host name"),
        ("store", "https://host:99999/", "valid URL"),
        ("store", "https:///nohost", "name a host"),
    ],
)
def test_refused(role: Role, location: str, why: str) -> None:
    found = problem(role, location)
    assert found is not None and why in found, found


def test_a_name_that_resolves_to_a_metadata_address_is_refused() -> None:
    found = problem("store", "http://innocent.example/", resolve=lambda _: ["169.254.169.254"])
    assert found is not None and "link-local" in found


def test_a_symlink_into_a_system_directory_is_refused() -> None:
    found = problem("destination", "/srv/restore", realpath=lambda _: "/etc")
    assert found is not None and "system directory" in found


def test_allowed_paths_confine_every_location() -> None:
    policy = Policy(protected=(DATA,), allowed=("/mnt/nas", "https://backup.example.com/"))
    assert problem("store", "/mnt/nas/store", policy) is None
    assert problem("store", "https://backup.example.com/store", policy) is None
    for location in ("/mnt/nasty", "/home", "https://backup.example.com:444/", "https://x.org/"):
        found = problem("store", location, policy)
        assert found is not None and "outside the allowed paths" in found, location


def test_options_are_an_allow_list_per_kind_and_role() -> None:
    assert option_problem("store", "/s", "passphrase", "pw") is None
    assert option_problem("store", "https://h/", "auth_token", "t") is None
    assert option_problem("source", "/s", "dont_traverse_fs", "true") is None
    for role, location, key in [
        ("store", "/s", "passphrase_cmd"),
        ("store", "/s", "auth_token"),
        ("source", "/s", "passphrase"),
        ("destination", "/d", "location"),
        ("store", "https://h/", "tls_insecure"),
    ]:
        found = option_problem(role, location, key, "x")  # type: ignore[arg-type]
        assert found is not None and "is not one" in found, (key, found)
    found = option_problem("source", "/s", "dont_traverse_fs", "yes; id")
    assert found is not None and "must match" in found
    found = option_problem("store", "/s", "passphrase", "x" * 2000)
    assert found is not None and "at most" in found


def test_the_protected_directories_are_left_out_of_a_backup_that_holds_them() -> None:
    assert excluded_from("/", POLICY) == [DATA, "/var/tmp/runner-work"]
    assert excluded_from("/srv", POLICY) == [DATA]
    assert excluded_from("/home", POLICY) == []
    assert ignore_pattern("/data/my dir/[x]*") == r"/data/my\ dir/\[x\]\*"


def test_a_host_name_the_resolver_cannot_encode_is_refused_not_resolved() -> None:
    found = asyncio.run(connector_check.problem("store", "http://\U0010c33cB&/", {}, POLICY))
    assert found is not None and found[0] == "location" and "ASCII host name" in found[1]
