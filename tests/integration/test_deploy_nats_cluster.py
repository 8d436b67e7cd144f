"""The NATS configuration of the deploy files (deploy/kubernetes/nats.conf, written by
`plakar-cp nats-config`) on three real nats-server processes, started the way the
containers start them: the same configuration for every node, the node's name, the
passwords and the routes from the environment the env files / Secrets give."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from deploy import cluster
from deploy.embedded import free_port
from shared import bus
from shared import subjects as s
from shared.settings import Settings

pytestmark = pytest.mark.integration

NATS_SERVER = str(Path(sys.executable).with_name("nats-server"))
START_TIMEOUT_S = 30.0


@dataclass
class Node:
    name: str
    client: int
    route: int
    monitor: int
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Cluster:
    nodes: list[Node]
    creds: dict[str, str]
    dir: Path

    def url(self, user: str, password: str | None = None) -> str:
        secret = self.creds[f"nats:{user}"] if password is None else password
        return ",".join(f"nats://{user}:{secret}@127.0.0.1:{n.client}" for n in self.nodes)

    def env(self, creds: dict[str, str]) -> dict[str, str]:
        """What the env file gives the nodes, with the routes of this machine's ports."""
        nodes = [("127.0.0.1", n.route) for n in self.nodes]
        return {
            "PATH": os.environ.get("PATH", ""),
            **cluster.service_env("compose", creds)["nats"],
            cluster.ROUTES_VAR: cluster.routes(creds[f"nats:{cluster.ROUTE_USER}"], nodes),
        }

    def start(self, node: Node, env: dict[str, str]) -> subprocess.Popen[bytes]:
        conf = self.dir / f"{node.name}.conf"
        conf.write_text(
            cluster.nats_config(
                host="127.0.0.1",
                client_port=node.client,
                cluster_port=node.route,
                monitor_port=node.monitor,
                store_dir=str(self.dir / node.name),
            )
        )
        with open(self.dir / f"{node.name}.log", "ab") as log:
            return subprocess.Popen(
                [NATS_SERVER, "-c", str(conf)],
                env={**env, cluster.SERVER_NAME_VAR: node.name},
                stdout=log,
                stderr=log,
            )


def _healthy(node: Node) -> bool:
    # Healthy once JetStream has its meta leader (the nodes found each other).
    url = f"http://127.0.0.1:{node.monitor}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _routez(node: Node) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor}/routez", timeout=5) as r:
        body: bytes = r.read()
    return body


def _node(name: str) -> Node:
    return Node(name, free_port(), free_port(), free_port())


def _stop(c: Cluster) -> None:
    for node in c.nodes:
        if node.process is not None:
            node.process.send_signal(signal.SIGTERM)
    for node in c.nodes:
        if node.process is not None:
            node.process.wait(10)


def _started(tmp_path: Path, creds: dict[str, str]) -> Cluster | None:
    """Three nodes on free ports, once healthy; None (the nodes stopped) if a node lost
    one of its ports to another process first: a free port cannot be held until the
    server binds it, and the other test workers start servers meanwhile."""
    tmp_path.mkdir()
    c = Cluster([_node(f"n{i}") for i in range(3)], creds, tmp_path)
    env = c.env(creds)
    for node in c.nodes:
        node.process = c.start(node, env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(_healthy(n) for n in c.nodes):
        if any(n.process is not None and n.process.poll() is not None for n in c.nodes):
            _stop(c)
            logs = "".join(p.read_text() for p in tmp_path.glob("n*.log"))
            assert "address already in use" in logs, logs[-5000:]
            return None
        assert time.monotonic() < deadline, "the cluster did not come up"
        time.sleep(0.1)
    return c


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[Cluster]:
    creds = cluster.new_credentials()
    for attempt in range(3):
        c = _started(tmp_path / f"try{attempt}", creds)
        if c is not None:
            break
    else:
        raise AssertionError("the cluster's ports were taken three times over")
    try:
        yield c
    finally:
        _stop(c)


async def test_streams_are_kept_on_the_three_nodes(nats_cluster: Cluster) -> None:
    """`migrate` with the admin's URL (every seed) provisions R3 streams and buckets; the
    readers' account gets its copy of the events, which the `events` user reads."""
    admin = await bus.connect(nats_cluster.url("admin"), "test")
    readers_admin = await bus.connect(nats_cluster.url("events_admin"), "test")
    try:
        js = admin.jetstream()
        await bus.patiently(lambda: bus.provision(js, Settings(), 3), 60, "provisioning")
        rjs = readers_admin.jetstream()
        await bus.patiently(lambda: bus.provision_readers(rjs, 3), 60, "provisioning")
        for stream in (s.JOBS_STREAM, s.EVENTS_STREAM, f"KV_{s.CLAIMS_BUCKET}"):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3
            assert info.cluster is not None and len(info.cluster.replicas or []) == 2
    finally:
        await admin.close()
        await readers_admin.close()
    reader = await bus.connect(nats_cluster.url("events"), "test")
    try:
        info = await reader.jetstream().stream_info(s.EVENTS_STREAM)
        assert info.config.num_replicas == 3
    finally:
        await reader.close()


async def test_a_wrong_password_is_refused(nats_cluster: Cluster) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(
            nats_cluster.url("runner", "not-its-password"),
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )


def test_a_server_without_the_routes_password_does_not_join(nats_cluster: Cluster) -> None:
    intruder = _node("intruder")
    process = nats_cluster.start(intruder, nats_cluster.env(cluster.new_credentials()))
    log = nats_cluster.dir / "intruder.log"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Authorization Violation" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.1)

        # The cluster's side says who joined (a route names its peer: the nodes name each
        # other). The intruder's may list, for a moment, a route it is being refused on:
        # one it held would carry the cluster's interest (JetStream's own subscriptions).
        # It keeps trying: watched for a while, none is ever established.
        def peer(name: str) -> bytes:
            return f'"remote_name": "{name}"'.encode()

        def held(node: Node) -> list[dict[str, Any]]:
            routes: list[dict[str, Any]] = json.loads(_routez(node))["routes"]
            return [r for r in routes if r["subscriptions"]]

        names = {n.name for n in nats_cluster.nodes}
        # As the nodes' routes to each other do, once each holds the other's interest.
        while not all(
            len({r["remote_name"] for r in held(n)} & names) == 2 for n in nats_cluster.nodes
        ):
            assert time.monotonic() < deadline, "the nodes did not all route to each other"
            time.sleep(0.1)
        for _ in range(20):
            for node in nats_cluster.nodes:
                assert peer("intruder") not in _routez(node)
            assert not held(intruder), _routez(intruder)
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
