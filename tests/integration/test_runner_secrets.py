"""Runners hold no database: the api hands a runner the connectors of a job it holds,
over NATS, and nothing else. Attacks are made as an attacker would make them, with the
runner's NATS credential; the api going away makes a job wait, for a bounded time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from services.runner.job_connectors import REQUEST_TIMEOUT_S
from shared import claims, rpc
from shared import subjects as s
from shared.dispatch import job_messages
from shared.events import decode_job_due
from shared.ids import new_id
from shared.models import Task
from tests.support.infra import external_services
from tests.support.procs import processes
from tests.support.runners import extra_runner
from tests.support.stack import Stack, many_files, running_stack, stack_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        external_services() is not None, reason="needs the embedded NATS users and roles"
    ),
]

# Where the stack's runners (of the default group) ask for their jobs' connectors.
ASK = s.rpc_job_connectors("default")
# How long a job waits for an api in the stack of the api tests (short to be seen).
PATIENCE_S = 15


def nats_url(stack: Stack, user: str) -> str:
    host_port = stack.endpoints["events_nats_url"].split(",")[0].rsplit("@", 1)[1]
    return f"nats://{user}:{stack.credentials()[user]}@{host_port}"


def service_pids(stack: Stack, kind: str) -> list[int]:
    """The processes of the stack's services of that kind (`python -m services.cli KIND`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours
        if b"services.cli" not in argv or kind.encode() not in argv:
            continue
        if f"PLAKAR_CP_DATA_DIR={stack.data_dir}".encode() in env:
            found.append(int(entry.name))
    return found


def process_text(pid: int) -> str:
    """What a process was given: its arguments and environment."""
    return "\0".join(
        (Path(f"/proc/{pid}") / part).read_bytes().decode(errors="replace")
        for part in ("cmdline", "environ")
    )


def test_runner_processes_hold_no_database_credential(stack: Stack) -> None:
    runners, apis = service_pids(stack, "runner"), service_pids(stack, "api")
    assert runners and apis
    assert "PLAKAR_CP_DATABASE_URL=postgresql://" in process_text(apis[0])  # as seen from here
    # Only their group's NATS user: not even the all-groups `runner`.
    others = {k: v for k, v in stack.credentials().items() if k != "runner-default"}
    for pid in runners:
        given = process_text(pid)
        assert "PLAKAR_CP_DATABASE_URL" not in given
        assert "postgresql://" not in given
        assert "PLAKAR_CP_API_TOKEN" not in given
        leaked = [name for name, secret in others.items() if secret in given]
        assert not leaked, f"runner {pid} holds {leaked}"

    async def runner_role() -> asyncpg.Record:
        conn = await asyncpg.connect(stack.database_url())
        try:
            row = await conn.fetchrow(
                """SELECT rolcanlogin, rolpassword IS NULL AS no_password,
                          has_table_privilege(oid, 'connectors', 'SELECT') AS reads
                   FROM pg_authid WHERE rolname = 'plakar_runner'"""
            )
            assert row is not None
            return row
        finally:
            await conn.close()

    role = asyncio.run(runner_role())
    assert (role["rolcanlogin"], role["no_password"], role["reads"]) == (False, True, False)


def test_jobs_and_connector_actions_still_reach_encrypted_stores(
    stack: Stack, tmp_path: Path
) -> None:
    passphrase = "runner-secrets-p4ss"
    source = stack.connector("rs-src", "source", str(many_files(tmp_path / "src", 5)))
    store = stack.store("rs-store", tmp_path / "store", passphrase=passphrase)  # an action
    body = {"type": "backup", "source_id": source, "store_id": store}
    job_id = stack.post("/tasks", body, expect=201)["job_id"]
    job = stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    snapshots = stack.get(f"/connectors/{store}/snapshots")
    assert [x["id"] for x in snapshots] == [job["snapshot_id"]]
    listing = stack.get(f"/connectors/{store}/snapshots/{job['snapshot_id']}/files")
    assert listing["entries"]
    assert passphrase not in "\n".join(stack.output_lines(job_id))


