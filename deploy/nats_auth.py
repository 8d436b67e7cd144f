"""NATS accounts and users: one user per service in the control plane's account (and one
per runner group, `runner-<group>`), and the external readers in an account of their own.

The `CP` account holds every stream, consumer and bucket; each service's user may publish
and subscribe only where that service needs to, a runner group's only where its group's
runners need to. External readers (`events`) live in the `READERS` account, which imports
the event subjects and nothing else: a JetStream stream of its own (`PLAKAR_EVENTS`, fed
by the import) gives them replay and consumers of their own. Nothing a reader does,
whatever JetStream request it sends, can reach the control plane's account: no bucket,
consumer or stream of it is visible from `READERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared import subjects as s
from shared.events import (
    AnyJobEvent,
    JobFinished,
    JobLog,
    JobProgress,
    JobQueued,
    JobSkipped,
    JobStarted,
    job_event_kind,
)

CONTROL_PLANE = "CP"
READERS = "READERS"

# publish and subscribe: {allow, deny} lists of subjects; allow_responses: {max}.
Permissions = dict[str, dict[str, Any]]

# The history service's durable consumer, which nobody else may pull from, ack for,
# change or delete.
_HISTORY_DURABLE = [
    *(
        f"$JS.API.CONSUMER.{op}.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}"
        for op in ("CREATE", "DURABLE.CREATE", "DELETE", "MSG.NEXT")
    ),
    f"$JS.API.CONSUMER.CREATE.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}.>",
    f"$JS.ACK.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}.>",
]

# Reading, replaying and following PLAKAR_EVENTS with consumers of one's own.
_EVENTS_READ = [
    "$JS.API.INFO",
    "$JS.API.STREAM.NAMES",  # clients look the stream up by subject
    f"$JS.API.STREAM.INFO.{s.EVENTS_STREAM}",
    f"$JS.API.STREAM.MSG.GET.{s.EVENTS_STREAM}",
    f"$JS.API.DIRECT.GET.{s.EVENTS_STREAM}",
    f"$JS.API.DIRECT.GET.{s.EVENTS_STREAM}.>",
    f"$JS.API.CONSUMER.CREATE.{s.EVENTS_STREAM}",
    f"$JS.API.CONSUMER.CREATE.{s.EVENTS_STREAM}.>",
    f"$JS.API.CONSUMER.DURABLE.CREATE.{s.EVENTS_STREAM}.>",
    f"$JS.API.CONSUMER.INFO.{s.EVENTS_STREAM}.>",
    f"$JS.API.CONSUMER.DELETE.{s.EVENTS_STREAM}.>",
    f"$JS.API.CONSUMER.MSG.NEXT.{s.EVENTS_STREAM}.>",
    f"$JS.API.CONSUMER.NAMES.{s.EVENTS_STREAM}",
    f"$JS.API.CONSUMER.LIST.{s.EVENTS_STREAM}",
    f"$JS.ACK.{s.EVENTS_STREAM}.>",
    "$JS.FC.>",
]


def _kv_read(bucket: str) -> list[str]:
    """Get keys and values, list and watch them (with consumers of one's own)."""
    return [
        f"$JS.API.STREAM.INFO.KV_{bucket}",
        f"$JS.API.STREAM.MSG.GET.KV_{bucket}",
        f"$JS.API.DIRECT.GET.KV_{bucket}.>",
        f"$JS.API.CONSUMER.CREATE.KV_{bucket}",
        f"$JS.API.CONSUMER.CREATE.KV_{bucket}.>",
        f"$JS.API.CONSUMER.DELETE.KV_{bucket}.>",
        f"$JS.API.CONSUMER.INFO.KV_{bucket}.>",
        f"$JS.ACK.KV_{bucket}.>",
        "$JS.FC.>",
    ]


def _kv_write(bucket: str, keys: str = ">") -> list[str]:
    return [*_kv_read(bucket), f"$KV.{bucket}.{keys}"]


def _presence(kind: str) -> list[str]:
    """Announce itself in the services bucket (under its own kind only), read the others."""
    return _kv_write(s.SERVICES_BUCKET, f"{kind}.>")


def _events(*job: type[AnyJobEvent], schedule: tuple[str, ...] = ()) -> list[str]:
    """Publishing the events a service tells, and only those: the kinds of job events it
    tells (the history and the api read a job event only under its own kind's subject:
    shared/events.py read_job_event) and its schedule events' kinds."""
    return [
        "$JS.API.INFO",
        *(s.job_event("*", job_event_kind(e)) for e in job),
        *(s.schedule_event("*", kind) for kind in schedule),
    ]


# Queueing a job for the runners of any group (shared/groups.py).
_JOBS_DUE_ANY_GROUP = s.job_due("*")


def runner_permissions(group: str | None) -> Permissions:
    """A runner's: of `group` only (the user `group_user(group)`), or of every group
    (the user `runner`, for runners of groups made later)."""
    # Its group's work queue `runners-<group>`, created at start when the group is new
    # (for every group: `*`, since a subject token cannot be narrowed to a prefix); its
    # group's connector actions; the connectors of its group's jobs.
    queue = s.runners_durable(group) if group else "*"
    only = group or "*"
    return {
        "publish": {
            "allow": [
                # What it does with a job: not that a job was queued or skipped, nor a
                # schedule's or a freshness event.
                *_events(JobStarted, JobProgress, JobLog, JobFinished),
                # The last seq of a job, to continue it on a new attempt.
                f"$JS.API.STREAM.MSG.GET.{s.EVENTS_STREAM}",
                f"$JS.API.CONSUMER.INFO.{s.JOBS_STREAM}.{queue}",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{s.JOBS_STREAM}.{queue}",
                f"$JS.API.CONSUMER.MSG.NEXT.{s.JOBS_STREAM}.{queue}",
                f"$JS.ACK.{s.JOBS_STREAM}.{queue}.>",
                # Jobs whose message NATS gave up on (runner/dead_letters.py).
                f"$JS.API.CONSUMER.MSG.NEXT.{s.DEAD_JOBS_STREAM}.{s.RUNNERS_DURABLE}",
                f"$JS.ACK.{s.DEAD_JOBS_STREAM}.>",
                f"$JS.API.STREAM.MSG.GET.{s.JOBS_STREAM}",
                f"$JS.API.STREAM.MSG.DELETE.{s.JOBS_STREAM}",
                *_kv_write(s.CLAIMS_BUCKET),
                *_presence("runner"),
                "_INBOX.>",  # replies to connector actions
                # The connectors of a job it holds, from the api (runners hold no database).
                s.rpc_job_connectors(only),
            ]
        },
        # Its replies arrive under its own prefix: no other service's (`_INBOX.`) reach it.
        "subscribe": {"allow": [f"{s.RUNNER_INBOX_PREFIX}.>", s.rpc_connector(only)]},
    }


def group_user(group: str) -> str:
    """The NATS user of one runner group's runners."""
    return f"runner-{group}"


SERVICE_PERMISSIONS: dict[str, Permissions] = {
    # Provisions streams, consumers and buckets (`plakar-cp migrate`).
    "admin": {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}},
    "scheduler": {
        "publish": {
            "allow": [
                _JOBS_DUE_ANY_GROUP,
                # Jobs it queues or skips, its schedules' firings, what went stale or fresh.
                *_events(JobQueued, JobSkipped, schedule=("fired",)),
                *(s.freshness_event("*", "*", kind) for kind in ("lost", "restored")),
                *_kv_write(s.SCHEDULER_LEASE_BUCKET),
                *_presence("scheduler"),
            ]
        },
        "subscribe": {"allow": ["_INBOX.>", "plakar.events.schedule.>"]},
    },
    "runner": runner_permissions(None),
    "history": {
        "publish": {
            "allow": [
                "$JS.API.INFO",
                f"$JS.API.CONSUMER.INFO.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}",
                f"$JS.API.CONSUMER.MSG.NEXT.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}",
                f"$JS.ACK.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}.>",
                *_presence("history"),
            ]
        },
        "subscribe": {"allow": ["_INBOX.>"]},
    },
    "api": {
        "publish": {
            "allow": [
                _JOBS_DUE_ANY_GROUP,
                # Jobs it queues or cancels (a line and the end), schedules it changes.
                *_events(JobQueued, JobLog, JobFinished, schedule=("changed",)),
                *_EVENTS_READ,
                s.RPC_CONNECTOR_ALL,
                *_kv_write(s.CLAIMS_BUCKET),  # cancel
                *_presence("api"),
                *_kv_read(s.SCHEDULER_LEASE_BUCKET),  # health names the active scheduler
                # A job's message, to tell a runner asking for its connectors which.
                f"$JS.API.STREAM.MSG.GET.{s.JOBS_STREAM}",
            ],
            "deny": _HISTORY_DURABLE,
        },
        "subscribe": {"allow": ["_INBOX.>", "plakar.events.>", s.RPC_JOB_CONNECTORS_ALL]},
        # Answering a runner's chunk of a file (shared/rpc.py ReadFile) or its request for
        # a job's connectors, and only that: one answer per message received with a reply
        # subject.
        "allow_responses": {"max": 1},
    },
}

