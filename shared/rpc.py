"""Connector actions over NATS request/reply: the api asks on one subject
(`plakar.rpc.connector`, runners answer as a queue group), with one tagged union of
requests and one of replies. A runner that cannot do what is asked answers `Failed` with
a reason; the api turns reasons into HTTP statuses in one place (services/api/rpc.py).
Each connector action carries its connector, secrets included: runners hold no database.

The other way round, a runner asks the api for the connectors of a job it holds
(`plakar.rpc.job.connectors`, api processes answer as a queue group): `JobConnectors`,
answered `Connectors` or `Failed` (services/api/job_connectors.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from shared.events import JobId
from shared.models import (
    ActionResult,
    Connector,
    FileList,
    PrunePlan,
    RestorePoint,
    Retention,
    SnapshotInfo,
)


class _Request(msgspec.Struct, kw_only=True, tag_field="action"):
    pass


class Ping(_Request, tag="ping"):
    """Does a runner answer? (the api's health asks)"""


class CheckConnection(_Request, tag="test"):
    connector: Connector


class InitializeStore(_Request, tag="initialize"):
    connector: Connector


class ListSnapshots(_Request, tag="snapshots"):
    connector: Connector


class BrowseSnapshot(_Request, tag="files"):
    connector: Connector
    snapshot_id: str
    path: str


class ReadFile(_Request, tag="read"):
    """A file's bytes, streamed: the runner sends each `Chunk` as a request to the reply
    subject, and sends the next once the api answers `Pull(more=True)`; it ends with
    `FileEnd` (or `Failed`) as the reply proper. The api holds one chunk at a time."""

    connector: Connector
    snapshot_id: str
    path: str


class PreviewPrune(_Request, tag="prune_preview"):
    """What a prune of the store would keep and delete now (plakar's dry run)."""

    connector: Connector
    labels: list[str]
    retention: Retention


class LocateRestore(_Request, tag="restore_point"):
    """The snapshot a restore task names (a full id or a unique prefix) and what it holds
    at the task's path (null: all of it): asked when the task is saved."""

    connector: Connector
    snapshot_id: str
    path: str | None


Request = (
    Ping
    | CheckConnection
    | InitializeStore
    | ListSnapshots
    | BrowseSnapshot
    | ReadFile
    | PreviewPrune
    | LocateRestore
)


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


class PrunePlanned(_Reply, tag="prune_plan"):
    plan: PrunePlan


class RestoreLocated(_Reply, tag="restore_point"):
    snapshot_id: str
    point: RestorePoint


class Unresolved(_Reply, tag="unresolved"):
    """The store has no such snapshot (or several match), or the snapshot no such path."""

    field: Literal["snapshot_id", "restore_path"]
    message: str


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


Reply = (
    Pong
    | Result
    | Snapshots
    | Files
    | PrunePlanned
    | RestoreLocated
    | Unresolved
    | Chunk
    | FileEnd
    | Failed
)


class JobConnectors(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A runner's request for the connectors of a job it holds. `message` is the stream
    sequence of the job's message in PLAKAR_JOBS: the api reads the job's connector ids
    from there (only the scheduler and the api may publish in it), never from the asker.
    `runner` and `runner_since` must be those of the job's claim."""

    job_id: JobId
    message: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    runner: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    runner_since: datetime


class Connectors(_Reply, tag="connectors"):
    """The job's connectors that still exist, secrets included."""

    items: list[Connector]


ConnectorsReply = Connectors | Failed

_requests: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_replies: msgspec.json.Decoder[Reply] = msgspec.json.Decoder(Reply)
_job_connectors: msgspec.json.Decoder[JobConnectors] = msgspec.json.Decoder(JobConnectors)
_connectors_replies: msgspec.json.Decoder[ConnectorsReply] = msgspec.json.Decoder(ConnectorsReply)
encode = msgspec.json.Encoder().encode


def decode_request(data: bytes) -> Request:
    return _requests.decode(data)


def decode_reply(data: bytes) -> Reply:
    return _replies.decode(data)


def decode_pull(data: bytes) -> Pull:
    return msgspec.json.decode(data, type=Pull)


def decode_job_connectors(data: bytes) -> JobConnectors:
    return _job_connectors.decode(data)


def decode_connectors_reply(data: bytes) -> ConnectorsReply:
    return _connectors_replies.decode(data)
