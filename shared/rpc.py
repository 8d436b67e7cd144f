"""Connector actions over NATS request/reply: the api asks on one subject
(`plakar.rpc.connector`, runners answer as a queue group), with one tagged union of
requests and one of replies. A runner that cannot do what is asked answers `Failed` with
a reason; the api turns reasons into HTTP statuses in one place (services/api/rpc.py)."""

from __future__ import annotations

from typing import Literal

import msgspec

from shared.models import ActionResult, FileList, SnapshotInfo


class _Request(msgspec.Struct, kw_only=True, tag_field="action"):
    pass


class Ping(_Request, tag="ping"):
    """Does a runner answer? (the api's health asks)"""


class CheckConnection(_Request, tag="test"):
    connector_id: str


class InitializeStore(_Request, tag="initialize"):
    connector_id: str


class ListSnapshots(_Request, tag="snapshots"):
    connector_id: str


class BrowseSnapshot(_Request, tag="files"):
    connector_id: str
    snapshot_id: str
    path: str


class ReadFile(_Request, tag="read"):
    """A file's bytes, streamed: the runner sends each `Chunk` as a request to the reply
    subject, and sends the next once the api answers `Pull(more=True)`; it ends with
    `FileEnd` (or `Failed`) as the reply proper. The api holds one chunk at a time."""

    connector_id: str
    snapshot_id: str
    path: str


Request = Ping | CheckConnection | InitializeStore | ListSnapshots | BrowseSnapshot | ReadFile


class _Reply(msgspec.Struct, kw_only=True, tag_field="reply"):
    pass


class Pong(_Reply, tag="pong"):
    runner: str


class Result(_Reply, tag="result"):
    result: ActionResult


class Snapshots(_Reply, tag="snapshots"):
    items: list[SnapshotInfo]


class Files(_Reply, tag="files"):
    files: FileList


# Raw bytes per chunk: base64 in JSON makes 512 KiB some 683 KiB, under NATS's 1 MiB
# max_payload (deploy/embedded.py).
CHUNK_BYTES = 512 * 1024


class Chunk(_Reply, tag="chunk"):
    data: bytes


class FileEnd(_Reply, tag="end"):
    size: int


class Pull(msgspec.Struct, kw_only=True):
    """The api's answer to a Chunk: send the next one, or stop (plakar is stopped)."""

    more: bool


# not_found: the connector (or the snapshot, the path) does not exist; not_applicable:
# not an action for this connector (a source has no snapshots); conflict: the state
# forbids it (a store initialized already); refused: the connector breaks the rules;
# failed: plakar or the runner failed.
FailReason = Literal["not_found", "not_applicable", "conflict", "refused", "failed"]


class Failed(_Reply, tag="failed"):
    reason: FailReason
    message: str


Reply = Pong | Result | Snapshots | Files | Chunk | FileEnd | Failed

_requests: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_replies: msgspec.json.Decoder[Reply] = msgspec.json.Decoder(Reply)
encode = msgspec.json.Encoder().encode


def decode_request(data: bytes) -> Request:
    return _requests.decode(data)


def decode_reply(data: bytes) -> Reply:
    return _replies.decode(data)


def decode_pull(data: bytes) -> Pull:
    return msgspec.json.decode(data, type=Pull)
