"""`plakar-cp connectors|tasks|schedules|jobs …`: the api from a terminal or a script.

Every command prints what the api answered: a table or the fields of an object, or with
`--json` the api's JSON as is. A connector or a task is named by its id or its name.
Exit status: 0 done (a job waited for succeeded), 1 a job waited for did not succeed
(failed, cancelled or skipped), 2 the api refused or could not be reached (its reason on
stderr), 3 a wait timed out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.client import render
from services.client.api import RECORDED_WITHIN_S, Api, ClientError, Endpoint, NotFound
from services.client.follow import follow
from shared.lifecycle import TERMINAL

RESOURCES = ("connectors", "tasks", "schedules", "jobs")
# How often a wait without --follow asks for the job.
POLL_S = 0.5

Handler = Callable[[Api, argparse.Namespace], int]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], data_dir: Path) -> None:
    """The client's commands, beside the services' own in `plakar-cp`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the api's JSON as is")
    common.add_argument("--api-url", help="default: PLAKAR_CP_API_URL, else endpoints.json")
    common.add_argument(
        "--token-file",
        type=Path,
        help="a file holding the token (default: PLAKAR_CP_TOKEN, else endpoints.json)",
    )
    common.add_argument("--data-dir", type=Path, default=data_dir)

    def verb(group: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=help)
        p.set_defaults(handler=handler)
        return p

    con = sub.add_parser("connectors", help="list, show, create, change, test connectors")
    c = con.add_subparsers(dest="verb", required=True)
    verb(c, "list", _list_connectors, "every connector").add_argument(
        "--role", choices=("source", "store", "destination")
    )
    verb(c, "show", _show("connectors"), "one connector").add_argument("connector")
    p = verb(c, "create", _create_connector, "a connector, from flags or --body")
    _body_argument(p)
    p.add_argument("--name")
    p.add_argument("--role", choices=("source", "store", "destination"))
    p.add_argument("--location")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--runner-group")
    _update(c, "connectors", "connector", verb)
    verb(c, "delete", _delete("connectors"), "delete a connector").add_argument("connector")
    verb(c, "test", _action("connectors", "test"), "test it").add_argument("connector")
    verb(c, "initialize", _action("connectors", "initialize"), "create the store").add_argument(
        "connector"
    )
    verb(c, "snapshots", _snapshots, "a store's snapshots").add_argument("connector")

    tas = sub.add_parser("tasks", help="list, show, create, change, run tasks")
    t = tas.add_subparsers(dest="verb", required=True)
    verb(t, "list", _list("tasks"), "every task")
    verb(t, "show", _show("tasks"), "one task").add_argument("task")
    p = verb(t, "create", _create_task, "a task, from flags or --body (no schedule: runs now)")
    _body_argument(p)
    p.add_argument("--type", choices=("backup", "restore", "sync", "check", "prune"))
    p.add_argument("--name")
    for role in ("source", "store", "destination", "target-store"):
        p.add_argument(f"--{role}", metavar="CONNECTOR", help="its id or name")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--exclude", action="append", default=[])
    p.add_argument("--snapshot", help="restores: a snapshot id (default: the latest)")
    p.add_argument("--path", help="restores: a path in the snapshot")
    p.add_argument("--mode", choices=("new_folder", "overwrite"), help="restores")
    p.add_argument("--schedule", action="append", default=[], metavar="RECURRENCE|JSON")
    p.add_argument("--runner-group")
    _update(t, "tasks", "task", verb)
    verb(t, "delete", _delete("tasks"), "delete a task").add_argument("task")
    p = verb(t, "run", _run, "run it now; prints the job id")
    p.add_argument("task")
    _wait_arguments(p)

    sch = sub.add_parser("schedules", help="list, show, create, switch schedules")
    s = sch.add_subparsers(dest="verb", required=True)
    verb(s, "list", _list_schedules, "every schedule").add_argument("--task")
    verb(s, "show", _show("schedules"), "one schedule").add_argument("schedule")
    p = verb(s, "create", _create_schedule, "a schedule of a task, from flags or --body")
    p.add_argument("task")
    _body_argument(p)
    p.add_argument("--recurrence")
    p.add_argument("--start-at", help="UTC, to the minute: 2026-01-31T02:00:00Z")
    _update(s, "schedules", "schedule", verb)
    for name, on in (("enable", True), ("disable", False)):
        verb(s, name, _switch(on), f"{name} a schedule").add_argument("schedule")
    verb(s, "delete", _delete("schedules"), "delete a schedule").add_argument("schedule")

    job = sub.add_parser("jobs", help="list, show, cancel, retry, follow, wait for jobs")
    j = job.add_subparsers(dest="verb", required=True)
    p = verb(j, "list", _list_jobs, "jobs, newest first")
    p.add_argument("--status")
    p.add_argument("--task")
    p.add_argument("--connector")
    p.add_argument("--limit", type=int, default=50)
    verb(j, "show", _show("jobs"), "one job").add_argument("job")
    verb(j, "output", _output, "every line of its output").add_argument("job")
    p = verb(j, "cancel", _cancel, "cancel a queued or running job")
    p.add_argument("job")
    p.add_argument("--reason")
    p = verb(j, "retry", _retry, "run a failed or cancelled job again; prints the new job id")
    p.add_argument("job")
    _wait_arguments(p)
    p = verb(j, "follow", _follow, "print its output live until it ends; exits with its outcome")
    p.add_argument("job")
    p = verb(j, "wait", _wait, "wait until it ends; exits with its outcome")
    p.add_argument("job")
    p.add_argument("--timeout", type=float, help="seconds (default: no limit)")


