"""What a deployment on several machines needs (deploy/compose.yaml, deploy/kubernetes/):
the NATS servers' configuration and each container's environment with its credentials.

Both come from the sources the embedded stack uses (deploy/nats_auth.py, the services'
PostgreSQL roles), so a cluster has exactly the users, permissions and roles of `plakar-cp up`.
Passwords never enter the configuration: nats-server reads each one from its environment
(`$NATS_PASSWORD_<USER>`, and the routes with their credentials from `$NATS_ROUTES`), which
the operator fills from files that are never committed. nats-server reads such a value as
it would read it in the file (`12345` is a number, `-x` an error), so every password is a
letter followed by letters and digits.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import string
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from deploy.embedded import PG_SUPERUSER
from deploy.nats_auth import USERS, accounts, group_user
from shared.db import SERVICE_ROLES
from shared.groups import DEFAULT_GROUP

Platform = Literal["compose", "kubernetes"]
PLATFORMS: tuple[Platform, ...] = ("compose", "kubernetes")

CLUSTER_NAME = "plakar-cp"
CLIENT_PORT, CLUSTER_PORT, MONITOR_PORT = 4222, 6222, 8222
# The servers authenticate each other's routes with this user (cluster authorization).
ROUTE_USER = "route"
# Where each platform's containers reach the NATS servers (every service gets all three
# as seeds) and PostgreSQL.
NATS_HOSTS: dict[Platform, tuple[str, ...]] = {
    "compose": ("nats-1", "nats-2", "nats-3"),
    # The StatefulSet's pods behind its headless Service, in the pod's own namespace.
    "kubernetes": ("nats-0.nats", "nats-1.nats", "nats-2.nats"),
}
POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DB = "postgres", 5432, "postgres"
# The server's name in the cluster, from its environment (unique per node).
SERVER_NAME_VAR = "NATS_SERVER_NAME"
# The routes to every node, with the route user's credentials (a list in nats-server's syntax).
ROUTES_VAR = "NATS_ROUTES"
# The env files `plakar-cp deploy-secrets` writes, one per kind of container (their
# variables: service_env).
ENV_FILES = ("nats", "postgres", "migrate", "api", "scheduler", "history", "runner")

_ENV_REF = "@env:"
# The deployed runners' group, whose NATS user is theirs alone (nats_auth.group_user);
# runners of another group take the all-groups user `runner` or a user of their own.
RUNNER_GROUPS = (DEFAULT_GROUP,)


def password_var(user: str) -> str:
    """The env variable nats-server reads `user`'s password from."""
    return f"NATS_PASSWORD_{user.upper().replace('-', '_')}"


def nats_users(runner_groups: Sequence[str] = RUNNER_GROUPS) -> tuple[str, ...]:
    return (*USERS, *(group_user(g) for g in runner_groups), ROUTE_USER)


def nats_config(
    *,
    host: str = "0.0.0.0",  # noqa: S104 (a container's server serves its network)
    client_port: int = CLIENT_PORT,
    cluster_port: int = CLUSTER_PORT,
    monitor_port: int = MONITOR_PORT,
    store_dir: str = "/data/jetstream",
    runner_groups: Sequence[str] = RUNNER_GROUPS,
) -> str:
    """The configuration of every node of the cluster: the same file for all, the node's
    name and the routes come from the environment. (nats-server's `--cluster` flag would
    drop the routes' authorization; routes without credentials are refused.)"""
    refs = {u: _ENV_REF + password_var(u) for u in nats_users(runner_groups)}
    config = {
        "server_name": _ENV_REF + SERVER_NAME_VAR,
        "listen": f"{host}:{client_port}",
        # /healthz for the probes.
        "http": f"{host}:{monitor_port}",
        "max_payload": 1048576,  # as the embedded server's
        "jetstream": {"store_dir": store_dir},
        "cluster": {
            "name": CLUSTER_NAME,
            "listen": f"{host}:{cluster_port}",
            "authorization": {
                "user": ROUTE_USER,
                "password": _ENV_REF + password_var(ROUTE_USER),
            },
            "routes": _ENV_REF + ROUTES_VAR,
        },
        "accounts": accounts(refs, runner_groups),
    }
    # nats-server's syntax takes JSON, and an unquoted $NAME is an env variable's value.
    text = re.sub(f'"{_ENV_REF}(\\w+)"', r"$\1", json.dumps(config, indent=2))
    return (
        "# nats-server configuration of each node of the Plakar Control Plane's cluster.\n"
        "# Written by `plakar-cp nats-config` from deploy/nats_auth.py: do not edit.\n"
        f"{text}\n"
    )


