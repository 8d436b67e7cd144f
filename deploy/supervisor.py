"""`plakar-cp up`: the embedded stack and every service as child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from deploy.embedded import NatsServer, Postgres, load_credentials
from shared.proc import die_with_parent

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    def start(self) -> None:
        log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C reaches the supervisor only,
            # which stops the services in order; they still die if it is killed.
            process_group=0,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Stack:
    data_dir: Path
    http_port: int
    runners: int
    # One is active, the others stand by to take over (see docs/scheduling.md).
    schedulers: int = 2
    nats_url: str | None = None
    database_url: str | None = None
    children: list[Child] = field(default_factory=list)
    nats: NatsServer | None = None
    postgres: Postgres | None = None

    def up(self) -> int:
        stopping = False

        def on_signal(signum: int, _: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            self._start()
            while not stopping:
                self._supervise()
                time.sleep(0.2)
            print("stopping...", flush=True)
            return 0
        except StartupError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._stop()

    def _start(self) -> None:
        d = self.data_dir
        (d / "logs").mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        creds = load_credentials(d / "credentials.json")
        token = os.environ.get("PLAKAR_CP_API_TOKEN") or creds["api_token"]
        if self.nats_url:
            urls = dict.fromkeys((*creds, "admin"), self.nats_url)
            events_url = os.environ.get("PLAKAR_CP_EVENTS_NATS_URL", self.nats_url)
        else:
            self.nats = NatsServer(d / "nats", creds)
            self.nats.start()
            urls = {u: self.nats.url(u) for u in creds if u != "api_token"}
            events_url = urls["events"]
        dsn = self.database_url
        if not dsn:
            self.postgres = Postgres(d / "pg")
            self.postgres.start()
            dsn = self.postgres.dsn
        base = {**os.environ, "PLAKAR_CP_DATABASE_URL": dsn, "PLAKAR_CP_API_TOKEN": token}
        cli = [sys.executable, "-m", "services.cli"]
        migrate = subprocess.run(
            [*cli, "migrate"],
            env={**base, "PLAKAR_CP_NATS_URL": urls["admin"]},
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise StartupError(f"migration failed:\n{migrate.stderr[-3000:]}")

        def child(name: str, kind: str, **extra: str) -> Child:
            env = {**base, "PLAKAR_CP_NATS_URL": urls[kind], "PLAKAR_CP_INSTANCE_ID": name, **extra}
            return Child(name, [*cli, kind], env, d / "logs" / f"{name}.log")

        self.children = [
            *(child(f"scheduler-{i}", "scheduler") for i in range(1, self.schedulers + 1)),
            child("history-1", "history"),
            *(
                child(f"runner-{i}", "runner", PLAKAR_CP_WORK_DIR=str(d / "work" / f"r{i}"))
                for i in range(1, self.runners + 1)
            ),
            child(
                "api-1",
                "api",
                PLAKAR_CP_HTTP_PORT=str(self.http_port),
                PLAKAR_CP_EVENTS_NATS_URL=events_url,
            ),
        ]
        for c in self.children:
            c.start()
        self._wait_ready()
        endpoints = {
            "api_url": f"http://127.0.0.1:{self.http_port}/api/v1",
            "ui_url": f"http://127.0.0.1:{self.http_port}/",
            "api_token": token,
            "events_nats_url": events_url,
        }
        path = d / "endpoints.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(endpoints, f, indent=2)
        print(
            f"Plakar Control Plane is ready\n"
            f"  UI:        {endpoints['ui_url']}#token={token}\n"
            f"  API:       {endpoints['api_url']}  (Authorization: Bearer <api_token>)\n"
            f"  Endpoints: {path}\n"
            f"  Logs:      {d / 'logs'}\n"
            f"Press Ctrl-C to stop.",
            flush=True,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        url = f"http://127.0.0.1:{self.http_port}/api/v1/health"
        last = "no answer"
        while time.monotonic() < deadline:
            for c in self.children:
                if not c.alive():
                    tail = c.log_path.read_text(errors="replace")[-3000:]
                    raise StartupError(f"{c.name} exited during start-up:\n{tail}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    h = json.loads(r.read())
                if len(h["runners"]) >= self.runners and h["history"] and h["active_scheduler"]:
                    return
                last = json.dumps(h)
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        raise StartupError(f"services not ready after {READY_TIMEOUT_S:.0f}s: {last}")

    def _supervise(self) -> None:
        """Restart a service that died, waiting longer after each restart."""
        now = time.monotonic()
        for c in self.children:
            if c.alive():
                continue
            if c.next_start == 0.0:
                delay = min(30.0, 2.0**c.restarts)
                c.next_start = now + delay
                print(
                    f"{c.name} exited ({c.process.returncode if c.process else '?'}); "
                    f"restarting in {delay:.0f}s",
                    flush=True,
                )
            elif now >= c.next_start:
                c.restarts += 1
                c.next_start = 0.0
                c.start()

    def _stop(self) -> None:
        for c in self.children:
            if c.alive() and c.process:
                c.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for c in self.children:
            if c.process is None:
                continue
            try:
                c.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.process.kill()
                c.process.wait()
        if self.postgres:
            self.postgres.stop()
        if self.nats:
            self.nats.stop()


class StartupError(Exception):
    pass
