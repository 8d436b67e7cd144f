"""`plakar-cp`: start the whole stack, one service, migrations, or follow events; and
the api's client (`plakar-cp connectors|tasks|schedules|jobs …`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from services.client.commands import RESOURCES, add_commands
from services.client.commands import run as run_client
from shared.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings()
    overrides = {
        "nats_url": getattr(args, "nats_url", None),
        "database_url": getattr(args, "database_url", None),
        "http_port": getattr(args, "http_port", None),
        "instance_id": getattr(args, "instance_id", None),
        "runner_slots": getattr(args, "slots", None),
        "runner_group": getattr(args, "group", None),
    }
    return dataclasses.replace(s, **{k: v for k, v in overrides.items() if v is not None})


def _service(kind: str, settings: Settings) -> int:
    from shared.bus import run_until_stopped

    # Runners have no database: the api hands them their jobs' connectors.
    if kind != "runner" and not settings.database_url:
        print("error: --database-url (or PLAKAR_CP_DATABASE_URL) is required", file=sys.stderr)
        return 2
    if kind == "runner":
        from services.runner.service import Runner
        from shared.groups import group_problem

        if problem := group_problem(settings.runner_group):
            print(f"error: --group {settings.runner_group!r}: {problem}", file=sys.stderr)
            return 2
        if settings.runner_slots < 1:
            print("error: --slots must be at least 1", file=sys.stderr)
            return 2
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


# How long `migrate` waits for JetStream to answer (a cluster just started elects its
# leaders first).
PROVISION_PATIENCE_S = 60.0


async def _migrate(settings: Settings, replicas: int | None) -> None:
    from shared import bus, db

    passwords = json.loads(os.environ.get("PLAKAR_CP_ROLE_PASSWORDS") or "{}")
    applied = await db.migrate(settings.database_url, passwords)
    nc = await bus.connect(settings.nats_url, "migrate")
    try:
        r = replicas or bus.default_replicas(nc)
        js = nc.jetstream()
        await bus.patiently(
            lambda: bus.provision(js, settings, r), PROVISION_PATIENCE_S, "provisioning"
        )
    finally:
        await nc.close()
    if settings.events_admin_nats_url:
        readers = await bus.connect(settings.events_admin_nats_url, "migrate")
        try:
            rjs = readers.jetstream()
            await bus.patiently(
                lambda: bus.provision_readers(rjs, r), PROVISION_PATIENCE_S, "provisioning"
            )
        finally:
            await readers.close()
    print(
        f"migrations applied: {', '.join(applied) or 'none new'}; "
        f"streams provisioned with {r} replica(s)"
    )


def _slots(value: str) -> int:
    slots = int(value)
    if slots < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return slots


def _group(value: str) -> str:
    from shared.groups import group_problem

    if problem := group_problem(value):
        raise argparse.ArgumentTypeError(problem)
    return value


def _runner_arguments(p: argparse.ArgumentParser, slots: str, group: str) -> None:
    p.add_argument(
        slots,
        type=_slots,
        metavar="K",
        help="jobs a runner runs at once (default: PLAKAR_CP_RUNNER_SLOTS, else one per "
        "two CPUs, at least 1)",
    )
    p.add_argument(
        group,
        type=_group,
        metavar="NAME",
        help="the runner group whose jobs and connector actions it serves (default: "
        "PLAKAR_CP_RUNNER_GROUP, else default)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plakar-cp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_dir = Path(os.environ.get("PLAKAR_CP_DATA_DIR", Path.home() / ".local/share/plakar-cp"))
    _up_arguments(sub.add_parser("up", help="start NATS, PostgreSQL and every service"), data_dir)
    for kind in ("scheduler", "runner", "history", "api", "migrate"):
        uses = "a given NATS URL" if kind == "runner" else "given NATS and PostgreSQL URLs"
        p = sub.add_parser(kind, help=f"run the {kind} against {uses}")
        p.add_argument("--nats-url")
        if kind != "runner":
            p.add_argument("--database-url")
        p.add_argument("--instance-id")
        if kind == "api":
            p.add_argument("--http-port", type=int)
        if kind == "runner":
            _runner_arguments(p, "--slots", "--group")
        if kind == "migrate":
            p.add_argument(
                "--replicas",
                type=int,
                choices=range(1, 6),
                metavar="R",
                help="servers each stream, consumer and bucket is kept on (1-5; default: "
                "the NATS cluster's size up to 3); existing ones are changed to it",
            )

    ev = sub.add_parser("events", help="print the job and schedule events as JSON lines")
    ev.add_argument("--follow", action="store_true", help="keep printing new events")
    ev.add_argument("--since", default="all", help="all (default), new, or a duration: 1h")
    ev.add_argument("--job", help="only this job's events")
    ev.add_argument("--nats-url", help="default: events_nats_url of DATA_DIR/endpoints.json")
    ev.add_argument("--data-dir", type=Path, default=data_dir)

    # The files of a deployment on several machines (deploy/cluster.py, docs/deploy.md).
    nc = sub.add_parser("nats-config", help="print the configuration of the NATS cluster's nodes")
    nc.add_argument(
        "--runner-group",
        action="append",
        type=_group,
        help="a runner group with a NATS user of its own, runner-NAME (repeatable; the "
        "default group always has one)",
    )
    ds = sub.add_parser("deploy-secrets", help="write the credentials' env files (0600)")
    ds.add_argument("--platform", choices=("compose", "kubernetes"), required=True)
    ds.add_argument("directory", type=Path)

    # The api's client, for terminals and scripts.
    add_commands(sub, data_dir)
    return parser


def _up_arguments(up: argparse.ArgumentParser, data_dir: Path) -> None:
    up.add_argument("--data-dir", type=Path, default=data_dir)
    up.add_argument("--http-port", type=int, default=8470)
    up.add_argument("--runners", type=int, default=2)
    up.add_argument("--schedulers", type=int, default=2, help="one active, the others standby")
    up.add_argument("--nats-url", help="use this NATS instead of starting one")
    up.add_argument(
        "--nats-cluster",
        type=int,
        default=1,
        metavar="N",
        help="start N clustered NATS servers (3 or more) instead of one; streams and "
        "buckets are then kept on 3 of them",
    )
    up.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    _runner_arguments(up, "--runner-slots", "--runner-group")
    up.add_argument(
        "--allowed-paths",
        default=os.environ.get("PLAKAR_CP_ALLOWED_PATHS", ""),
        help="comma-separated path roots (or http(s) URL prefixes) every connector "
        "location must be under (default: any location the rules allow)",
    )


def _up(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from deploy.supervisor import Stack

    if args.runners < 1:
        parser.error("--runners must be at least 1")
    if args.schedulers < 1:
        parser.error("--schedulers must be at least 1")
    if args.nats_cluster < 1 or args.nats_cluster == 2:
        parser.error("--nats-cluster must be 1 or at least 3 (2 servers survive no loss)")
    if args.nats_cluster > 1 and args.nats_url:
        parser.error("--nats-cluster starts NATS servers: it goes without --nats-url")
    stack = Stack(
        data_dir=args.data_dir.resolve(),
        http_port=args.http_port,
        runners=args.runners,
        schedulers=args.schedulers,
        nats_url=args.nats_url,
        nats_cluster=args.nats_cluster,
        database_url=args.database_url,
        allowed_paths=tuple(p for p in args.allowed_paths.split(",") if p.strip()),
        runner_slots=args.runner_slots,
        runner_group=args.runner_group,
    )
    return stack.up()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("nats-config", "deploy-secrets"):
        from deploy.cluster import run_command

        return run_command(args)
    if args.command in RESOURCES:
        return run_client(args)
    if args.command == "events":
        from services.events_follow import main as follow

        return follow(args.nats_url, args.data_dir, args.since, args.job, args.follow)
    logging.basicConfig(
        level=os.environ.get("PLAKAR_CP_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "up":
        return _up(parser, args)
    settings = _settings(args)
    if args.command == "migrate":
        asyncio.run(_migrate(settings, args.replicas))
        return 0
    return _service(args.command, settings)


if __name__ == "__main__":
    sys.exit(main())
