"""`plakar-cp up`: the embedded stack (NATS, PostgreSQL) and every service as child
processes, each started again when it dies."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deploy import orphans
from deploy.embedded import (
    PG_ROLES,
    PG_SUPERUSER,
    Child,
    NatsServer,
    Postgres,
    load_credentials,
    nats_cluster,
    pg_credential,
)
from deploy.nats_auth import USERS, group_user
from shared.groups import group_of
from shared.proc import die_with_parent

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
# How the services are started: this interpreter, the project's command line.
CLI = [sys.executable, "-m", "services.cli"]
# A child that dies is started again after FIRST_RESTART_S, then twice as long after
# each further death, up to MAX_RESTART_S; one that ran HEALTHY_S starts over from
# FIRST_RESTART_S (see Restarts).
FIRST_RESTART_S = 0.5
MAX_RESTART_S = 30.0
HEALTHY_S = 60.0
TICK_S = 0.2
# What runners are not given, even when `up`'s own environment holds it: they need no
# database (the api hands them their jobs' connectors) and no api token, so a runner's
# host holds no key to the secret store.
RUNNER_WITHHELD = frozenset(
    (
        "PLAKAR_CP_DATABASE_URL",
        "PLAKAR_CP_API_TOKEN",
        "PLAKAR_CP_ROLE_PASSWORDS",
        "PLAKAR_CP_EVENTS_ADMIN_NATS_URL",
    )
)


@dataclass
class Restarts:
    """When a child that exited is started again (pure: the caller gives the time)."""

    count: int = 0
    started_at: float = 0.0
    due_at: float | None = None

    def exited(self, now: float) -> float:
        """Record the exit seen at `now`; returns the delay before the next start."""
        if now - self.started_at >= HEALTHY_S:
            self.count = 0
        delay: float = min(MAX_RESTART_S, FIRST_RESTART_S * 2.0**self.count)
        self.due_at = now + delay
        return delay

    def started(self, now: float, *, restart: bool = True) -> None:
        self.count += restart
        self.started_at = now
        self.due_at = None


class Service(Child):
    """One of the control plane's services (`python -m services.cli <kind>`)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process = None

    def spawn(self) -> None:
        self._popen(
            self.argv, self.log_path, env=self.env, preexec_fn=die_with_parent(signal.SIGTERM)
        )

    def wait_ready(self, timeout: float) -> None:
        """Services are ready when the api's health says so (see Stack)."""


@dataclass
class Supervised:
    child: Child
    restarts: Restarts = field(default_factory=Restarts)


