"""Streams and buckets replicated on a 3-server NATS cluster (`migrate --replicas`), and
the control plane on such a cluster (`plakar-cp up --nats-cluster 3`) losing a server
(`kill -9`) while 150 jobs run: every job ends once with its true status, no job runs
twice at once, the history is whole and the cluster whole again when the server is back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from nats.js import JetStreamContext

from deploy.embedded import NatsServer, load_credentials, nats_cluster
from deploy.supervisor import CLI
from shared import bus
from shared import subjects as s
from shared.events import decode_job_event
from shared.settings import Settings
from tests.integration.test_reliability import query, wait_for
from tests.support.cluster import Cluster, lagging, replicas_of
from tests.support.infra import external_services
from tests.support.plakar import damage_file_data
from tests.support.procs import argv, children
from tests.support.stack import REPO, Stack, running_stack, stack_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(external_services() is not None, reason="starts the embedded NATS servers"),
]


@contextmanager
def nats_servers(tmp_path: Path, size: int) -> Iterator[tuple[list[NatsServer], dict[str, str]]]:
    creds = load_credentials(tmp_path / "credentials.json")
    if size == 1:
        servers = [NatsServer(tmp_path / "nats", creds)]
    else:
        servers = nats_cluster(tmp_path / "nats", creds, size, tmp_path / "logs")
    try:
        for server in servers:
            server.spawn()
        for server in servers:
            server.wait_ready()
        yield servers, creds
    finally:
        for server in servers:
            server.stop()


def seeds(servers: list[NatsServer], user: str) -> str:
    return ",".join(server.url(user) for server in servers)


async def placement(js: JetStreamContext) -> dict[str, Any]:
    """What provisioning could change: each stream's and durable's configuration,
    creation time and RAFT group."""
    found: dict[str, Any] = {}
    for info in await js.streams_info():
        group = info.cluster.raft_group if info.cluster else None
        found[str(info.config.name)] = (info.config.as_dict(), info.created, group)
        for c in await js.consumers_info(str(info.config.name)):
            if c.config.durable_name is not None:
                group = c.cluster.raft_group if c.cluster else None
                found[f"{info.config.name}/{c.name}"] = (c.config.as_dict(), c.created, group)
    return found


@pytest.mark.timeout(120)
def test_migrate_replicates_every_stream_consumer_and_bucket(tmp_path: Path) -> None:
    async def provision(url: str, replicas: int | None) -> tuple[int, dict[str, int]]:
        """As `plakar-cp migrate [--replicas R]` does; returns the replicas used and
        where everything is."""
        nc = await bus.connect(url, "test")
        try:
            js = nc.jetstream()
            r = replicas or bus.default_replicas(nc)
            await bus.patiently(lambda: bus.provision(js, Settings(), r), 60, "provisioning")
            return r, await replicas_of(js)
        finally:
            await nc.close()

    async def readers(url: str, replicas: int) -> dict[str, int]:
        nc = await bus.connect(url, "test")
        try:
            await bus.provision_readers(nc.jetstream(), replicas)
            return await replicas_of(nc.jetstream())
        finally:
            await nc.close()

    async def unchanged_by_provisioning_again(url: str) -> tuple[dict[str, Any], list[str]]:
        nc = await bus.connect(url, "test")
        try:
            js = nc.jetstream()
            before = await placement(js)
            await bus.provision(js, Settings(), bus.default_replicas(nc))
            after = await placement(js)
            return {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}, (
                await lagging(js)
            )
        finally:
            await nc.close()

    with nats_servers(tmp_path / "one", 1) as (servers, _):
        replicas, placed = asyncio.run(provision(seeds(servers, "admin"), None))
        assert replicas == 1 and set(placed.values()) == {1}, placed

    with nats_servers(tmp_path / "three", 3) as (servers, _):
        admin = seeds(servers, "admin")
        started = time.monotonic()
        # Made on one server first, as an installation that grew into a cluster has them.
        replicas, placed = asyncio.run(provision(admin, 1))
        assert set(placed.values()) == {1}, placed
        replicas, placed = asyncio.run(provision(admin, None))
        grown = time.monotonic() - started
        assert replicas == 3
        durables = {k for k in placed if "/" in k}
        assert {f"KV_{b}" for b in (s.CLAIMS_BUCKET, s.SERVICES_BUCKET)} <= set(placed)
        assert {f"{s.EVENTS_STREAM}/{s.HISTORY_DURABLE}"} <= durables, placed
        assert set(placed.values()) == {3}, placed
        assert asyncio.run(readers(seeds(servers, "events_admin"), 3)) == {s.EVENTS_STREAM: 3}

        changed, not_whole = asyncio.run(unchanged_by_provisioning_again(admin))
        assert changed == {}, changed
        assert not_whole == [], not_whole
    print(f"\nR1 to R3 on 3 servers, every stream and bucket whole: {grown:.1f}s")


# The fault tests: 150 check jobs over 3 runner processes of 2 slots each (a hundred
# of them still queued or running when the server is killed).
JOBS = 150
FAILING_EVERY = 6  # every 6th job checks a damaged store: it fails, truly
RUNNERS, SLOTS = 3, 2
POSTERS = 8
# The database and the cluster are asked how far things are this often.
PROBE_S = 0.25
CLUSTER = ["--nats-cluster", "3", "--runner-slots", str(SLOTS)]
TERMINAL = ("succeeded", "failed", "cancelled", "skipped")


def check_task(stack: Stack, tmp_path: Path, name: str, damaged: bool) -> str:
    """A check task (run on demand) of a store holding one snapshot of one file; the
    damaged store's file data is damaged (its check fails: "object corrupted")."""
    src = tmp_path / f"{name}-src"
    src.mkdir()
    data = os.urandom(512 * 1024 if damaged else 1024)  # does not compress
    (src / "a.bin").write_bytes(data)
    store_path = tmp_path / f"{name}-store"
    store = stack.store(name, store_path)
    source = stack.connector(f"{name}-src", "source", str(src))
    body: dict[str, Any] = {"type": "backup", "source_id": source, "store_id": store}
    job = stack.wait_job(stack.post("/tasks", body, expect=201)["job_id"])
    assert job["status"] == "succeeded", job
    if damaged:
        damage_file_data(store_path, data)
    paused = [{"recurrence": "daily", "enabled": False}]
    body = {"type": "check", "name": name, "store_id": store, "schedules": paused}
    task: str = stack.post("/tasks", body, expect=201)["task"]["id"]
    return task