@contextmanager
def long_backup(
    stack: Stack, tmp_path: Path, name: str, group: str | None = None
) -> Iterator[tuple[str, list[str]]]:
    """A backup (run by `group`'s runners) kept running for the block, its plakar stopped
    (SIGSTOP) once it has begun, however fast it would be; its job and connectors."""
    source = stack.connector(f"{name}-src", "source", str(many_files(tmp_path / name, 4000)))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store", passphrase="held-s3cret")
    body = {"type": "backup", "source_id": source, "store_id": store, "concurrency": 1}
    created = stack.post("/tasks", {**body, "runner_group": group}, expect=201)
    job_id: str = created["job_id"]
    stack.wait_running(job_id, lines=20)
    # The runner names the job after its task (`-job <task id>`, the task has no name).
    [pid] = processes("backup", "-job", created["task"]["id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield job_id, [source, store]
    finally:
        os.kill(pid, signal.SIGCONT)


async def message_of(stack: Stack, job_id: str) -> int:
    """The stream sequence of the job's message (read as the admin)."""
    nc = await nats.connect(nats_url(stack, "admin"))
    try:
        js = nc.jetstream()
        info = await js.stream_info(s.JOBS_STREAM)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                raw = await js.get_msg(s.JOBS_STREAM, seq=seq)
            except NotFoundError:
                continue
            if decode_job_due(raw.data or b"").job_id == job_id:
                return seq
    finally:
        await nc.close()
    raise AssertionError(f"no message of job {job_id}")


def ask(job_id: str, message: int, runner: str = "intruder") -> bytes:
    since = datetime.now(UTC)
    return rpc.encode(
        rpc.JobConnectors(job_id=job_id, message=message, runner=runner, runner_since=since)
    )


def test_a_runner_credential_gets_no_connectors_of_jobs_it_does_not_hold(
    stack: Stack, tmp_path: Path
) -> None:
    with long_backup(stack, tmp_path, "held") as (held, connectors):
        seq = asyncio.run(message_of(stack, held))
        job_connectors_attack(stack, held, connectors, seq)
    the_api_serves_the_next_job(stack, held, connectors)


class Refusals:
    """What NATS says it refused a client, each refusal reported on its own, after the
    fact (the client's error callback)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._more = asyncio.Event()

    async def on_error(self, e: Exception) -> None:
        self.errors.append(str(e).lower())
        self._more.set()

    async def connect(self, stack: Stack, user: str) -> Client:
        """A client of `user` whose refusals these are; its replies come as a runner's."""
        return await nats.connect(
            nats_url(stack, user), inbox_prefix=s.RUNNER_INBOX_PREFIX, error_cb=self.on_error
        )

    async def wait(self, count: int) -> list[str]:
        async with asyncio.timeout(10):
            while True:
                self._more.clear()
                if sum("permissions violation" in e for e in self.errors) >= count:
                    return self.errors
                await self._more.wait()


def test_a_runner_groups_credential_reaches_no_other_groups_job(
    stack: Stack, tmp_path: Path
) -> None:
    """The stack's runners hold their group's own NATS user (`runner-default`). Stolen,
    it reaches no job of another group: not its queue, nor its connector actions, nor,
    with a copy of such a job's claim, its connectors."""
    group = f"g{new_id()[:8]}"
    with extra_runner(stack, tmp_path / "runners", f"{group}-r1", group):
        with long_backup(stack, tmp_path, "other-group", group) as (held, _):
            seq = asyncio.run(message_of(stack, held))
            errors, answer = asyncio.run(group_attack(stack, group, held, seq))
            assert stack.get(f"/jobs/{held}")["status"] == "running"
        # Its own runner, with the all-groups user, was handed the connectors.
        assert stack.wait_job(held)["status"] == "succeeded"
    refused = [
        f'subscription to "{s.rpc_connector(group)}"',
        f'publish to "{s.rpc_job_connectors(group)}"',
        f'publish to "$JS.API.CONSUMER.MSG.NEXT.{s.JOBS_STREAM}.{s.runners_durable(group)}"',
    ]
    for what in refused:
        assert any(what.lower() in e for e in errors), (what, errors)
    assert isinstance(answer, rpc.Failed) and answer.reason == "not_found", answer
    assert "is not in runner group default's queue" in answer.message
    # Its own runner, with the all-groups user, was handed the connectors.
    assert stack.wait_job(held)["status"] == "succeeded"


async def group_attack(
    stack: Stack, group: str, held: str, seq: int
) -> tuple[list[str], rpc.ConnectorsReply]:
    admin = await nats.connect(nats_url(stack, "admin"))
    try:
        kv = await admin.jetstream().key_value(s.CLAIMS_BUCKET)
        claim = claims.decode((await kv.get(held)).value or b"")
        assert claim.runner is not None and claim.runner_since is not None
    finally:
        await admin.close()
    refusals = Refusals()
    nc = await refusals.connect(stack, "runner-default")
    try:
        await nc.subscribe(s.rpc_connector(group))
        copied = rpc.JobConnectors(
            job_id=held, message=seq, runner=claim.runner, runner_since=claim.runner_since
        )
        await nc.publish(s.rpc_job_connectors(group), rpc.encode(copied), reply=nc.new_inbox())
        pull = f"$JS.API.CONSUMER.MSG.NEXT.{s.JOBS_STREAM}.{s.runners_durable(group)}"
        await nc.publish(pull, b'{"batch": 1}', reply=nc.new_inbox())
        # Under its own group's subject, the copied claim gets nothing either.
        reply = await nc.request(s.rpc_job_connectors("default"), rpc.encode(copied), timeout=10)
        return await refusals.wait(3), rpc.decode_connectors_reply(reply.data)
    finally:
        await nc.close()


def job_connectors_attack(stack: Stack, held: str, connectors: list[str], seq: int) -> None:
    done = stack.post("/tasks", {"type": "check", "store_id": connectors[1]}, expect=201)
    assert stack.wait_job(done["job_id"])["status"] in ("succeeded", "failed")
    fake = new_id()

    async def attack() -> tuple[list[str], list[bytes], list[Any]]:
        errors: list[str] = []
        overheard: list[bytes] = []

        async def on_error(e: Exception) -> None:
            errors.append(str(e))

        async def overhear(msg: Any) -> None:
            overheard.append(msg.data)

        nc = await nats.connect(
            nats_url(stack, "runner"), inbox_prefix=s.RUNNER_INBOX_PREFIX, error_cb=on_error
        )
        try:
            # Answer runners in the api's place, or read what others are answered.
            for subject in (s.RPC_JOB_CONNECTORS_ALL, "plakar.rpc.>", "_INBOX.>", ">"):
                await nc.subscribe(subject, cb=overhear)
            # A claim of its own, for a job that was never queued.
            kv = await nc.jetstream().key_value(s.CLAIMS_BUCKET)
            since = datetime.now(UTC)
            mine = {"state": "running", "attempt": 1, "runner": "intruder"}
            await kv.put(fake, json.dumps({**mine, "runner_since": since.isoformat()}).encode())
            requests = [
                ask(held, seq),  # running, held by a real runner
                ask(held, seq, runner="runner-1"),  # named after a runner, not its process
                ask(done["job_id"], seq),  # ended: its message is gone
                rpc.encode(
                    rpc.JobConnectors(
                        job_id=fake, message=seq, runner="intruder", runner_since=since
                    )
                ),  # its own claim, but another job's message
                *(ask(held, n) for n in (seq + 2**30, 2**40)),  # no such message
                b"garbage",
                b"{" * 900_000,  # near NATS's max payload
                msgspec.json.encode({"job_id": held, "connector_ids": connectors}),
            ]
            answers = [
                rpc.decode_connectors_reply((await nc.request(ASK, r, timeout=10)).data)
                for r in requests
            ]
            # A flood at once: every one answered, none served.
            flood = await asyncio.gather(
                *(nc.request(ASK, ask(held, seq), timeout=30) for _ in range(300))
            )
            answers += [rpc.decode_connectors_reply(m.data) for m in flood]
            await asyncio.sleep(1)  # what the subscriptions would have overheard meanwhile
            return errors, overheard, answers
        finally:
            await nc.close()

    errors, overheard, answers = asyncio.run(attack())
    for subject in (s.RPC_JOB_CONNECTORS_ALL, "plakar.rpc.>", "_INBOX.>", ">"):
        assert any(f'subscription to "{subject.lower()}"' in e.lower() for e in errors), errors
    assert overheard == []
    served = [a for a in answers if not isinstance(a, rpc.Failed)]
    assert not served, served[:1]
    reasons = [a.reason for a in answers if isinstance(a, rpc.Failed)]
    assert reasons[:2] == ["refused", "refused"]
    assert set(reasons[2:6]) == {"not_found"}
    assert reasons[6:9] == ["refused"] * 3
    text = json.dumps([a.message for a in answers if isinstance(a, rpc.Failed)][:9])
    assert "held-s3cret" not in text and not any(c in text for c in connectors)
    assert stack.get("/jobs/" + held)["status"] == "running"  # the job held goes on


def test_a_runner_credential_tells_only_what_runners_do(stack: Stack, tmp_path: Path) -> None:
    """It may publish a job's started, progress, log and finished events, nothing else:
    not that a job was queued or skipped, nor a schedule's or a freshness event. An event
    under a subject it may publish to but of another kind or another job is stored by
    NATS and refused by the history: no job appears that nobody queued."""
    task = a_task(stack, tmp_path, "forger")
    forged = new_id()
    queued, _ = job_messages(task, "manual", forged)
    real = stack.post(f"/tasks/{task.id}/run", expect=202)["job_id"]
    assert stack.wait_job(real)["status"] == "succeeded"

    async def forge() -> list[str]:
        refusals = Refusals()
        nc = await nats.connect(
            nats_url(stack, "runner"),
            inbox_prefix=s.RUNNER_INBOX_PREFIX,
            error_cb=refusals.on_error,
        )
        try:
            refused = [
                queued.subject,
                s.job_event(forged, "skipped"),
                s.schedule_event(new_id(), "fired"),
                s.freshness_event("task", task.id, "freshness.restored"),
            ]
            for subject in refused:
                await nc.publish(subject, queued.payload)
            js = nc.jetstream()
            # Allowed subjects, stored by NATS: the queued event as another kind, and as
            # another job's line.
            for subject in (s.job_event(forged, "started"), s.job_event(real, "log")):
                await js.publish(subject, queued.payload)
            await nc.flush()
            return await refusals.wait(len(refused))
        finally:
            await nc.close()

    errors = asyncio.run(forge())
    for subject in (queued.subject, "plakar.events.schedule.", "plakar.events.freshness."):
        assert any(f'publish to "{subject}' in e for e in errors), errors
    # The history reads the events in order: a job queued after them is projected after.
    after = stack.post(f"/tasks/{task.id}/run", expect=202)["job_id"]
    assert stack.wait_job(after)["status"] == "succeeded"
    assert stack.client.get(f"/jobs/{forged}").status_code == 404
    logs = stack.logs()
    assert f"skipping event {s.job_event(forged, 'started')}: it holds a queued event" in logs
    assert (
        f"skipping event {s.job_event(real, 'log')}: it holds a queued event of job {forged}"
        in logs
    )


def the_api_serves_the_next_job(stack: Stack, held: str, connectors: list[str]) -> None:
    stack.client.post(f"/jobs/{held}/cancel")
    again = stack.post("/tasks", {"type": "check", "store_id": connectors[1]}, expect=201)
    assert stack.wait_job(again["job_id"])["status"] in ("succeeded", "failed")
    assert "no api handed over" not in (stack.wait_job(again["job_id"])["error"] or "")


@pytest.fixture(scope="module")
def api_away() -> Iterator[Stack]:
    env = {"PLAKAR_CP_CONNECTORS_PATIENCE": str(PATIENCE_S)}
    with running_stack(stack_dir("api-away"), runners=1, env=env) as stack:
        yield stack


def a_task(stack: Stack, tmp_path: Path, name: str) -> Task:
    source = stack.connector(f"{name}-src", "source", str(many_files(tmp_path / name, 5)))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store", passphrase="away-p4ssphrase")
    body = {"type": "backup", "name": name, "source_id": source, "store_id": store}
    disabled = [{"recurrence": "daily", "enabled": False}]
    created = stack.post("/tasks", {**body, "schedules": disabled}, expect=201)
    return msgspec.convert(created["task"], Task)


async def queue_past_the_api(stack: Stack, task: Task) -> str:
    """Queue a job as the api does, without the api (as the admin user)."""
    job_id = new_id()
    nc = await nats.connect(nats_url(stack, "admin"))
    try:
        js = nc.jetstream()
        for message in job_messages(task, "manual", job_id):
            await js.publish(message.subject, message.payload)
    finally:
        await nc.close()
    return job_id


async def finished(stack: Stack, job_id: str, within: float) -> dict[str, Any]:
    """The job's finished event, read from the stream (the api may be away)."""
    nc = await nats.connect(nats_url(stack, "admin"))
    deadline = time.monotonic() + within
    try:
        while True:
            try:
                raw = await nc.jetstream().get_last_msg(
                    s.EVENTS_STREAM, s.job_event(job_id, "finished")
                )
                event: dict[str, Any] = json.loads(raw.data or b"{}")
                return event
            except NotFoundError:
                assert time.monotonic() < deadline, f"job {job_id} did not end in {within}s"
                await asyncio.sleep(0.2)
    finally:
        await nc.close()


def api_answers(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if stack.client.get("/health").status_code in (200, 503):
                return
        except Exception:  # noqa: S110 (not up yet)
            pass
        time.sleep(0.2)
    raise AssertionError("the api did not come back")


def test_a_job_whose_api_stays_away_fails_in_bounded_time(api_away: Stack, tmp_path: Path) -> None:
    stack = api_away
    task = a_task(stack, tmp_path, "stopped-api")
    (api,) = service_pids(stack, "api")
    os.kill(api, signal.SIGSTOP)
    try:
        started = time.monotonic()
        job_id = asyncio.run(queue_past_the_api(stack, task))
        event = asyncio.run(finished(stack, job_id, within=90))
        took = time.monotonic() - started
    finally:
        os.kill(api, signal.SIGCONT)
    assert event["status"] == "failed", event
    assert f"no api handed over the job's connectors within {PATIENCE_S}s" in event["error"]
    assert took < PATIENCE_S + REQUEST_TIMEOUT_S + 15, took
    api_answers(stack)
    job = stack.wait_job(job_id)
    assert job["status"] == "failed" and "no api handed over" in job["error"], job


def test_a_job_waits_out_an_api_restart(api_away: Stack, tmp_path: Path) -> None:
    stack = api_away
    task = a_task(stack, tmp_path, "killed-api")
    (api,) = service_pids(stack, "api")
    os.kill(api, signal.SIGKILL)
    job_id = asyncio.run(queue_past_the_api(stack, task))
    event = asyncio.run(finished(stack, job_id, within=90))
    assert event["status"] == "succeeded", event.get("error")
    api_answers(stack)
    assert service_pids(stack, "api") != [api]
    assert f"job {job_id}: asking the api for its connectors again" in stack.logs()
    assert stack.wait_job(job_id)["status"] == "succeeded"
