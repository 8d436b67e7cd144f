"""A job's output, live, as the api's WebSocket streams it: lines as they come, the job's
final status, and a reconnection after the last line printed when the stream broke off
or this terminal fell behind (the api then sends the stored lines first)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import msgspec
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from services.client.api import RECORDED_WITHIN_S, Api, ClientError
from shared.events import StreamDropped, StreamLines, StreamLog, StreamMessage, StreamStatus
from shared.lifecycle import TERMINAL

_decode = msgspec.json.Decoder(StreamMessage).decode
# The stream's close code for a job the api does not know (yet: see RECORDED_WITHIN_S).
NOT_FOUND = 4404
# Streams in a row that broke off before a line came (the api restarting takes seconds).
RECONNECTS = 10


def follow(api: Api, job_id: str, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Print the job's output from its first line until it ends; returns the job as it
    ended."""
    last = 0
    broken = 0
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {api.endpoint.token}"}
    while True:
        url = api.endpoint.ws_url(f"/jobs/{job_id}/stream?after={last}&batch=1")
        try:
            with connect(url, additional_headers=headers, max_size=None) as ws:
                for data in ws:
                    broken = 0
                    message = _decode(data)
                    if isinstance(message, StreamDropped):
                        break  # fell behind: read again after the last line printed
                    last = print_lines(message, last, out)
                    if isinstance(message, StreamStatus) and message.job.status in TERMINAL:
                        job: dict[str, Any] = msgspec.to_builtins(message.job)
                        return job
        except InvalidStatus as e:
            status = e.response.status_code
            raise ClientError(f"the api refused the job's stream: {status}") from None
        except ConnectionClosed as e:
            code, reason = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")
            if code == NOT_FOUND and time.monotonic() - started > RECORDED_WITHIN_S:
                raise ClientError(f"no job {job_id}") from None
            if code is not None and code != NOT_FOUND and 4000 <= code < 4500:
                raise ClientError(f"the api refused the job's stream: {reason}") from None
            if broken >= RECONNECTS:
                raise ClientError(f"lost the job's stream: {e}") from None
        except OSError as e:
            if broken >= RECONNECTS:
                raise ClientError(f"lost the job's stream: {e}") from None
        broken += 1
        time.sleep(min(5.0, 0.1 * 2**broken))


def print_lines(message: StreamMessage, last: int, out: TextIO) -> int:
    """Print the lines a message holds after seq `last`; returns the last seq printed."""
    if isinstance(message, StreamLines):
        lines = [(line.seq, line.line) for line in message.lines]
    elif isinstance(message, StreamLog):
        lines = [(message.seq, message.line)]
    else:
        return last
    for seq, line in lines:
        if seq > last:
            out.write(line + "\n")
            last = seq
    out.flush()
    return last
