"""Real receivers of notifications: an HTTP server that records the webhooks it is sent
(answering each with the next status of a list), and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from deploy.embedded import free_port


@dataclass
class Posted:
    at: float  # monotonic
    wall: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    # The statuses it answers, in turn; then 204 for good.
    statuses: list[int]
    posted: list[Posted] = field(default_factory=list)

    def wait(self, count: int, timeout: float = 60) -> list[Posted]:
        found: list[Posted] = _wait(
            lambda: self.posted if len(self.posted) >= count else None, timeout
        )
        return found


def _wait(found: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := found()) is not None:
            return value
        time.sleep(0.05)
    raise AssertionError("the receiver was not sent what was awaited")


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="", statuses=list(statuses or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server calls
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                receiver.posted.append(
                    Posted(
                        time.monotonic(), time.time(), self.path, dict(self.headers.items()), body
                    )
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 204
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/plakar-3f9a"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpReceiver:
    host: str
    port: int
    mails: list[tuple[str, list[str], Message]] = field(default_factory=list)

    def wait(self, count: int, timeout: float = 60) -> list[tuple[str, list[str], Message]]:
        found: list[tuple[str, list[str], Message]] = _wait(
            lambda: self.mails if len(self.mails) >= count else None, timeout
        )
        return found


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(host="127.0.0.1", port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.mails.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    message_from_bytes(envelope.content, policy=policy.default),
                )
            )
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=receiver.host, port=receiver.port)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
