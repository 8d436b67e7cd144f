"""Pipelined publishing with bounded acknowledgements in flight (shared/dispatch.py),
against a stand-in for NATS that acknowledges when told."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from nats.aio.client import Client

from shared import dispatch
from shared.dispatch import Message, publish_all


@dataclass
class Ack:
    data: bytes
    headers: dict[str, str] | None = None


@dataclass
class FakeNats:
    """Acknowledges every publish on the next turn of the loop, or refuses those named."""

    refuse: set[str] = field(default_factory=set)
    silent: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)
    most_in_flight: int = 0
    _cb: Callable[[Ack], Awaitable[None]] | None = None
    _in_flight: int = 0

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, cb: Callable[[Ack], Awaitable[None]]) -> FakeNats:
        assert subject == "_INBOX.test.*"
        self._cb = cb
        return self

    async def unsubscribe(self) -> None:
        self._cb = None

    async def publish(self, subject: str, payload: bytes, reply: str, headers: Any) -> None:
        self.sent.append((subject, headers["Nats-Msg-Id"]))
        self._in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self._in_flight)
        if not self.silent:
            refused = headers["Nats-Msg-Id"] in self.refuse
            data = b'{"error":{"code":500}}' if refused else b'{"stream":"S","seq":1}'
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._ack(data)))

    async def _ack(self, data: bytes) -> None:
        self._in_flight -= 1
        assert self._cb is not None
        await self._cb(Ack(data))


def messages(n: int) -> list[Message]:
    return [Message(f"s.{i}", b"x", f"id-{i}") for i in range(n)]


async def test_every_message_is_sent_in_order_with_bounded_acks_in_flight() -> None:
    nats = FakeNats()
    await publish_all(cast(Client, nats), messages(100), in_flight=8)
    assert nats.sent == [(f"s.{i}", f"id-{i}") for i in range(100)]
    assert nats.most_in_flight == 8


async def test_a_refused_publish_raises_and_sends_no_more_than_in_flight_after_it() -> None:
    nats = FakeNats(refuse={"id-3"})
    with pytest.raises(RuntimeError, match="refused"):
        await publish_all(cast(Client, nats), messages(100), in_flight=4)
    assert len(nats.sent) < 10


async def test_acks_that_never_come_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "ACK_TIMEOUT_S", 0.05)
    nats = FakeNats(silent=True)
    with pytest.raises(TimeoutError, match="2 publishes not acknowledged"):
        await publish_all(cast(Client, nats), messages(5), in_flight=2)
