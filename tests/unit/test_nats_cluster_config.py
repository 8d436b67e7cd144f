"""The local NATS cluster's configuration, the seeds of a NATS URL, and when a stream
counts as fully replicated."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from nats.js import api as js_api
from nats.js.errors import BadRequestError

from deploy.embedded import NATS_ROUTE, _nats_config, load_credentials, nats_cluster
from shared import bus
from shared.bus import connect_options, fully_replicated
from shared.settings import nats_seeds


def test_each_server_routes_to_the_others_with_the_route_password(tmp_path: Path) -> None:
    creds = load_credentials(tmp_path / "credentials.json")
    servers = nats_cluster(tmp_path / "nats", creds, 3, tmp_path / "logs")
    ports = [s.port for s in servers]
    assert len(set(ports)) == 3 and 0 not in ports
    configs = [
        json.loads(_nats_config(s.dir / "jetstream", s.port, creds, s.cluster)) for s in servers
    ]
    routes = [c["cluster"]["listen"] for c in configs]
    assert len(set(routes + [f"127.0.0.1:{p}" for p in ports])) == 6
    password = creds[NATS_ROUTE]
    for n, config in enumerate(configs):
        assert config["server_name"] == f"plakar-cp-{n + 1}"
        assert config["listen"] == f"127.0.0.1:{ports[n]}"
        cluster = config["cluster"]
        assert cluster["name"] == "plakar-cp"
        assert cluster["authorization"] == {"user": "route", "password": password}
        others = [r for i, r in enumerate(routes) if i != n]
        assert cluster["routes"] == [f"nats-route://route:{password}@{r}" for r in others]
        assert config["jetstream"]["store_dir"].endswith(f"node-{n + 1}/jetstream")
    assert [s.name for s in servers] == ["nats-server-1", "nats-server-2", "nats-server-3"]


def test_a_lone_server_has_no_cluster(tmp_path: Path) -> None:
    creds = load_credentials(tmp_path / "credentials.json")
    config = json.loads(_nats_config(tmp_path / "js", 4222, creds))
    assert "cluster" not in config and config["server_name"] == "plakar-cp"


def test_seeds_and_their_credentials() -> None:
    url = "nats://u:p%40ss@127.0.0.1:4222, nats://u:p%40ss@127.0.0.1:4223,"
    assert nats_seeds(url) == ["nats://u:p%40ss@127.0.0.1:4222", "nats://u:p%40ss@127.0.0.1:4223"]
    assert connect_options(url) == {
        "servers": nats_seeds(url),
        "user": "u",
        "password": "p@ss",
    }
    assert connect_options("nats://127.0.0.1:4222") == {"servers": ["nats://127.0.0.1:4222"]}


def stream(leader: str | None, *peers: tuple[bool, bool | None]) -> js_api.StreamInfo:
    info: js_api.StreamInfo = js_api.StreamInfo.from_response(
        {
            "config": {"name": "S"},
            "state": {
                "messages": 0,
                "bytes": 0,
                "first_seq": 0,
                "last_seq": 0,
                "consumer_count": 0,
            },
            "cluster": {
                "leader": leader,
                "replicas": [
                    {"name": f"n{i}", "current": current, "offline": offline, "active": 0}
                    for i, (current, offline) in enumerate(peers)
                ],
            },
        }
    )
    return info


def test_fully_replicated_needs_a_leader_and_every_follower_in_step() -> None:
    assert fully_replicated(stream("n9", (True, None), (True, None)), 3)
    assert not fully_replicated(stream(None, (True, None), (True, None)), 3)
    assert not fully_replicated(stream("n9", (True, None), (False, None)), 3)
    assert not fully_replicated(stream("n9", (True, None), (True, True)), 3)
    assert not fully_replicated(stream("n9", (True, None)), 3)
    assert fully_replicated(stream(None), 1)


def test_provisioning_waits_for_a_cluster_still_forming() -> None:
    """JetStream's "no suitable peers" while the servers find each other is waited out;
    any other refusal is not."""
    calls = 0

    async def add_stream(config: js_api.StreamConfig) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise BadRequestError(code=400, err_code=10005, description="peer offline")

    class Js:
        def __init__(self) -> None:
            self.add_stream = add_stream

        async def stream_info(self, name: str) -> js_api.StreamInfo:
            state = dict.fromkeys(("messages", "bytes", "first_seq", "last_seq"), 0)
            info: js_api.StreamInfo = js_api.StreamInfo.from_response(
                {"config": {"name": name}, "state": {**state, "consumer_count": 0}}
            )
            return info

    config = js_api.StreamConfig(name="S", subjects=["s"])
    asyncio.run(bus.patiently(lambda: bus._stream(Js(), config), 10, "provisioning"))  # type: ignore[arg-type]
    assert calls == 3

    async def refused(config: js_api.StreamConfig) -> None:
        raise BadRequestError(code=400, err_code=10052, description="invalid config")

    js = Js()
    js.add_stream = refused
    with pytest.raises(BadRequestError):
        asyncio.run(bus._placed(js.add_stream(config)))
