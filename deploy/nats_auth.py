"""NATS users: one per service, one read-only user for external subscribers.

Each user may publish and subscribe only where its service needs to.
"""

from __future__ import annotations

from shared import subjects as s

_JS_EVENTS_READ = [
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
    f"$JS.ACK.{s.EVENTS_STREAM}.>",
    "$JS.FC.>",
]

# The history service's durable consumer: readers of the events may not pull from
# it, ack for it, change or delete it (it would lose events for the history).
_HISTORY_DURABLE = [
    *(
        f"$JS.API.CONSUMER.{op}.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}"
        for op in ("CREATE", "DURABLE.CREATE", "DELETE", "MSG.NEXT")
    ),
    f"$JS.API.CONSUMER.CREATE.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}.>",
    f"$JS.ACK.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}.>",
]

# External subscribers get replies on inboxes of their own: with `_INBOX.>` they
# could read the replies meant for the services (connector actions, claims).
EVENTS_INBOX_PREFIX = "_INBOX_events"


def _kv(bucket: str) -> list[str]:
    return [
        f"$KV.{bucket}.>",
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


_EVENTS_PUBLISH = ["plakar.events.>", "$JS.API.INFO"]
_SERVICES = _kv(s.SERVICES_BUCKET)

PERMISSIONS: dict[str, dict[str, dict[str, list[str]]]] = {
    # Provisions streams, consumers and buckets (`plakar-cp migrate`).
    "admin": {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}},
    "scheduler": {
        "publish": {
            "allow": [
                s.JOB_DUE,
                *_EVENTS_PUBLISH,
                *_kv(s.SCHEDULER_LEASE_BUCKET),
                *_SERVICES,
            ]
        },
        "subscribe": {"allow": ["_INBOX.>", "plakar.events.schedule.>"]},
    },
    "runner": {
        "publish": {
            "allow": [
                *_EVENTS_PUBLISH,
                # The last seq of a job, to continue it on a new attempt.
                f"$JS.API.STREAM.MSG.GET.{s.EVENTS_STREAM}",
                f"$JS.API.CONSUMER.INFO.{s.JOBS_STREAM}.{s.RUNNERS_DURABLE}",
                f"$JS.API.CONSUMER.MSG.NEXT.{s.JOBS_STREAM}.{s.RUNNERS_DURABLE}",
                f"$JS.ACK.{s.JOBS_STREAM}.>",
                # Jobs whose message NATS gave up on (runner/dead_letters.py).
                f"$JS.API.CONSUMER.MSG.NEXT.{s.DEAD_JOBS_STREAM}.{s.RUNNERS_DURABLE}",
                f"$JS.ACK.{s.DEAD_JOBS_STREAM}.>",
                f"$JS.API.STREAM.MSG.GET.{s.JOBS_STREAM}",
                f"$JS.API.STREAM.MSG.DELETE.{s.JOBS_STREAM}",
                *_kv(s.CLAIMS_BUCKET),
                *_SERVICES,
                "_INBOX.>",  # replies to connector actions
            ]
        },
        "subscribe": {"allow": ["_INBOX.>", f"{s.RPC_CONNECTOR}.>"]},
    },
    "history": {
        "publish": {
            "allow": [
                "$JS.API.INFO",
                f"$JS.API.CONSUMER.INFO.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}",
                f"$JS.API.CONSUMER.MSG.NEXT.{s.EVENTS_STREAM}.{s.HISTORY_DURABLE}",
                f"$JS.ACK.{s.EVENTS_STREAM}.>",
                *_SERVICES,
            ]
        },
        "subscribe": {"allow": ["_INBOX.>"]},
    },
    "api": {
        "publish": {
            "allow": [
                s.JOB_DUE,
                *_EVENTS_PUBLISH,
                *_JS_EVENTS_READ,
                f"{s.RPC_CONNECTOR}.>",
                *_kv(s.CLAIMS_BUCKET),
                *_SERVICES,
                *_kv(s.SCHEDULER_LEASE_BUCKET),
            ],
            "deny": _HISTORY_DURABLE,
        },
        "subscribe": {"allow": ["_INBOX.>", "plakar.events.>"]},
    },
    # External tools: subscribe to and replay the events, publish nothing else.
    "events": {
        "publish": {"allow": _JS_EVENTS_READ, "deny": ["plakar.>", *_HISTORY_DURABLE]},
        "subscribe": {"allow": ["plakar.events.>", f"{EVENTS_INBOX_PREFIX}.>"]},
    },
}

USERS = tuple(PERMISSIONS)
