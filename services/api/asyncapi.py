"""The AsyncAPI 3.0 document of the events: the NATS subjects external tools read,
and the api's two WebSockets. Payload schemas come from the msgspec types the
services themselves publish, so the document cannot drift from the wire."""

from __future__ import annotations

from typing import Any, get_args
from urllib.parse import urlsplit

import msgspec
from litestar import MediaType, Request, get

from services.api.openapi import errors
from services.api.routes.streams import SCHEDULE_KINDS
from shared import subjects as s
from shared.events import (
    JOB_EVENT_KINDS,
    AnyFreshnessEvent,
    AnyJobEvent,
    AnyScheduleEvent,
    EventsDropped,
    StreamMessage,
)
from shared.notifications import SIGNATURE_HEADER, Notice
from shared.settings import Settings, nats_seeds

REF = "#/components/schemas/{name}"


def _messages(types: tuple[type[msgspec.Struct], ...]) -> dict[str, Any]:
    return {t.__name__: {"$ref": f"#/components/messages/{t.__name__}"} for t in types}


def _host(url: str) -> str:
    """host:port of the (first) server the URL names."""
    parts = urlsplit(nats_seeds(url)[0])
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def document(settings: Settings, api_host: str) -> dict[str, Any]:
    job_events = get_args(AnyJobEvent)
    schedule_events = get_args(AnyScheduleEvent)
    freshness_events = get_args(AnyFreshnessEvent)
    stream_messages = get_args(StreamMessage)
    notices = get_args(Notice)
    feed = (*job_events, *schedule_events, *freshness_events, EventsDropped)
    channels = {
        "jobEvents": _nats_channel("job", JOB_EVENT_KINDS, job_events),
        "scheduleEvents": _nats_channel("schedule", SCHEDULE_KINDS, schedule_events),
        "freshnessEvents": {
            "address": "plakar.events.freshness.{watched}.{id}.{change}",
            "servers": [{"$ref": "#/servers/nats"}],
            "description": "A task's or a connector's freshness changed (docs/freshness.md).",
            "parameters": {
                "watched": {"enum": ["task", "connector"]},
                "id": {"description": "the task's or the connector's id (UUID)"},
                "change": {"enum": ["lost", "restored"]},
            },
            "messages": _messages(freshness_events),
        },
        "jobStream": _ws_channel(
            "/jobs/{job_id}/stream",
            "The job's stored output after ?after=SEQ, then live lines and progress; the "
            "last message is the final status, then the socket closes (1000). 4404: no "
            "such job; 4422: bad parameter. With ?batch=1, lines come in `lines` "
            "messages (one per output batch) instead of one `log` message each.",
            {
                "after": {"type": "integer", "minimum": 0},
                "batch": {"type": "integer", "enum": [0, 1]},
            },
            stream_messages,
        ),
        "eventFeed": _ws_channel(
            "/events",
            "Every event as published on NATS, live (at most once).",
            {"kinds": {"type": "string", "description": "comma list"}},
            feed,
        ),
    }
    webhook = {
        "address": "{url}",
        "servers": [{"$ref": "#/servers/webhook"}],
        "description": (
            "A notification target's URL: a JSON POST of one notice (docs/notifications.md). "
            f"Headers: X-Plakar-Event (its kind, or `test`), X-Plakar-Delivery (the same on "
            f"each attempt of one delivery), and {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 "
            "of the body, keyed by the target's secret> when it has one. A 2xx answer "
            "delivers it; anything else (a redirect too) is tried again later."
        ),
        "parameters": {"url": {"description": "the target's url"}},
        "bindings": {"http": {"method": "POST"}},
        "messages": _messages(notices),
    }
    operations = {
        f"receive{name[0].upper()}{name[1:]}": {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
        }
        for name in channels
    }
    operations["sendNotification"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/notifications"},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Plakar Control Plane events",
            "version": "1",
            "description": (
                f"Job and schedule events on the replayable NATS JetStream stream "
                f"{s.EVENTS_STREAM}, and the api's WebSockets. See docs/events.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": _servers(settings, api_host),
        "channels": {**channels, "notifications": webhook},
        "operations": operations,
        "components": _components(tuple(dict.fromkeys((*feed, *stream_messages, *notices)))),
    }


def _servers(settings: Settings, api_host: str) -> dict[str, Any]:
    return {
        "nats": {
            "host": _host(settings.events_nats_url or settings.nats_url),
            "protocol": "nats",
            "description": (
                "Readers' account (events_nats_url in endpoints.json): subscribe, and "
                "replay the PLAKAR_EVENTS stream with JetStream consumers of one's own."
            ),
        },
        "webhook": {
            "host": "{receiver}",
            "protocol": "https",
            "description": "A webhook target's receiver (http or https, as its url says).",
            "variables": {"receiver": {"description": "host[:port] of the target's url"}},
        },
        "api": {
            "host": api_host,
            "pathname": "/api/v1",
            "protocol": "ws",
            "description": "Token as ?token= or the UI's session cookie.",
        },
    }


def _nats_channel(
    entity: str, kinds: tuple[str | None, ...], types: tuple[type[msgspec.Struct], ...]
) -> dict[str, Any]:
    return {
        "address": f"plakar.events.{entity}.{{{entity}_id}}.{{kind}}",
        "servers": [{"$ref": "#/servers/nats"}],
        "parameters": {
            f"{entity}_id": {"description": f"the {entity}'s id (UUID)"},
            "kind": {"enum": [k for k in kinds if k], "description": "the event's kind"},
        },
        "messages": _messages(types),
    }


def _ws_channel(
    address: str,
    description: str,
    query: dict[str, Any],
    types: tuple[type[msgspec.Struct], ...],
) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": address,
        "servers": [{"$ref": "#/servers/api"}],
        "description": description,
        "bindings": {
            "ws": {
                "query": {
                    "type": "object",
                    "properties": {**query, "token": {"type": "string"}},
                }
            }
        },
        "messages": _messages(types),
    }
    if "{job_id}" in address:
        channel["parameters"] = {"job_id": {"description": "the job's id (UUID)"}}
    return channel


def _components(types: tuple[type[msgspec.Struct], ...]) -> dict[str, Any]:
    """A message per type, its payload schema generated from the type."""
    _, schemas = msgspec.json.schema_components(types, ref_template=REF)
    messages = {
        t.__name__: {
            "name": t.__name__,
            "title": t.__name__,
            "summary": (t.__doc__ or "").strip().split("\n\n")[0] or t.__name__,
            "payload": {"$ref": REF.format(name=t.__name__)},
        }
        for t in types
    }
    return {"messages": messages, "schemas": schemas}


@get("/api/v1/asyncapi.json", media_type=MediaType.JSON, tags=["events"], responses=errors())
async def asyncapi(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the events and WebSockets."""
    settings: Settings = request.app.state.deps.settings
    return document(settings, request.url.netloc)
