"""Nothing but the health checks answers without the token."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.stack import Stack

pytestmark = pytest.mark.integration

SOME_ID = "00000000-0000-4000-8000-000000000000"


def test_every_route_needs_the_token(stack: Stack) -> None:
    base = stack.endpoints["ui_url"].rstrip("/")
    auth = {"Authorization": f"Bearer {stack.token}"}
    schema = httpx.get(f"{base}/schema/openapi.json", headers=auth)
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert len(paths) >= 8
    checked = 0
    with httpx.Client() as http:  # one client: a new one costs a TLS context each
        for path, methods in paths.items():
            url = base + re.sub(r"\{[^}]+\}", SOME_ID, path)
            for method in methods:
                if method not in {"get", "post", "patch", "put", "delete"}:
                    continue
                for headers in ({}, {"Authorization": "Bearer wrong"}):
                    r = http.request(method.upper(), url, headers=headers, json={})
                    if path in ("/api/v1/health", "/api/v1/health/live"):
                        assert r.status_code == 200
                    else:
                        assert r.status_code == 401, f"{method} {path}: {r.status_code}"
                        assert r.json()["error"]
                checked += 1
        assert not http.cookies  # nor did any answer hand out a cookie to send back
    assert checked >= 10
    assert httpx.get(f"{base}/schema/openapi.json").status_code == 401


def test_the_token_in_a_query_opens_websockets_only(stack: Stack) -> None:
    r = httpx.get(f"{stack.endpoints['api_url']}/jobs", params={"token": stack.token})
    assert r.status_code == 401

    async def events() -> None:
        async with connect(stack.ws_url("/events")):
            pass

    asyncio.run(events())


def test_health_names_every_service(stack: Stack) -> None:
    r = httpx.get(f"{stack.endpoints['api_url']}/health", headers=stack.client.headers)
    h = r.json()
    assert r.status_code == 200 and h["status"] == "ok"
    assert h["nats"] and h["postgres"] and h["runners_answer"]
    assert len(h["runners"]) == 2
    assert h["active_scheduler"] in {s["id"] for s in h["schedulers"]}
    live = httpx.get(f"{stack.endpoints['api_url']}/health/live")
    assert live.status_code == 200 and live.json() == {"status": "live"}
