"""Attacks on a running control plane, as an attacker would make them: with the API token
(options that run commands, locations out of scope), with the external readers' NATS
credentials, from another site's page in a real browser, with a service's database role,
and beyond every documented limit. Each must fail alone, with a clear 4xx."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import pwd
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from nats.js.errors import KeyNotFoundError
from playwright.sync_api import Browser, expect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from deploy.embedded import PG_ROLES, free_port
from shared import subjects as s
from tests.conftest import snapshot_paths
from tests.support.infra import external_services
from tests.support.stack import REPO, Stack, many_files, running_stack, stack_dir

pytestmark = pytest.mark.integration

embedded_only = pytest.mark.skipif(
    external_services() is not None, reason="needs the embedded NATS accounts and roles"
)


def refused(stack: Stack, body: dict[str, Any], field: str, why: str) -> None:
    r = stack.client.post("/connectors", json=body)
    assert r.status_code == 422, (body, r.text)
    assert r.json()["field"] == field and why in r.json()["error"], (body, r.text)


def test_no_option_makes_plakar_run_a_command(stack: Stack, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = f"touch {marker}; echo pw"
    store = {"name": "cmd-store", "role": "store", "location": str(tmp_path / "store")}
    refused(stack, {**store, "options": {"passphrase_cmd": command}}, "options.passphrase_cmd", "")
    for key in ("password_cmd", "keyfile", "location", "hooks", "PASSPHRASE_CMD"):
        refused(stack, {**store, "options": {key: "x"}}, f"options.{key}", "is not one")
    ok = stack.connector("cmd-ok", "store", str(tmp_path / "store"))
    r = stack.client.patch(f"/connectors/{ok}", json={"options": {"passphrase_cmd": command}})
    assert r.status_code == 422 and r.json()["field"] == "options.passphrase_cmd", r.text

    # Written past the api, straight into the database: the runner refuses it all the same.
    async def poison() -> None:
        conn = await asyncpg.connect(stack.database_url())
        try:
            await conn.execute(
                "UPDATE connectors SET options = $2 WHERE id = $1",
                ok,
                json.dumps({"passphrase_cmd": command}),
            )
        finally:
            await conn.close()

    asyncio.run(poison())
    r = stack.client.post(f"/connectors/{ok}/initialize")
    assert r.status_code == 422 and "passphrase_cmd" in r.json()["error"], r.text
    job_id = stack.post("/tasks", {"type": "check", "store_id": ok}, expect=201)["job_id"]
    job = stack.wait_job(job_id)
    assert job["status"] == "failed" and "refused" in job["error"], job
    assert "passphrase_cmd" in job["error"]
    time.sleep(1)
    assert not marker.exists(), "plakar ran the attacker's command"


LOCATIONS = [
    ("destination", "/etc", "system directory"),
    ("destination", "/", "system directory"),
    ("destination", "/usr/lib/x", "system directory"),
    ("destination", "/var/lib/dpkg", "system directory"),
    ("destination", "fs:///boot", "system directory"),
    ("destination", "stdout://", "not accepted"),
    ("destination", "stderr://", "not accepted"),
    ("source", "stdin://", "not accepted"),
    ("source", "tar:///tmp/x.tar", "not accepted"),
    ("store", "s3://bucket/x", "not accepted"),
    ("store", "http://169.254.169.254/latest/meta-data/", "link-local"),
    ("store", "http://[fd00:ec2::254]/", "metadata"),
    ("store", "http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ("store", "https://user:secret@backup.example.com/", "credentials"),
    ("source", "ptar:///tmp/x.ptar", "only be a store"),
]


def test_locations_have_a_scope(stack: Stack, tmp_path: Path) -> None:
    for role, location, why in LOCATIONS:
        refused(stack, {"name": "scope", "role": role, "location": location}, "location", why)
    own = stack.data_dir
    for role in ("source", "store", "destination"):
        for location in (str(own), f"{own}/credentials.json", f"fs://{own}/../data/pg"):
            body = {"name": "own", "role": role, "location": location}
            refused(stack, body, "location", "control plane's own files")
    refused(
        stack,
        {"name": "above", "role": "destination", "location": str(own.parent)},
        "location",
        "control plane's own files",
    )
    link = tmp_path / "etc-link"
    link.symlink_to("/etc")
    refused(
        stack,
        {"name": "link", "role": "destination", "location": str(link)},
        "location",
        "system directory",
    )


def test_a_backup_that_holds_the_data_dir_leaves_it_out(
    stack: Stack, plakar: str, tmp_path: Path
) -> None:
    home = stack.data_dir.parent  # the data dir and `up`'s own log
    source = stack.connector("holds-data", "source", str(home))
    store = stack.store("holds-data-store", tmp_path / "store")
    # Excludes that try to bring the data dir back in (gitignore's `!`: the last match wins).
    data = str(stack.data_dir)
    comeback = ["!credentials.json", "!**", f"!{data}", f"!{data}/**", "!*"]
    body = {"type": "backup", "source_id": source, "store_id": store, "excludes": comeback}
    job_id = stack.post("/tasks", body, expect=201)["job_id"]
    job = stack.wait_job(job_id, timeout=120)
    assert job["status"] == "succeeded", job
    paths = snapshot_paths(plakar, tmp_path / "direct", tmp_path / "store", job["snapshot_id"], "/")
    assert str(stack.up_log) in paths
    assert not [p for p in paths if p == str(stack.data_dir) or p.startswith(f"{stack.data_dir}/")]
    assert not [p for p in paths if "credentials.json" in p]


def test_secrets_are_masked_unless_known_not_to_be(stack: Stack, tmp_path: Path) -> None:
    store = stack.connector(
        "remote-store",
        "store",
        "https://backup.example.com:9876/store",
        passphrase="p4ss",
        auth_token="t0ken",
    )
    source = stack.connector("plain-src", "source", str(tmp_path), dont_traverse_fs="true")
    assert stack.get(f"/connectors/{store}")["options"] == {
        "passphrase": "********",
        "auth_token": "********",
    }
    assert stack.get(f"/connectors/{source}")["options"] == {"dont_traverse_fs": "true"}
    rules = stack.get("/rules")["connectors"]
    assert rules["non_secret"] == ["dont_traverse_fs"]


@embedded_only
def test_an_external_reader_cannot_write_into_the_control_plane(
    stack: Stack, tmp_path: Path
) -> None:
    creds = stack.credentials()
    host = stack.endpoints["events_nats_url"].rsplit("@", 1)[1]
    reader_url, admin_url = (
        stack.endpoints["events_nats_url"],
        f"nats://admin:{creds['admin']}@{host}",
    )
    job = "00000000-0000-4000-8000-00000000beef"

    async def attack() -> list[str]:
        errors: list[str] = []

        async def on_error(e: Exception) -> None:
            errors.append(str(e))

        nc = await nats.connect(reader_url, error_cb=on_error)
        js = nc.jetstream()
        for deliver in (f"$KV.{s.CLAIMS_BUCKET}.{job}", f"$KV.{s.SCHEDULER_LEASE_BUCKET}.leader"):
            try:  # a push consumer: the server would publish the events there
                await js.add_consumer(s.EVENTS_STREAM, deliver_subject=deliver)
            except Exception as e:
                errors.append(str(e))
        for attempt in (
            js.add_consumer(s.EVENTS_STREAM, durable_name=s.HISTORY_DURABLE, filter_subject="x.>"),
            js.delete_consumer(s.EVENTS_STREAM, s.HISTORY_DURABLE),
            js.delete_stream(s.EVENTS_STREAM),
            js.publish(s.JOB_DUE, b'{"job_id": "x"}', timeout=1),
        ):
            try:
                await attempt
            except Exception as e:
                errors.append(str(e))
        await nc.publish(f"$KV.{s.CLAIMS_BUCKET}.{job}", b"garbage")
        await nc.flush()
        await asyncio.sleep(1)  # anything published meanwhile would have arrived
        await nc.close()
        return errors

    async def control_plane() -> tuple[bool, str, str]:
        nc = await nats.connect(admin_url)
        js = nc.jetstream()
        try:
            claims = await js.key_value(s.CLAIMS_BUCKET)
            try:
                await claims.get(job)
                claimed = True
            except KeyNotFoundError:
                claimed = False
            lease = await (await js.key_value(s.SCHEDULER_LEASE_BUCKET)).get(s.SCHEDULER_LEASE_KEY)
            history = await js.consumer_info(s.EVENTS_STREAM, s.HISTORY_DURABLE)
            return claimed, (lease.value or b"").decode(), history.config.filter_subject or ""
        finally:
            await nc.close()

    asyncio.run(attack())
    claimed, leader, history_filter = asyncio.run(control_plane())
    assert not claimed
    assert leader.startswith("scheduler-")
    assert history_filter == s.EVENTS_ALL
    assert stack.get("/health")["active_scheduler"] == leader
    # The history still records new jobs.
    source = stack.connector("after-reader", "source", str(many_files(tmp_path / "src", 3)))
    store = stack.store("after-reader-store", tmp_path / "store")
    job_id = stack.post(
        "/tasks", {"type": "backup", "source_id": source, "store_id": store}, expect=201
    )["job_id"]
    assert stack.wait_job(job_id)["status"] == "succeeded"


def test_a_runner_refuses_a_work_dir_others_could_tamper_with(tmp_path: Path) -> None:
    def runner(work_dir: Path) -> str:
        env = {
            **os.environ,
            "PLAKAR_CP_WORK_DIR": str(work_dir),
            "PLAKAR_CP_NATS_URL": "nats://127.0.0.1:1",
        }
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "runner"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        return done.stderr

    shared_dir = tmp_path / "shared"
    shared_dir.mkdir()
    shared_dir.chmod(0o1777)  # like /tmp
    assert "may be written by other users" in runner(shared_dir)
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, pwd.getpwnam("nobody").pw_uid, -1)
        assert "belongs to uid" in runner(foreign)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    assert "not a directory" in runner(link)


class AttackerSite:
    """A page on another origin (another port of the same host: the same *site*, so the
    SameSite=Strict cookie still goes with its requests) that attacks the api."""

    def __init__(self, html: str) -> None:
        page = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *_: object) -> None:
                pass

        self.port = free_port()
        self.server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def jobs_of_task(stack: Stack, task_id: str) -> int:
    return len(stack.get("/jobs", task_id=task_id)["items"])


def test_another_site_cannot_use_the_session(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    source = stack.connector("csrf-src", "source", str(many_files(tmp_path / "src", 3)))
    store = stack.store("csrf-store", tmp_path / "store")
    disabled = [{"recurrence": "daily", "enabled": False}]
    body = {"type": "backup", "source_id": source, "store_id": store, "schedules": disabled}
    task = stack.post("/tasks", body, expect=201)["task"]["id"]
    api = stack.endpoints["api_url"]
    ws = api.replace("http://", "ws://")
    attacker = AttackerSite(f"""<!doctype html><script>
      window.results = [];
      const note = (x) => window.results.push(x);
      fetch("{api}/tasks/{task}/run", {{method: "POST", mode: "no-cors", credentials: "include",
            headers: {{"Content-Type": "text/plain"}}, body: "{{}}"}}).then(() => note("fetch"));
      fetch("{api}/tasks/{task}/run", {{method: "POST", credentials: "include",
            headers: {{"Content-Type": "application/json"}}, body: "{{}}"}})
        .then(() => note("json"), () => note("json-blocked"));
      const socket = new WebSocket("{ws}/events");
      socket.onmessage = () => note("ws-message");
      socket.onclose = () => note("ws-closed");
    </script>""")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{stack.endpoints['ui_url']}#token={stack.token}")
        expect(page).to_have_url(re.compile(r"#/scheduling/history$"))
        expect(page.locator("#health .health-title")).to_be_visible()  # signed in
        assert any(c["name"] == "plakar_cp_session" for c in context.cookies())
        page.goto(f"http://127.0.0.1:{attacker.port}/")
        page.wait_for_function("window.results.includes('ws-closed')", timeout=15_000)
        stack.post(f"/tasks/{task}/run", expect=202)  # one job, ours, to wait for
        time.sleep(1)
        results = page.evaluate("window.results")
    finally:
        context.close()
        attacker.close()
    assert "ws-message" not in results
    assert jobs_of_task(stack, task) == 1, "another site ran the task with the session"


def test_the_session_cookie_changes_state_only_from_the_ui(stack: Stack, tmp_path: Path) -> None:
    api = stack.endpoints["api_url"]
    opened = httpx.post(f"{api}/session", headers={"Authorization": f"Bearer {stack.token}"})
    assert opened.status_code == 201
    cookie = opened.cookies["plakar_cp_session"]
    set_cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    own = f"http://127.0.0.1:{stack.port}"
    browser = httpx.Client(base_url=api, cookies={"plakar_cp_session": cookie})
    body = {"name": "cookie-src", "role": "source", "location": str(tmp_path)}

    def post(headers: dict[str, str], content: str) -> httpx.Response:
        return browser.post("/connectors", headers=headers, content=content)

    forged = [
        ({"Origin": "http://evil.example", "Content-Type": "application/json"}, json.dumps(body)),
        ({"Content-Type": "application/json"}, json.dumps(body)),  # no Origin
        ({"Origin": own, "Content-Type": "text/plain"}, json.dumps(body)),
        ({"Origin": own, "Content-Type": "application/x-www-form-urlencoded"}, "name=x"),
    ]
    for headers, content in forged:
        r = post(headers, content)
        assert r.status_code == 403, (headers, r.status_code, r.text)
    r = post({"Origin": own, "Content-Type": "application/json"}, json.dumps(body))
    assert r.status_code == 201, r.text
    assert browser.get("/session").json()["via"] == "session"
    # Reading needs no Origin; the token in a query works only on WebSockets.
    assert browser.get("/jobs").status_code == 200
    assert httpx.get(f"{api}/jobs", params={"token": stack.token}).status_code == 401
    assert browser.delete("/session", headers={"Origin": own}).status_code == 200
    browser.cookies.set("plakar_cp_session", cookie)  # kept by an attacker who stole it
    assert browser.get("/jobs").status_code == 401

    async def websocket(**options: Any) -> str:
        try:
            async with connect(
                f"{api.replace('http', 'ws')}/events?token={stack.token}", **options
            ):
                return "open"
        except InvalidStatus as e:
            return str(e.response.status_code)

    assert asyncio.run(websocket()) == "open"
    assert asyncio.run(websocket(origin="http://evil.example")) == "403"


def test_every_answer_carries_the_security_headers(stack: Stack) -> None:
    base = stack.endpoints["ui_url"].rstrip("/")
    for url in (f"{base}/", f"{base}/ui/app.css", f"{base}/api/v1/jobs", f"{base}/nope"):
        r = httpx.get(url, headers={"Authorization": f"Bearer {stack.token}"})
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], url
    anonymous = httpx.get(f"{base}/api/v1/health")
    assert anonymous.json() == {"status": "ok"}  # no hostnames, no pids


@embedded_only
def test_each_service_has_a_database_role_of_its_own(stack: Stack, tmp_path: Path) -> None:
    async def check() -> dict[str, str]:
        superuser = await asyncpg.connect(stack.database_url())
        try:
            sessions = await superuser.fetch(
                """SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity a
                   JOIN pg_roles r ON r.rolname = a.usename
                   WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"""
            )
        finally:
            await superuser.close()
        assert {r["usename"] for r in sessions} == set(PG_ROLES.values()), sessions
        assert not any(r["rolsuper"] for r in sessions)
        outcome: dict[str, str] = {}
        for role in PG_ROLES.values():
            conn = await asyncpg.connect(stack.database_url(role))
            try:
                for name, sql in (
                    ("program", f"COPY (SELECT 1) TO PROGRAM 'touch {tmp_path}/pwned'"),
                    ("read-jobs", "SELECT count(*) FROM jobs"),
                    ("write-connectors", "UPDATE connectors SET name = name WHERE false"),
                    # Notification targets hold secrets: the api alone reads them.
                    ("read-targets", "SELECT count(*) FROM notification_targets"),
                    ("create", "CREATE TABLE evil (x int)"),
                ):
                    try:
                        await conn.execute(sql)
                        outcome[f"{role}:{name}"] = "allowed"
                    except asyncpg.InsufficientPrivilegeError:
                        outcome[f"{role}:{name}"] = "refused"
            finally:
                await conn.close()
        password = stack.credentials()["pg_postgres"]
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(stack.database_url().replace(f":{password}@", ":guess@"))
        return outcome

    outcome = asyncio.run(check())
    assert not (tmp_path / "pwned").exists()
    assert {k for k, v in outcome.items() if v == "allowed"} == {
        "plakar_api:read-jobs",
        "plakar_api:write-connectors",
        "plakar_api:read-targets",
        "plakar_scheduler:read-jobs",
        "plakar_history:read-jobs",
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as another user only as root")
def test_the_embedded_postgres_changes_no_permission_outside_its_data_dir() -> None:
    home = stack_dir("private").parent  # reachable by PostgreSQL's user
    private = home / "private"
    private.mkdir(mode=0o700)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "up",
            "--data-dir",
            str(private / "data"),
            "--http-port",
            str(free_port()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot reach" in done.stderr and str(private) in done.stderr, done.stderr
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.stat().st_mode) == 0o711


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    """A stack with small caps and an allow-list of path roots (the path given)."""
    allowed = tmp_path_factory.mktemp("allowed")
    env = {
        "PLAKAR_CP_MAX_CONNECTORS": "3",
        "PLAKAR_CP_MAX_TASKS": "2",
        "PLAKAR_CP_MAX_SCHEDULES": "2",
        "PLAKAR_CP_WS_PER_CALLER": "2",
        "PLAKAR_CP_ALLOWED_PATHS": str(allowed),
    }
    with running_stack(stack_dir("limited"), runners=1, env=env) as stack:
        yield stack, allowed


def test_documented_limits_answer_4xx(limited: tuple[Stack, Path]) -> None:
    stack, root = limited
    refused(
        stack, {"name": "out", "role": "source", "location": "/home"}, "location", "allowed paths"
    )
    src = stack.connector("in-src", "source", str(root / "src"))
    store = stack.connector("in-store", "store", str(root / "store"))
    refused(
        stack,
        {
            "name": "big",
            "role": "store",
            "location": str(root / "s"),
            "options": {"passphrase": "x" * 2000},
        },
        "options.passphrase",
        "at most 1024",
    )
    labels = [f"l{i}" for i in range(33)]
    r = stack.client.post("/tasks", json={"type": "check", "store_id": store, "labels": labels})
    assert r.status_code == 422 and r.json()["field"] == "labels", r.text
    huge = {"recurrence": "custom", "interval": {"days": 1_000_000_000_000}}
    r = stack.client.post("/tasks", json={"type": "check", "store_id": store, "schedules": [huge]})
    assert r.status_code == 422 and r.json()["field"] == "schedules[0].interval", r.text
    for window in ("99999999999999999999d", "9" * 5000 + "d"):
        r = stack.client.post("/tasks", json={"type": "check", "store_id": store, "window": window})
        assert r.status_code == 422 and r.json()["field"] == "window", r.text

    # Caps per installation: 3 connectors, 2 tasks, 2 schedules.
    stack.connector("third", "destination", str(root / "dest"))
    r = stack.client.post(
        "/connectors", json={"name": "fourth", "role": "source", "location": str(root)}
    )
    assert r.status_code == 409 and "most connectors it allows (3)" in r.json()["error"], r.text
    paused = {"recurrence": "daily", "enabled": False}
    body = {
        "type": "backup",
        "source_id": src,
        "store_id": store,
        "schedules": [paused, paused, paused],
    }
    r = stack.client.post("/tasks", json=body)
    assert r.status_code == 409 and "schedules" in r.json()["error"], r.text
    stack.post("/tasks", {**body, "schedules": [paused]}, expect=201)
    stack.post("/tasks", {**body, "schedules": [paused]}, expect=201)
    r = stack.client.post("/tasks", json={**body, "schedules": [paused]})
    assert r.status_code == 409 and "tasks" in r.json()["error"], r.text

    # Two live streams per caller at once; a third is closed with 4429.
    async def streams() -> tuple[int, str]:
        url = stack.ws_url("/events")
        async with connect(url), connect(url), connect(url) as third:
            with pytest.raises(ConnectionClosed) as e:
                await third.recv()
        assert e.value.rcvd is not None
        return e.value.rcvd.code, e.value.rcvd.reason

    code, reason = asyncio.run(streams())
    assert code == 4429 and "at most 2" in reason