@dataclass
class Stack:
    data_dir: Path
    http_port: int
    runners: int
    # One is active, the others stand by to take over (see docs/scheduling.md).
    schedulers: int = 2
    nats_url: str | None = None
    # How many NATS servers to start: 1, or a cluster of 3 or more (with --nats-cluster).
    nats_cluster: int = 1
    database_url: str | None = None
    # Path roots (or URL prefixes) every connector location must be under; empty: any.
    allowed_paths: tuple[str, ...] = ()
    # The runners' slots and group (None: their own defaults, see shared/settings.py).
    runner_slots: int | None = None
    runner_group: str | None = None
    nats: list[NatsServer] = field(default_factory=list)
    postgres: Postgres | None = None
    services: list[Service] = field(default_factory=list)
    supervised: list[Supervised] = field(default_factory=list)

    def up(self) -> int:
        stopping = False

        def on_signal(signum: int, _: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        orphans.become_subreaper()
        try:
            self._start()
            while not stopping:
                self._supervise(time.monotonic())
                time.sleep(TICK_S)
            print("stopping...", flush=True)
            return 0
        except StartupError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._stop()

    def _start(self) -> None:
        d = self.data_dir
        for private in (d, d / "logs", d / "nats", d / "work"):
            private.mkdir(parents=True, exist_ok=True)
            os.chmod(private, 0o700)
        creds = load_credentials(d / "credentials.json", [group_user(self.group)])
        token = os.environ.get("PLAKAR_CP_API_TOKEN") or creds["api_token"]
        urls, events_url = self._start_nats(creds)
        dsn = self._start_postgres(creds)
        base = {**os.environ, "PLAKAR_CP_API_TOKEN": token, "PLAKAR_CP_DATA_DIR": str(d)}
        if self.allowed_paths:
            base["PLAKAR_CP_ALLOWED_PATHS"] = ",".join(self.allowed_paths)
        self._migrate(base, urls, dsn, creds)
        self.services = self._services(base, urls, dsn, events_url)
        for s in self.services:
            self._first_start(s, 0)
        self._wait_ready(token)
        self._announce(token, events_url)

    def _start_nats(self, creds: dict[str, str]) -> tuple[dict[str, str], str]:
        """The NATS URL of each user, and the one external readers use."""
        if self.nats_url:
            urls = dict.fromkeys((*creds, "admin"), self.nats_url)
            return urls, os.environ.get("PLAKAR_CP_EVENTS_NATS_URL", self.nats_url)
        d = self.data_dir
        if self.nats_cluster > 1:
            self.nats = nats_cluster(d / "nats", creds, self.nats_cluster, d / "logs", [self.group])
        else:
            self.nats = [
                NatsServer(d / "nats", creds, d / "logs" / "nats.log", runner_groups=[self.group])
            ]
        # All spawned before any is awaited: a clustered server serves clients at once,
        # JetStream once its peers are up (migrate waits for that).
        for server in self.nats:
            self._first_start(server, 0)
        for server in self.nats:
            try:
                server.wait_ready(20)
            except RuntimeError as e:
                raise StartupError(str(e)) from e
        # Every service gets every server as a seed.
        users = (*USERS, group_user(self.group))
        urls = {u: ",".join(server.url(u) for server in self.nats) for u in users}
        return urls, urls["events"]

    def _start_postgres(self, creds: dict[str, str]) -> dict[str, str]:
        """The DSN of the superuser's (migrations), then of each service's own role."""
        if self.database_url:
            return dict.fromkeys(("migrate", *PG_ROLES), self.database_url)
        d = self.data_dir
        self.postgres = Postgres(
            d / "pg", creds[pg_credential(PG_SUPERUSER)], d / "logs" / "postgres.log"
        )
        if self.postgres.user is not None:
            # Its own user reaches d/pg (traverse only); everything else in d is private.
            os.chmod(d, 0o711)  # noqa: S103
        self._first_start(self.postgres, 60)
        try:
            self.postgres.require_passwords()
        except Exception as e:
            raise StartupError(f"securing PostgreSQL failed: {e}") from e
        return {
            "migrate": self.postgres.dsn(),
            **{k: self.postgres.dsn(r, creds[pg_credential(r)]) for k, r in PG_ROLES.items()},
        }

    def _migrate(
        self, base: dict[str, str], urls: dict[str, str], dsn: dict[str, str], creds: dict[str, str]
    ) -> None:
        env = {
            **base,
            "PLAKAR_CP_NATS_URL": urls["admin"],
            "PLAKAR_CP_DATABASE_URL": dsn["migrate"],
        }
        if self.postgres is not None:
            passwords = {r: creds[pg_credential(r)] for r in PG_ROLES.values()}
            env["PLAKAR_CP_ROLE_PASSWORDS"] = json.dumps(passwords)
        if "events_admin" in urls and not self.nats_url:
            env["PLAKAR_CP_EVENTS_ADMIN_NATS_URL"] = urls["events_admin"]
        argv = [*CLI, "migrate"]
        if len(self.nats) > 1:
            argv += ["--replicas", str(min(3, len(self.nats)))]
        migrate = Service("migrate", argv, env, self.data_dir / "logs" / "migrate.log")
        migrate.spawn()
        assert migrate.process is not None
        if migrate.process.wait() != 0:
            tail = migrate.log_path.read_text(errors="replace")[-3000:]
            raise StartupError(f"migration failed:\n{tail}")

    def _services(
        self, base: dict[str, str], urls: dict[str, str], dsn: dict[str, str], events_url: str
    ) -> list[Service]:
        d = self.data_dir

        def service(name: str, kind: str, **extra: str) -> Service:
            # Its runners are of one group, and hold that group's NATS user only.
            user = group_user(self.group) if kind == "runner" else kind
            env = {**base, "PLAKAR_CP_NATS_URL": urls[user], "PLAKAR_CP_INSTANCE_ID": name, **extra}
            if kind == "runner":
                env = {k: v for k, v in env.items() if k not in RUNNER_WITHHELD}
            else:
                env["PLAKAR_CP_DATABASE_URL"] = dsn[kind]
            return Service(name, [*CLI, kind], env, d / "logs" / f"{name}.log")

        return [
            *(service(f"scheduler-{i}", "scheduler") for i in range(1, self.schedulers + 1)),
            service("history-1", "history"),
            *(
                service(
                    f"runner-{i}",
                    "runner",
                    PLAKAR_CP_WORK_DIR=str(d / "work" / f"r{i}"),
                    **self._runner_env(),
                )
                for i in range(1, self.runners + 1)
            ),
            service(
                "api-1",
                "api",
                PLAKAR_CP_HTTP_PORT=str(self.http_port),
                PLAKAR_CP_EVENTS_NATS_URL=events_url,
            ),
        ]

    @property
    def group(self) -> str:
        """The group of the stack's runners."""
        return group_of(self.runner_group)

    def _runner_env(self) -> dict[str, str]:
        env = {}
        if self.runner_slots is not None:
            env["PLAKAR_CP_RUNNER_SLOTS"] = str(self.runner_slots)
        if self.runner_group is not None:
            env["PLAKAR_CP_RUNNER_GROUP"] = self.runner_group
        return env

    def _announce(self, token: str, events_url: str) -> None:
        """endpoints.json (private), and where to go."""
        endpoints = {
            "api_url": f"http://127.0.0.1:{self.http_port}/api/v1",
            "ui_url": f"http://127.0.0.1:{self.http_port}/",
            "api_token": token,
            "events_nats_url": events_url,
        }
        path = self.data_dir / "endpoints.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(endpoints, f, indent=2)
        print(
            f"Plakar Control Plane is ready\n"
            f"  UI:        {endpoints['ui_url']}#token={token}\n"
            f"  API:       {endpoints['api_url']}  (Authorization: Bearer <api_token>)\n"
            f"  Endpoints: {path}\n"
            f"  Logs:      {self.data_dir / 'logs'}\n"
            f"Press Ctrl-C to stop.",
            flush=True,
        )

    def _first_start(self, child: Child, ready_within: float) -> None:
        s = Supervised(child)
        self.supervised.append(s)
        child.spawn()
        s.restarts.started(time.monotonic(), restart=False)
        if ready_within:
            try:
                child.wait_ready(ready_within)
            except RuntimeError as e:
                raise StartupError(str(e)) from e

    def _wait_ready(self, token: str) -> None:
        """Until the api says every part is up, every runner of this stack announces
        itself, and a runner answers connector actions (health checks that)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        health = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/api/v1/health",
            headers={"Authorization": f"Bearer {token}"},
        )
        host = socket.gethostname()
        runners = {
            s.process.pid for s in self.services if s.name.startswith("runner-") if s.process
        }
        last = "no answer"
        while time.monotonic() < deadline:
            for s in self.services:
                if s.returncode() is not None:
                    tail = s.log_path.read_text(errors="replace")[-3000:]
                    raise StartupError(f"{s.name} exited during start-up:\n{tail}")
            try:
                with urllib.request.urlopen(health, timeout=5) as r:  # noqa: S310 (http only)
                    h = json.loads(r.read())
                announced = {x["pid"] for x in h["runners"] if x["host"] == host}
                if h["status"] == "ok" and runners <= announced:
                    return
                last = json.dumps(h)
            except urllib.error.HTTPError as e:  # 503 while degraded, with the same body
                last = e.read().decode(errors="replace")
            except OSError as e:
                last = str(e)
            time.sleep(TICK_S)
        raise StartupError(f"services not ready after {READY_TIMEOUT_S:.0f}s: {last}")

    def _supervise(self, now: float) -> None:
        """Start again whatever died, NATS and PostgreSQL included; stop what a dead
        job left (deploy/orphans.py)."""
        own = {s.child.process.pid for s in self.supervised if s.child.process}
        if killed := orphans.tend(own):
            print(f"stopped processes a dead job left: {killed}", flush=True)
        for s in self.supervised:
            code = s.child.returncode()
            if code is None:
                continue
            if s.restarts.due_at is None:
                delay = s.restarts.exited(now)
                print(f"{s.child.name} exited ({code}); restarting in {delay:.1f}s", flush=True)
            elif now >= s.restarts.due_at:
                s.restarts.started(now)
                try:
                    s.child.spawn()
                except Exception as e:  # it will be tried again after a longer delay
                    print(f"{s.child.name} could not start: {e}", flush=True)

    def _stop(self) -> None:
        """Services first, then PostgreSQL, then NATS, which the services need to stop."""
        for s in self.services:
            if s.returncode() is None and s.process:
                s.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for s in self.services:
            s.stop(signal.SIGTERM, max(0.1, deadline - time.monotonic()))
        if self.postgres:
            self.postgres.stop()
        for server in self.nats:
            server.stop()


class StartupError(Exception):
    pass
