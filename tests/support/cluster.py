"""A local NATS cluster seen from a test: its servers, their processes, who leads what,
and whether every stream and durable consumer is whole on its replicas."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import APIError

from deploy.embedded import nats_url
from shared import bus
from shared.bus import fully_replicated
from tests.support.procs import processes


class Cluster:
    """The servers that `plakar-cp up --nats-cluster N` started under data_dir."""

    def __init__(self, data_dir: Path, creds: dict[str, str]) -> None:
        self.confs = sorted((data_dir / "nats").glob("node-*/nats.conf"))
        assert self.confs, f"no cluster under {data_dir}"
        self.creds = creds

    def port(self, node: int) -> int:
        config = json.loads(self.confs[node - 1].read_text())
        return int(config["listen"].rsplit(":", 1)[1])

    def url(self, user: str) -> str:
        """Every server as a seed, signed in as `user`."""
        ports = (self.port(n) for n in range(1, len(self.confs) + 1))
        return ",".join(nats_url("127.0.0.1", p, user, self.creds[user]) for p in ports)

    def pids(self, node: int) -> list[int]:
        return processes("-c", str(self.confs[node - 1]))

    def serves(self, node: int, not_pid: int) -> bool:
        """Whether the server `node` runs again (another process than `not_pid`) and
        answers clients."""
        if self.pids(node) in ([], [not_pid]):
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port(node)), timeout=0.5) as c:
                return c.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def leader(self, stream: str) -> int:
        """The number of the server that leads `stream` (servers are plakar-cp-N)."""

        async def ask() -> str:
            nc = await bus.connect(self.url("admin"), "test")
            try:
                info = await nc.jetstream().stream_info(stream)
            finally:
                await nc.close()
            assert info.cluster is not None and info.cluster.leader, info.cluster
            return info.cluster.leader

        return int(asyncio.run(ask()).rsplit("-", 1)[1])

    def not_whole(self) -> list[str]:
        """The streams and durable consumers (of the control plane's account and of
        the readers') not fully replicated now, or why nobody could tell."""

        async def ask() -> list[str]:
            found: list[str] = []
            for user in ("admin", "events_admin"):
                nc = await bus.connect(self.url(user), "test")
                try:
                    found += await lagging(nc.jetstream())
                except (*bus.NATS_AWAY, APIError) as e:  # while the cluster elects leaders
                    found.append(f"{user}: {e!r}")
                finally:
                    await nc.close()
            return found

        return asyncio.run(ask())


async def lagging(js: JetStreamContext) -> list[str]:
    """Streams and durables not on all their replicas, in step."""
    found: list[str] = []
    for info in await js.streams_info():
        name, replicas = info.config.name, info.config.num_replicas or 1
        if not fully_replicated(info, replicas):
            found.append(f"{name}: {info.cluster}")
        for consumer in await js.consumers_info(str(name)):
            if consumer.config.durable_name is None:
                continue  # ephemeral watchers are on one server by design
            expected = consumer.config.num_replicas or replicas
            if not fully_replicated(consumer, expected):
                found.append(f"{name}/{consumer.name}: {consumer.cluster}")
    return found


async def replicas_of(js: JetStreamContext) -> dict[str, int]:
    """Each stream's replicas, and each durable's (`stream/durable`) as the server
    placed it (a leader and its followers)."""

    def placed(info: js_api.StreamInfo | js_api.ConsumerInfo) -> int:
        peers = info.cluster.replicas if info.cluster else None
        return 1 + len(peers or [])

    found: dict[str, int] = {}
    for info in await js.streams_info():
        found[str(info.config.name)] = placed(info)
        for consumer in await js.consumers_info(str(info.config.name)):
            if consumer.config.durable_name is not None:
                found[f"{info.config.name}/{consumer.name}"] = placed(consumer)
    return found