READER_PERMISSIONS: dict[str, Permissions] = {
    # External tools: read and replay the events, with consumers of their own. They may
    # not publish into their stream, nor change or delete it.
    "events": {
        "publish": {"allow": _EVENTS_READ, "deny": ["plakar.>"]},
        "subscribe": {"allow": [">"]},
    },
    # Provisions the readers' stream (`plakar-cp migrate`).
    "events_admin": {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}},
}

USERS = (*SERVICE_PERMISSIONS, *READER_PERMISSIONS)


def accounts(creds: dict[str, str], runner_groups: Sequence[str] = ()) -> dict[str, Any]:
    """The `accounts` block of nats-server's configuration, with each user's password;
    a user of its own for each of `runner_groups` (`group_user`)."""

    def users(permissions: dict[str, Permissions]) -> list[dict[str, Any]]:
        return [{"user": u, "password": creds[u], "permissions": p} for u, p in permissions.items()]

    groups = {group_user(g): runner_permissions(g) for g in runner_groups}
    return {
        CONTROL_PLANE: {
            "jetstream": "enabled",
            "users": users({**SERVICE_PERMISSIONS, **groups}),
            "exports": [{"stream": s.EVENTS_ALL, "accounts": [READERS]}],
        },
        READERS: {
            # One stream, a bounded number of consumers: readers cannot exhaust the server.
            "jetstream": {"max_streams": 1, "max_consumers": 256},
            "users": users(READER_PERMISSIONS),
            "imports": [{"stream": {"account": CONTROL_PLANE, "subject": s.EVENTS_ALL}}],
        },
    }