def run(args: argparse.Namespace) -> int:
    try:
        endpoint = Endpoint.find(args.api_url, args.token_file, args.data_dir)
        handler: Handler = args.handler
        return handler(Api(endpoint), args)
    except ClientError as e:
        print(f"plakar-cp: {e}", file=sys.stderr)
        return 2


# Arguments


def _body_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--body", metavar="JSON|@FILE|-", help="the api's JSON body; flags given change it"
    )


def _wait_arguments(p: argparse.ArgumentParser) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument("--wait", action="store_true", help="wait for the job; exit with it")
    how.add_argument("--follow", action="store_true", help="print its output live; exit with it")


def _update(group: Any, kind: str, what: str, verb: Any) -> None:
    p = verb(group, "update", _update_one(kind, what), f"change a {what} (--body: fields)")
    p.add_argument(what)
    p.add_argument("--body", required=True, metavar="JSON|@FILE|-")


def _body(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        if value == "-":
            text = sys.stdin.read()
        elif value.startswith("@"):
            text = Path(value[1:]).read_text()
        else:
            text = value
        body = json.loads(text)
    except OSError as e:
        raise ClientError(f"--body {value}: {e.strerror or e}") from None
    except ValueError as e:
        raise ClientError(f"--body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ClientError("--body must be a JSON object")
    return body


def _set(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """`body` with the fields given on the command line (None and [] are not given)."""
    return {**body, **{k: v for k, v in fields.items() if v not in (None, [])}}


# Printing


def _print(args: argparse.Namespace, value: Any, kind: str | None = None) -> int:
    if args.json:
        print(render.as_json(value))
    elif isinstance(value, list):
        print(render.table(value, render.COLUMNS[kind or args.command]))
    elif isinstance(value, dict):
        print(render.fields(value))
    elif value is not None:
        print(value, end="" if str(value).endswith("\n") else "\n")
    return 0


# Handlers


Params = Callable[[Api, argparse.Namespace], dict[str, Any]]


def _list(kind: str, params: Params | None = None) -> Handler:
    def handler(api: Api, args: argparse.Namespace) -> int:
        query = params(api, args) if params else None
        return _print(args, api.call("GET", f"/{kind}", params=query))

    return handler


_list_connectors = _list("connectors", lambda api, a: {"role": a.role})
_list_schedules = _list(
    "schedules", lambda api, a: {"task_id": api.resolve("tasks", a.task) if a.task else None}
)


def _list_jobs(api: Api, args: argparse.Namespace) -> int:
    params = {
        "status": args.status,
        "task_id": api.resolve("tasks", args.task) if args.task else None,
        "connector_id": api.resolve("connectors", args.connector) if args.connector else None,
        "limit": args.limit,
    }
    page = api.call("GET", "/jobs", params=params)
    return _print(args, page if args.json else page["items"], "jobs")


def _ref(api: Api, kind: str, args: argparse.Namespace) -> str:
    ref: str = getattr(args, kind.removesuffix("s"))
    return api.resolve(kind, ref)


def _show(kind: str) -> Handler:
    def handler(api: Api, args: argparse.Namespace) -> int:
        return _print(args, api.call("GET", f"/{kind}/{_ref(api, kind, args)}"))

    return handler


def _delete(kind: str) -> Handler:
    def handler(api: Api, args: argparse.Namespace) -> int:
        api.call("DELETE", f"/{kind}/{_ref(api, kind, args)}")
        return 0

    return handler


def _update_one(kind: str, what: str) -> Handler:
    def handler(api: Api, args: argparse.Namespace) -> int:
        found = _ref(api, kind, args)
        return _print(args, api.call("PATCH", f"/{kind}/{found}", _body(args.body)))

    return handler


def _action(kind: str, action: str) -> Handler:
    def handler(api: Api, args: argparse.Namespace) -> int:
        answer = api.call("POST", f"/{kind}/{_ref(api, kind, args)}/{action}")
        _print(args, answer)
        return 0 if not isinstance(answer, dict) or answer.get("ok", True) else 1

    return handler


def _snapshots(api: Api, args: argparse.Namespace) -> int:
    found = _ref(api, "connectors", args)
    return _print(args, api.call("GET", f"/connectors/{found}/snapshots"), "snapshots")


def _create_connector(api: Api, args: argparse.Namespace) -> int:
    body = _body(args.body)
    options = dict(body.get("options") or {})
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ClientError(f"--option {item!r}: KEY=VALUE")
        options[key] = value
    body = _set(
        body,
        name=args.name,
        role=args.role,
        location=args.location,
        runner_group=args.runner_group,
        options=options or None,
    )
    return _print(args, api.call("POST", "/connectors", body))


def _create_task(api: Api, args: argparse.Namespace) -> int:
    refs = {
        f"{role.replace('-', '_')}_id": api.resolve("connectors", ref)
        for role in ("source", "store", "destination", "target-store")
        if (ref := getattr(args, role.replace("-", "_"))) is not None
    }
    schedules = [_schedule(s) for s in args.schedule]
    body = _set(
        _body(args.body),
        type=args.type,
        name=args.name,
        labels=args.label,
        excludes=args.exclude,
        snapshot_id=args.snapshot,
        restore_path=args.path,
        restore_mode=args.mode,
        runner_group=args.runner_group,
        schedules=schedules,
        **refs,
    )
    created = api.call("POST", "/tasks", body)
    if args.json:
        return _print(args, created)
    _print(args, created["task"])
    if created.get("job_id"):
        print(f"job {created['job_id']} queued")
    return 0


def _schedule(value: str) -> dict[str, Any]:
    if value.lstrip().startswith("{"):
        return _body(value)
    return {"recurrence": value}


def _create_schedule(api: Api, args: argparse.Namespace) -> int:
    task = api.resolve("tasks", args.task)
    body = _set(_body(args.body), recurrence=args.recurrence, start_at=args.start_at)
    return _print(args, api.call("POST", f"/tasks/{task}/schedules", body))


def _switch(on: bool) -> Handler:
    def handler(api: Api, args: argparse.Namespace) -> int:
        schedule = _ref(api, "schedules", args)
        return _print(args, api.call("PATCH", f"/schedules/{schedule}", {"enabled": on}))

    return handler


def _run(api: Api, args: argparse.Namespace) -> int:
    job_id: str = api.call("POST", f"/tasks/{api.resolve('tasks', args.task)}/run")["job_id"]
    return _started(api, args, job_id)


def _retry(api: Api, args: argparse.Namespace) -> int:
    job_id: str = api.call("POST", f"/jobs/{_ref(api, 'jobs', args)}/retry")["job_id"]
    return _started(api, args, job_id)


def _started(api: Api, args: argparse.Namespace, job_id: str) -> int:
    """Say which job was queued; wait for it or follow it when asked."""
    if args.follow:
        return _ended(args, follow(api, job_id))
    if args.wait:
        return _waited(api, args, job_id, None)
    return _print(args, {"job_id": job_id} if args.json else job_id)


def _cancel(api: Api, args: argparse.Namespace) -> int:
    body = {"reason": args.reason} if args.reason else None
    return _print(args, api.call("POST", f"/jobs/{_ref(api, 'jobs', args)}/cancel", body))


def _output(api: Api, args: argparse.Namespace) -> int:
    text = api.call("GET", f"/jobs/{_ref(api, 'jobs', args)}/output") or ""
    sys.stdout.write(text)
    return 0


def _follow(api: Api, args: argparse.Namespace) -> int:
    return _ended(args, follow(api, _ref(api, "jobs", args)))


def _wait(api: Api, args: argparse.Namespace) -> int:
    return _waited(api, args, _ref(api, "jobs", args), args.timeout)


def _waited(api: Api, args: argparse.Namespace, job_id: str, timeout: float | None) -> int:
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    while True:
        try:
            job: dict[str, Any] = api.call("GET", f"/jobs/{job_id}")
        except NotFound:
            if time.monotonic() - started > RECORDED_WITHIN_S:
                raise
            job = {"status": "queued"}  # not recorded by the history yet
        if job["status"] in TERMINAL:
            return _ended(args, job)
        if deadline is not None and time.monotonic() >= deadline:
            print(
                f"plakar-cp: job {job_id} still {job['status']} after {timeout} s", file=sys.stderr
            )
            return render.TIMED_OUT
        time.sleep(POLL_S)


def _ended(args: argparse.Namespace, job: dict[str, Any]) -> int:
    if args.json:
        print(render.as_json(job))
    else:
        print(render.summary(job), file=sys.stderr)
    return render.outcome(job)