@dataclass
class PlakarWatch:
    """Samples the live `plakar ... check` processes of the stack's runners every 20 ms:
    when each run's private config dir (one per run of a job) was first and last seen."""

    up: int  # the pid of `plakar-cp up`, whose children are the runners
    seen: dict[str, list[float]] = field(default_factory=dict)
    _done: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self._done.is_set():
            now = time.monotonic()
            for config_dir in running_checks(self.up):
                self.seen.setdefault(config_dir, [now, now])[1] = now
            self._done.wait(0.02)

    @contextmanager
    def running(self) -> Iterator[PlakarWatch]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._done.set()
            thread.join()


def running_checks(up: int) -> list[str]:
    """The config dirs of the `plakar ... check` runs that the runners started."""
    found = []
    for service in children(up):
        if "runner" not in argv(service):
            continue
        for run in children(service):
            args = argv(run)
            if args and args[0].endswith("plakar") and "check" in args and "-configdir" in args:
                found.append(args[args.index("-configdir") + 1])
    return found


def overlapping_runs(stack: Stack, seen: dict[str, list[float]]) -> dict[str, list[Any]]:
    """Jobs two of whose plakar runs were seen alive at once (a run is known by the
    config dir its `$ plakar ...` output line names)."""
    rows = query(
        stack,
        "SELECT job_id, line FROM job_output WHERE stream = 'system' AND line LIKE '$ %check%'",
    )
    runs: dict[str, list[list[float]]] = defaultdict(list)
    for r in rows:
        words = r["line"].split()
        config_dir = words[words.index("-configdir") + 1]
        if config_dir in seen:
            runs[str(r["job_id"])].append(seen[config_dir])
    overlaps: dict[str, list[Any]] = {}
    for job_id, spans in runs.items():
        spans.sort()
        if any(b[0] <= a[1] for a, b in pairwise(spans)):
            overlaps[job_id] = spans
    return overlaps


