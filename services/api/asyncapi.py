"""The AsyncAPI 3.0 document of the events: the NATS subjects external tools read,
and the api's two WebSockets. Payload schemas come from the msgspec types the
services themselves publish, so the document cannot drift from the wire."""

from __future__ import annotations

from typing import Any, get_args
from urllib.parse import urlsplit

import msgspec
from litestar import MediaType, Request, get

from services.api.routes.streams import SCHEDULE_KINDS
from shared import subjects as s
from shared.events import (
    JOB_EVENT_KINDS,
    AnyJobEvent,
    AnyScheduleEvent,
    EventsDropped,
    StreamMessage,
)
from shared.settings import Settings

REF = "#/components/schemas/{name}"


def _messages(types: tuple[type[msgspec.Struct], ...]) -> dict[str, Any]:
    return {t.__name__: {"$ref": f"#/components/messages/{t.__name__}"} for t in types}


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def document(settings: Settings, api_host: str) -> dict[str, Any]:
    job_events = get_args(AnyJobEvent)
    schedule_events = get_args(AnyScheduleEvent)
    stream_messages = get_args(StreamMessage)
    feed = (*job_events, *schedule_events, EventsDropped)
    every = (*job_events, *schedule_events, *stream_messages, EventsDropped)
    _, schemas = msgspec.json.schema_components(every, ref_template=REF)
    components_messages = {
        t.__name__: {
            "name": t.__name__,
            "title": t.__name__,
            "summary": (t.__doc__ or "").strip().split("\n\n")[0] or t.__name__,
            "payload": {"$ref": REF.format(name=t.__name__)},
        }
        for t in every
    }

    def kind(values: tuple[str | None, ...]) -> dict[str, Any]:
        return {"enum": [v for v in values if v], "description": "the event's kind"}

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
        "servers": {
            "nats": {
                "host": _host(settings.events_nats_url or settings.nats_url),
                "protocol": "nats",
                "description": (
                    "Readers' account (events_nats_url in endpoints.json): subscribe, and "
                    "replay the PLAKAR_EVENTS stream with JetStream consumers of one's own."
                ),
            },
            "api": {
                "host": api_host,
                "pathname": "/api/v1",
                "protocol": "ws",
                "description": "Token as ?token= or the UI's session cookie.",
            },
        },
        "channels": {
            "jobEvents": {
                "address": "plakar.events.job.{job_id}.{kind}",
                "servers": [{"$ref": "#/servers/nats"}],
                "parameters": {
                    "job_id": {"description": "the job's id (UUID)"},
                    "kind": kind(JOB_EVENT_KINDS),
                },
                "messages": _messages(job_events),
            },
            "scheduleEvents": {
                "address": "plakar.events.schedule.{schedule_id}.{kind}",
                "servers": [{"$ref": "#/servers/nats"}],
                "parameters": {
                    "schedule_id": {"description": "the schedule's id (UUID)"},
                    "kind": kind(SCHEDULE_KINDS),
                },
                "messages": _messages(schedule_events),
            },
            "jobStream": {
                "address": "/jobs/{job_id}/stream",
                "servers": [{"$ref": "#/servers/api"}],
                "description": (
                    "The job's stored output after ?after=SEQ, then live lines and "
                    "progress; the last message is the final status, then the socket "
                    "closes (1000). 4404: no such job; 4422: bad parameter."
                ),
                "parameters": {"job_id": {"description": "the job's id (UUID)"}},
                "bindings": {
                    "ws": {
                        "query": {
                            "type": "object",
                            "properties": {
                                "after": {"type": "integer", "minimum": 0},
                                "token": {"type": "string"},
                            },
                        }
                    }
                },
                "messages": _messages(stream_messages),
            },
            "eventFeed": {
                "address": "/events",
                "servers": [{"$ref": "#/servers/api"}],
                "description": "Every event as published on NATS, live (at most once).",
                "bindings": {
                    "ws": {
                        "query": {
                            "type": "object",
                            "properties": {
                                "kinds": {"type": "string", "description": "comma list"},
                                "token": {"type": "string"},
                            },
                        }
                    }
                },
                "messages": _messages(feed),
            },
        },
        "operations": {
            name: {"action": "receive", "channel": {"$ref": f"#/channels/{channel}"}}
            for name, channel in (
                ("receiveJobEvents", "jobEvents"),
                ("receiveScheduleEvents", "scheduleEvents"),
                ("receiveJobStream", "jobStream"),
                ("receiveEventFeed", "eventFeed"),
            )
        },
        "components": {"messages": components_messages, "schemas": schemas},
    }


@get("/api/v1/asyncapi.json", media_type=MediaType.JSON, tags=["events"])
async def asyncapi(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the events and WebSockets."""
    settings: Settings = request.app.state.deps.settings
    return document(settings, request.url.netloc)