def _password() -> str:
    """32 characters (190 bits): a letter, then letters and digits."""
    alphabet = string.ascii_letters + string.digits
    first = secrets.choice(string.ascii_letters)
    return first + "".join(secrets.choice(alphabet) for _ in range(31))


def new_credentials() -> dict[str, str]:
    """Fresh random passwords: `nats:<user>`, `pg:<role>` and the API token."""
    names = (
        *(f"nats:{u}" for u in nats_users()),
        *(f"pg:{r}" for r in (PG_SUPERUSER, *SERVICE_ROLES)),
        "api_token",
    )
    return {n: _password() for n in names}


def routes(password: str, nodes: list[tuple[str, int]]) -> str:
    """`$NATS_ROUTES`: every node's route URL, signed in as the route user."""
    return json.dumps([f"nats://{ROUTE_USER}:{password}@{h}:{p}" for h, p in nodes])


def service_env(platform: Platform, creds: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each kind of container's environment (ENV_FILES), with its own credentials only."""

    def nats(user: str) -> str:
        password = creds[f"nats:{user}"]
        hosts = NATS_HOSTS[platform]
        return ",".join(f"nats://{user}:{password}@{h}:{CLIENT_PORT}" for h in hosts)

    def pg(role: str) -> str:
        password = creds[f"pg:{role}"]
        return f"postgresql://{role}:{password}@{POSTGRES_HOST}:{POSTGRES_PORT}/{POSTGRES_DB}"

    def service(user: str, role: str) -> dict[str, str]:
        return {"PLAKAR_CP_NATS_URL": nats(user), "PLAKAR_CP_DATABASE_URL": pg(role)}

    roles = {r: creds[f"pg:{r}"] for r in SERVICE_ROLES}
    return {
        "nats": {
            **{password_var(u): creds[f"nats:{u}"] for u in nats_users()},
            ROUTES_VAR: routes(
                creds[f"nats:{ROUTE_USER}"], [(h, CLUSTER_PORT) for h in NATS_HOSTS[platform]]
            ),
        },
        "postgres": {"POSTGRES_PASSWORD": creds[f"pg:{PG_SUPERUSER}"]},
        "migrate": {
            **service("admin", PG_SUPERUSER),
            "PLAKAR_CP_ROLE_PASSWORDS": json.dumps(roles, separators=(",", ":")),
            "PLAKAR_CP_EVENTS_ADMIN_NATS_URL": nats("events_admin"),
        },
        "api": {
            **service("api", "plakar_api"),
            "PLAKAR_CP_API_TOKEN": creds["api_token"],
            "PLAKAR_CP_EVENTS_NATS_URL": nats("events"),
        },
        "scheduler": service("scheduler", "plakar_scheduler"),
        "history": service("history", "plakar_history"),
        # Runners hold no database URL: the api gives them the connectors of their jobs.
        "runner": {"PLAKAR_CP_NATS_URL": nats(group_user(DEFAULT_GROUP))},
    }


def write_env_files(directory: Path, platform: Platform) -> list[Path]:
    """`directory/<kind>.env` (0600) with fresh passwords; refuses to replace any, since
    the servers' data already holds the old ones."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = [directory / f"{kind}.env" for kind in ENV_FILES]
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise FileExistsError(f"already there (remove them to make new passwords): {existing}")
    for kind, env in service_env(platform, new_credentials()).items():
        fd = os.open(directory / f"{kind}.env", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in env.items())
    return paths


def run_command(args: argparse.Namespace) -> int:
    """`plakar-cp nats-config` and `plakar-cp deploy-secrets`."""
    if args.command == "nats-config":
        groups = tuple(dict.fromkeys((*RUNNER_GROUPS, *(args.runner_group or ()))))
        variables = {password_var(group_user(g)) for g in groups}
        if len(variables) < len(groups):  # `a-b` and `a_b` read the same variable
            print("error: two runner groups differ only by - and _", file=sys.stderr)
            return 2
        sys.stdout.write(nats_config(runner_groups=groups))
        return 0
    try:
        paths = write_env_files(args.directory, args.platform)
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(str(p) for p in paths))
    return 0