def job_events(cluster: Cluster) -> list[tuple[str, str, int]]:
    """(job, kind, seq) of every job event the events stream holds."""

    async def read() -> list[tuple[str, str, int]]:
        nc = await bus.connect(cluster.url("admin"), "test")
        try:
            js = nc.jetstream()
            found: list[tuple[str, str, int]] = []
            sub = await js.subscribe(
                "plakar.events.job.>", stream=s.EVENTS_STREAM, ordered_consumer=True
            )
            while True:
                msg = await sub.next_msg(timeout=10)
                event = decode_job_event(msg.data)
                # The subject ends with the kind: plakar.events.job.<id>.<kind>
                found.append((event.job_id, msg.subject.rsplit(".", 1)[1], event.seq))
                if msg.metadata.num_pending == 0:
                    return found
        finally:
            await nc.close()

    # Read whole again if the reading consumer stalls (seen once, on a machine loaded
    # several times over, just after a node came back).
    for _ in range(2):
        try:
            return asyncio.run(read())
        except nats.errors.TimeoutError:
            continue
    return asyncio.run(read())


def listed_jobs(stack: Stack, task: str) -> dict[str, dict[str, Any]]:
    """Every job of the task as the API lists them, page after page."""
    jobs: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"task_id": task, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = stack.get("/jobs", **params)
        jobs.update({j["id"]: j for j in page["items"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return jobs


def ended(stack: Stack, tasks: list[str]) -> int:
    rows = query(
        stack,
        "SELECT count(*) AS n FROM jobs WHERE task_id = ANY($1::uuid[]) AND status = ANY($2)",
        tasks,
        list(TERMINAL),
    )
    return int(rows[0]["n"])


def through_a_node_kill(tmp_path: Path, victim: Callable[[Cluster], int], what: str) -> None:
    with running_stack(stack_dir("cluster"), runners=RUNNERS, options=CLUSTER) as stack:
        cluster = Cluster(stack.data_dir, stack.credentials())
        assert len(cluster.confs) == 3
        # A consumer's replicas catch up with its leader a moment after it is made.
        wait_for(lambda: cluster.not_whole() == [], 30, PROBE_S)
        good = check_task(stack, tmp_path, f"{what}-good", damaged=False)
        bad = check_task(stack, tmp_path, f"{what}-bad", damaged=True)
        expected = {}
        queued_at = time.monotonic()
        with PlakarWatch(stack.process.pid).running() as watch:
            # Asked for as many at once as a few users would: queued before a third end.
            tasks = [bad if n % FAILING_EVERY == 0 else good for n in range(JOBS)]
            with ThreadPoolExecutor(POSTERS) as pool:
                queued = pool.map(lambda t: stack.post(f"/tasks/{t}/run", expect=202), tasks)
                for task, answer in zip(tasks, queued, strict=True):
                    expected[answer["job_id"]] = "failed" if task == bad else "succeeded"
            queued_s = time.monotonic() - queued_at
            # Killed mid-flow: a third of the jobs done.
            wait_for(lambda: ended(stack, [good, bad]) >= JOBS // 3, 120, PROBE_S)
            node = victim(cluster)
            (pid,) = cluster.pids(node)
            done_at_kill = ended(stack, [good, bad])
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            back = wait_for(lambda: cluster.serves(node, pid), timeout=30)
            whole = wait_for(lambda: cluster.not_whole() == [], 60, PROBE_S) + back
            wait_for(lambda: ended(stack, [good, bad]) == JOBS, 180, PROBE_S)
            drained = time.monotonic()
        jobs = {**listed_jobs(stack, good), **listed_jobs(stack, bad)}
        assert set(jobs) == set(expected), "jobs missing from the history"
        wrong = {j: (jobs[j]["status"], v) for j, v in expected.items() if jobs[j]["status"] != v}
        assert wrong == {}, f"{len(wrong)} jobs ended otherwise than they should: {wrong}"
        retried = {j: job["attempt"] for j, job in jobs.items() if job["attempt"] != 1}
        assert retried == {}, f"jobs run more than once: {retried}"

        overlaps = overlapping_runs(stack, watch.seen)
        assert overlaps == {}, f"two plakar processes ran one job at once: {overlaps}"
        assert len(watch.seen) >= JOBS // 2, "the watch missed most runs"

        events = [e for e in job_events(cluster) if e[0] in expected]
        twice = [e for e, n in Counter(events).items() if n > 1]
        assert twice == [], f"events stored twice: {twice[:5]}"
        kinds = Counter((job, kind) for job, kind, _ in events)
        for job in expected:
            assert [kinds[(job, k)] for k in ("queued", "started", "finished")] == [1, 1, 1], job
        recorded = query(
            stack,
            "SELECT job_id, count(*) AS n FROM job_attempts WHERE job_id = ANY($1::uuid[])"
            " GROUP BY job_id",
            list(expected),
        )
        assert len(recorded) == JOBS and {r["n"] for r in recorded} == {1}

        # An external reader with the seeds of endpoints.json (all three servers).
        assert len(stack.endpoints["events_nats_url"].split(",")) == 3
        some_job = next(iter(expected))
        printed = subprocess.run(
            [*CLI, "events", "--data-dir", str(stack.data_dir), "--job", some_job],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()
        kinds_printed = [json.loads(line)["kind"] for line in printed]
        assert kinds_printed[0] == "queued" and kinds_printed[-1] == "finished", kinds_printed

        up_log = stack.up_log.read_text()
        exited = [line for line in up_log.splitlines() if " exited (" in line]
        assert exited == [line for line in exited if line.startswith(f"nats-server-{node} ")]
        assert len(exited) == 1, exited
        finished = sorted(
            r["finished_at"].timestamp()
            for r in query(
                stack,
                "SELECT finished_at FROM jobs WHERE task_id = ANY($1::uuid[])",
                [good, bad],
            )
        )
        stall = max(b - a for a, b in pairwise(finished))
        print(
            f"\n{what}: server {node} killed after {done_at_kill}/{JOBS} jobs; serving again "
            f"in {back:.2f}s, all replicas in step {whole:.1f}s after the kill; longest gap "
            f"between two jobs ending {stall:.2f}s; {JOBS} jobs queued in {queued_s:.1f}s, "
            f"all ended {drained - queued_at:.1f}s after the first was queued "
            f"({JOBS / (drained - queued_at):.1f} jobs/s) and {drained - killed:.1f}s after "
            f"the kill"
        )


@pytest.mark.timeout(300)
def test_a_nats_server_killed_loses_no_job(tmp_path: Path) -> None:
    # A server that does not lead the jobs stream (the next test kills that one).
    through_a_node_kill(
        tmp_path, lambda c: next(n for n in (1, 2, 3) if n != c.leader(s.JOBS_STREAM)), "node"
    )


@pytest.mark.timeout(300)
def test_the_jobs_stream_leader_killed_loses_no_job(tmp_path: Path) -> None:
    through_a_node_kill(tmp_path, lambda c: c.leader(s.JOBS_STREAM), "leader")
