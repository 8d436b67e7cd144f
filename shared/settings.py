"""Settings of every service, read from the environment (flags of `plakar-cp` override them)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from shared.locations import Policy


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"PLAKAR_CP_{name}", default)


def _paths(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def nats_seeds(url: str) -> list[str]:
    """The servers of a NATS URL setting: one URL, or several (the seeds of a cluster)
    separated by commas."""
    return list(_paths(url))


def _default_data_dir() -> Path:
    return Path(_env("DATA_DIR") or Path.home() / ".local/share/plakar-cp")


def _default_slots() -> int:
    """One job at once per two CPUs: plakar already spreads a job over the CPUs; more jobs
    at once mostly overlap their waits on disks and the network."""
    return max(1, (os.cpu_count() or 1) // 2)


def _default_plakar() -> str:
    # The plakar built by `make setup` sits beside this interpreter in the venv.
    import sys

    beside = Path(sys.executable).with_name("plakar")
    return str(beside) if beside.exists() else "plakar"


@dataclass(frozen=True)
class Settings:
    # One server's URL, or a cluster's seeds separated by commas (see nats_seeds).
    nats_url: str = field(default_factory=lambda: _env("NATS_URL", "nats://127.0.0.1:4222"))
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL"))
    api_token: str = field(default_factory=lambda: _env("API_TOKEN"))
    plakar_bin: str = field(default_factory=lambda: _env("PLAKAR_BIN") or _default_plakar())
    # The control plane's own files: no connector may point into it.
    data_dir: Path = field(default_factory=_default_data_dir)
    # Runners' private job directories.
    work_dir: Path = field(
        default_factory=lambda: Path(_env("WORK_DIR") or _default_data_dir() / "work")
    )
    # When set, every connector location must be under one of these path roots or URL
    # prefixes (comma-separated).
    allowed_paths: tuple[str, ...] = field(default_factory=lambda: _paths(_env("ALLOWED_PATHS")))
    instance_id: str = field(
        default_factory=lambda: (
            _env("INSTANCE_ID") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        )
    )
    http_host: str = field(default_factory=lambda: _env("HTTP_HOST", "127.0.0.1"))
    http_port: int = field(default_factory=lambda: int(_env("HTTP_PORT", "8470")))
    # Shown to users in endpoints.json and the API; read-only credentials.
    events_nats_url: str = field(default_factory=lambda: _env("EVENTS_NATS_URL"))
    # The readers' account's admin (`plakar-cp migrate` provisions their stream with it).
    events_admin_nats_url: str = field(default_factory=lambda: _env("EVENTS_ADMIN_NATS_URL"))
    # A running job's message is redelivered to another runner when its runner
    # stops renewing it for this long.
    ack_wait_s: float = field(default_factory=lambda: float(_env("ACK_WAIT", "30")))
    max_attempts: int = field(default_factory=lambda: int(_env("MAX_ATTEMPTS", "3")))
    # How often NATS hands one job message to runners before giving up on it: more than
    # the attempts, as a message also comes back when its runner could not take it.
    max_deliveries: int = field(default_factory=lambda: int(_env("MAX_DELIVERIES", "6")))
    cancel_grace_s: float = field(default_factory=lambda: float(_env("CANCEL_GRACE", "5")))
    # How long a runner keeps plakar's cache daemon of a store up after its last job.
    cache_daemon_idle_s: float = field(
        default_factory=lambda: float(_env("CACHE_DAEMON_IDLE", "60"))
    )
    # The most connectors, tasks and schedules an installation holds.
    max_connectors: int = field(default_factory=lambda: int(_env("MAX_CONNECTORS", "1000")))
    max_tasks: int = field(default_factory=lambda: int(_env("MAX_TASKS", "10000")))
    max_schedules: int = field(default_factory=lambda: int(_env("MAX_SCHEDULES", "10000")))
    # Runners: how many jobs one process runs at once, and the group whose jobs and
    # connector actions it serves (shared/groups.py).
    runner_slots: int = field(default_factory=lambda: int(_env("RUNNER_SLOTS") or _default_slots()))
    runner_group: str = field(default_factory=lambda: _env("RUNNER_GROUP", "default"))
    # Notifications: a failed delivery's first retry comes this long after it (each next
    # one 4 times later, shared/notifications.py); new events are looked for this often;
    # mail is sent from this address.
    notify_retry_base_s: float = field(
        default_factory=lambda: float(_env("NOTIFY_RETRY_BASE", "30"))
    )
    notify_poll_s: float = field(default_factory=lambda: float(_env("NOTIFY_POLL", "1")))
    notify_from: str = field(
        default_factory=lambda: _env("NOTIFY_FROM") or f"plakar-control-plane@{socket.getfqdn()}"
    )

    def policy(self) -> Policy:
        """The connector rules of this installation (see shared/locations.py)."""
        own = (os.path.realpath(self.data_dir), os.path.realpath(self.work_dir))
        allowed = (os.path.normpath(p) if p.startswith("/") else p for p in self.allowed_paths)
        return Policy(protected=tuple(dict.fromkeys(own)), allowed=tuple(allowed))
