"""`plakar-cp events`: print the events stream as JSON lines, the way an external tool
reads it (read-only credentials, an ordered JetStream consumer, replay from a point).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import nats
import nats.errors
from nats.js import api as js_api

from services.api.live import first_seq_since
from shared import subjects as s
from shared.bus import connect_options
from shared.durations import DurationError, parse_duration
from shared.events import utcnow
from shared.settings import nats_seeds


class FollowError(Exception):
    """Said to the user as is."""


@dataclass(frozen=True)
class Start:
    """Where to begin: "all" stored events, only "new" ones, or those of the last
    `seconds`."""

    mode: str
    seconds: int = 0


def parse_since(value: str) -> Start:
    if value in ("all", "new"):
        return Start(value)
    try:
        return Start("since", parse_duration(value))
    except DurationError:
        raise FollowError(
            f"--since {value!r}: use all, new or a duration such as 90m or 1d"
        ) from None


def events_url(explicit: str | None, data_dir: Path) -> str:
    """--nats-url, else PLAKAR_CP_EVENTS_NATS_URL, else the endpoints of `plakar-cp up`."""
    url = explicit or os.environ.get("PLAKAR_CP_EVENTS_NATS_URL")
    if url:
        return url
    path = data_dir / "endpoints.json"
    try:
        found: str = json.loads(path.read_text())["events_nats_url"]
        return found
    except (OSError, ValueError, KeyError):
        raise FollowError(
            f"no events URL: pass --nats-url, set PLAKAR_CP_EVENTS_NATS_URL or "
            f"point --data-dir at a running `plakar-cp up` ({path} not readable)"
        ) from None


async def follow(
    url: str, start: Start, job_id: str | None, keep_going: bool, out: BinaryIO
) -> None:
    """Write each event's JSON on a line of its own; without `keep_going`, stop once
    the stored events are printed."""
    # The URL may name several servers (a cluster's seeds, comma-separated).
    nc = await nats.connect(**connect_options(url), name="plakar-cp events")
    try:
        js = nc.jetstream()
        subject = s.job_events(job_id) if job_id else s.EVENTS_ALL
        config = js_api.ConsumerConfig()
        policy = js_api.DeliverPolicy.ALL
        if start.mode == "new":
            policy = js_api.DeliverPolicy.NEW
        elif start.mode == "since":
            # Taken before the lookup: if nothing is that recent, the next event
            # stored has a higher sequence than this.
            last = (await js.stream_info(s.EVENTS_STREAM)).state.last_seq
            since = utcnow() - timedelta(seconds=start.seconds)
            policy = js_api.DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = await first_seq_since(nc, subject, since) or last + 1
        sub = await js.subscribe(
            subject,
            stream=s.EVENTS_STREAM,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
        )
        if not keep_going:
            info = await sub.consumer_info()
            delivered = info.delivered.stream_seq if info.delivered else 0
            if info.num_pending == 0 and delivered == 0:
                return  # nothing stored from there on
        while True:
            msg = await sub.next_msg(timeout=None)
            out.write(msg.data + b"\n")
            out.flush()
            if not keep_going and msg.metadata.num_pending == 0:
                return
    finally:
        await nc.close()


def _job_subject_id(job_id: str | None) -> str | None:
    if job_id is None:
        return None
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        raise FollowError(f"--job {job_id!r} is not a job id (UUID)") from None


def main(
    nats_url: str | None, data_dir: Path, since: str, job_id: str | None, keep_going: bool
) -> int:
    url = ""
    try:
        start = parse_since(since)
        job = _job_subject_id(job_id)
        url = events_url(nats_url, data_dir)
        asyncio.run(follow(url, start, job, keep_going, sys.stdout.buffer))
    except FollowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, nats.errors.Error) as e:
        hosts = ", ".join(str(urlsplit(u).netloc).rsplit("@", 1)[-1] for u in nats_seeds(url))
        print(f"error: cannot read the events from NATS at {hosts}: {e!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
