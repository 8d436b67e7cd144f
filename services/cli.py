"""`plakar-cp`: start the whole stack, one service, migrations, or follow events."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from shared.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings()
    overrides = {
        "nats_url": getattr(args, "nats_url", None),
        "database_url": getattr(args, "database_url", None),
        "http_port": getattr(args, "http_port", None),
        "instance_id": getattr(args, "instance_id", None),
    }
    return dataclasses.replace(s, **{k: v for k, v in overrides.items() if v is not None})


def _service(kind: str, settings: Settings) -> int:
    from shared.bus import run_until_stopped

    if not settings.database_url:
        print("error: --database-url (or PLAKAR_CP_DATABASE_URL) is required", file=sys.stderr)
        return 2
    if kind == "runner":
        from services.runner.service import Runner
        from services.runner.workspace import WorkDirError

        try:
            asyncio.run(run_until_stopped(Runner(settings).main))
        except WorkDirError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    elif kind == "history":
        from services.history.service import History

        asyncio.run(run_until_stopped(History(settings).main))
    elif kind == "scheduler":
        from services.scheduler.service import Scheduler

        asyncio.run(run_until_stopped(Scheduler(settings).main))
    elif kind == "api":
        import uvicorn

        from services.api.app import create_app

        if not settings.api_token:
            print("error: PLAKAR_CP_API_TOKEN is required", file=sys.stderr)
            return 2
        uvicorn.run(
            create_app(settings),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            lifespan="on",
        )
    return 0


async def _migrate(settings: Settings) -> None:
    from shared import bus, db

    passwords = json.loads(os.environ.get("PLAKAR_CP_ROLE_PASSWORDS") or "{}")
    applied = await db.migrate(settings.database_url, passwords)
    nc = await bus.connect(settings.nats_url, "migrate")
    try:
        await bus.provision(nc.jetstream(), settings)
    finally:
        await nc.close()
    if settings.events_admin_nats_url:
        readers = await bus.connect(settings.events_admin_nats_url, "migrate")
        try:
            await bus.provision_readers(readers.jetstream())
        finally:
            await readers.close()
    print(f"migrations applied: {', '.join(applied) or 'none new'}; streams provisioned")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plakar-cp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data_dir = Path(os.environ.get("PLAKAR_CP_DATA_DIR", Path.home() / ".local/share/plakar-cp"))
    up = sub.add_parser("up", help="start NATS, PostgreSQL and every service")
    up.add_argument("--data-dir", type=Path, default=data_dir)
    up.add_argument("--http-port", type=int, default=8470)
    up.add_argument("--runners", type=int, default=2)
    up.add_argument("--schedulers", type=int, default=2, help="one active, the others standby")
    up.add_argument("--nats-url", help="use this NATS instead of starting one")
    up.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    up.add_argument(
        "--allowed-paths",
        default=os.environ.get("PLAKAR_CP_ALLOWED_PATHS", ""),
        help="comma-separated path roots (or http(s) URL prefixes) every connector "
        "location must be under (default: any location the rules allow)",
    )

    for kind in ("scheduler", "runner", "history", "api", "migrate"):
        p = sub.add_parser(kind, help=f"run the {kind} against given NATS and PostgreSQL URLs")
        p.add_argument("--nats-url")
        p.add_argument("--database-url")
        p.add_argument("--instance-id")
        if kind == "api":
            p.add_argument("--http-port", type=int)

    ev = sub.add_parser("events", help="print the job and schedule events as JSON lines")
    ev.add_argument("--follow", action="store_true", help="keep printing new events")
    ev.add_argument("--since", default="all", help="all (default), new, or a duration: 1h")
    ev.add_argument("--job", help="only this job's events")
    ev.add_argument("--nats-url", help="default: events_nats_url of DATA_DIR/endpoints.json")
    ev.add_argument("--data-dir", type=Path, default=data_dir)

    args = parser.parse_args(argv)
    if args.command == "events":
        from services.events_follow import main as follow

        return follow(args.nats_url, args.data_dir, args.since, args.job, args.follow)
    logging.basicConfig(
        level=os.environ.get("PLAKAR_CP_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "up":
        from deploy.supervisor import Stack

        if args.runners < 1:
            parser.error("--runners must be at least 1")
        if args.schedulers < 1:
            parser.error("--schedulers must be at least 1")
        stack = Stack(
            data_dir=args.data_dir.resolve(),
            http_port=args.http_port,
            runners=args.runners,
            schedulers=args.schedulers,
            nats_url=args.nats_url,
            database_url=args.database_url,
            allowed_paths=tuple(p for p in args.allowed_paths.split(",") if p.strip()),
        )
        return stack.up()
    settings = _settings(args)
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        return 0
    return _service(args.command, settings)


if __name__ == "__main__":
    sys.exit(main())
