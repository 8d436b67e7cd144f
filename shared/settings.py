"""Settings of every service, read from the environment (flags of `plakar-cp` override them)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"PLAKAR_CP_{name}", default)


def _default_plakar() -> str:
    # The plakar built by `make setup` sits beside this interpreter in the venv.
    import sys

    beside = Path(sys.executable).with_name("plakar")
    return str(beside) if beside.exists() else "plakar"


@dataclass(frozen=True)
class Settings:
    nats_url: str = field(default_factory=lambda: _env("NATS_URL", "nats://127.0.0.1:4222"))
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL"))
    api_token: str = field(default_factory=lambda: _env("API_TOKEN"))
    plakar_bin: str = field(default_factory=lambda: _env("PLAKAR_BIN") or _default_plakar())
    work_dir: Path = field(
        default_factory=lambda: Path(_env("WORK_DIR", "/tmp/plakar-cp-runner"))  # noqa: S108
    )
    instance_id: str = field(
        default_factory=lambda: (
            _env("INSTANCE_ID") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        )
    )
    http_host: str = field(default_factory=lambda: _env("HTTP_HOST", "127.0.0.1"))
    http_port: int = field(default_factory=lambda: int(_env("HTTP_PORT", "8470")))
    # Shown to users in endpoints.json and the API; read-only credentials.
    events_nats_url: str = field(default_factory=lambda: _env("EVENTS_NATS_URL"))
    # A running job's message is redelivered to another runner when its runner
    # stops renewing it for this long.
    ack_wait_s: float = field(default_factory=lambda: float(_env("ACK_WAIT", "30")))
    max_attempts: int = field(default_factory=lambda: int(_env("MAX_ATTEMPTS", "3")))
    # How often NATS hands one job message to runners before giving up on it: more than
    # the attempts, as a message also comes back when its runner could not take it.
    max_deliveries: int = field(default_factory=lambda: int(_env("MAX_DELIVERIES", "6")))
    cancel_grace_s: float = field(default_factory=lambda: float(_env("CANCEL_GRACE", "5")))
