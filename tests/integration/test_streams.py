"""Live job output over WebSocket: stored lines, then live ones, without gap or
duplicate; resuming with `after=`; the feed of all events; bad requests."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.stack import Stack, many_files, running_stack, stack_dir

pytestmark = pytest.mark.integration

Message = dict[str, Any]


async def read(url: str, stop_after: int | None = None, pause_s: float = 0) -> list[Message]:
    """Every message until the server closes (or `stop_after` messages); with
    `pause_s`, read nothing for that long first, like a stalled browser tab."""
    got: list[Message] = []
    async with connect(url, max_size=None, max_queue=1) as ws:
        if pause_s:
            await asyncio.sleep(pause_s)
        async for raw in ws:
            got.append(json.loads(raw))
            if stop_after is not None and len(got) >= stop_after:
                break
    return got


def lines(messages: list[Message]) -> list[str]:
    """The lines of `log` messages, and of `lines` messages (`?batch=1`)."""
    got = []
    for m in messages:
        batch = [m] if m["type"] == "log" else m["lines"] if m["type"] == "lines" else []
        got += [line["line"] for line in batch]
    return got


def highest_seq(messages: list[Message]) -> int:
    return int(max(m["seq"] for m in messages if "seq" in m))


def backup_job(
    stack: Stack, tmp_path: Path, files: int, name: str, stem: str = "f", size: int = 8192
) -> str:
    """A backup job, just queued."""
    tree = many_files(tmp_path / "src", files, size=size, stem=stem)
    source = stack.connector(f"{name}-src", "source", str(tree))
    store = stack.store(f"{name}-store", tmp_path / "store")
    body = {"type": "backup", "source_id": source, "store_id": store, "concurrency": 1}
    job_id: str = stack.post("/tasks", body, expect=201)["job_id"]
    return job_id


def running_backup(stack: Stack, tmp_path: Path, files: int, name: str) -> str:
    """A backup job that is running and has printed some lines."""
    job_id = backup_job(stack, tmp_path, files, name)
    stack.wait_running(job_id, lines=100)
    return job_id


async def test_mid_job_and_resumed_clients_get_exactly_the_output(
    stack: Stack, tmp_path: Path
) -> None:
    job_id = running_backup(stack, tmp_path, 12_000, "ws")
    url = stack.ws_url(f"/jobs/{job_id}/stream")

    async def resumed() -> tuple[list[Message], list[Message]]:
        first = await read(url, stop_after=2000)
        rest = await read(stack.ws_url(f"/jobs/{job_id}/stream", after=highest_seq(first)))
        return first, rest

    whole, (first, rest), batched = await asyncio.gather(
        read(url), resumed(), read(stack.ws_url(f"/jobs/{job_id}/stream", batch=1))
    )

    output = stack.output_lines(job_id)
    assert len(output) > 12_000
    assert whole[0]["type"] == "status" and whole[0]["job"]["status"] == "running"
    assert lines(whole) == output
    assert lines(first) + lines(rest) == output
    # Batches: the same lines in far fewer messages. How many lines a batch holds follows
    # how plakar's output came (the runner sends sparse output at once): 8 a message on
    # one loaded run, more on others.
    assert lines(batched) == output and not any(m["type"] == "log" for m in batched)
    assert len(batched) < len(whole) / 4
    for messages in (whole, rest):
        assert messages[-1]["type"] == "status"
        assert messages[-1]["job"]["status"] == "succeeded"
        assert messages[-1]["job"] == stack.get(f"/jobs/{job_id}")
    seqs = [m["seq"] for m in whole if m["type"] in ("log", "progress")]
    assert seqs == sorted(set(seqs)), "seq must only grow"
    assert any(m["type"] == "progress" for m in whole)

    # A finished job: what is stored after `after`, the final status, then a clean close.
    third_last = [m["seq"] for m in whole if m["type"] == "log"][-3]
    tail = await read(stack.ws_url(f"/jobs/{job_id}/stream", after=third_last))
    assert lines(tail) == output[-2:]
    assert [m["type"] for m in tail] == ["log", "log", "status"]


@pytest.fixture(scope="module")
def small_outbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose api keeps at most 64 KiB waiting per WebSocket client."""
    with running_stack(
        stack_dir("outbox"), runners=1, env={"PLAKAR_CP_WS_OUTBOX_BYTES": "65536"}
    ) as s:
        yield s


# How long the stalled client sleeps at most: the api pings every 20 s and closes a
# connection whose ping goes 20 s unanswered.
STALL_S = 30


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(any(line == w for w in rest) for line in part)


async def test_a_stalled_client_loses_its_oldest_lines_not_the_jobs_pace(
    small_outbox: Stack, tmp_path: Path
) -> None:
    stack = small_outbox
    # Joined before the output: its lines come live, not paged from the history (a client
    # that pages stored lines gets them all, at its own pace).
    # Lines of about 300 bytes: more output (about 10 MB) than the kernel's socket
    # buffers (at most 4 MiB here) hold for a client that reads nothing.
    # Files of 256 bytes: the lines come as fast as plakar walks the tree.
    job_id = backup_job(stack, tmp_path, 25_000, "stall", stem="f" * 200, size=256)
    wake = asyncio.Event()

    async def stalled() -> list[Message]:
        # A small receive buffer, so that the client's lag reaches the api at once.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", stack.port))
        url = stack.ws_url(f"/jobs/{job_id}/stream")
        # Uncompressed: repeated lines compress twentyfold, which the buffers would hold.
        # No keepalive pings of its own: their answers would wait unread behind the lines,
        # and the client would close the connection itself on a slow machine.
        async with connect(
            url, sock=sock, max_size=None, max_queue=1, compression=None, ping_interval=None
        ) as ws:
            # Reads nothing more from its socket until the job ends, or until the api
            # would take it for gone (it answers no keepalive ping meanwhile).
            ws.transport.pause_reading()
            await wake.wait()
            ws.transport.resume_reading()
            return [json.loads(raw) async for raw in ws]

    client = asyncio.create_task(stalled())
    deadline = time.monotonic() + STALL_S
    while stack.get(f"/jobs/{job_id}")["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    wake.set()
    got = await asyncio.wait_for(client, 60)

    output = stack.output_lines(job_id)
    received = lines(got)
    markers = [m for m in got if m["type"] == "dropped"]
    assert markers, "64 KiB of outbox and the socket buffers cannot hold 10 MB of lines"
    assert is_subsequence(received, output) and len(received) < len(output)
    assert len(received) + sum(m["count"] for m in markers) >= len(output)
    logged = [m["seq"] for m in got if m["type"] == "log"]
    for m in markers:
        assert m["first_seq"] <= m["last_seq"]
        assert not any(m["first_seq"] <= seq <= m["last_seq"] for seq in logged)
    assert got[-1]["type"] == "status" and got[-1]["job"]["status"] == "succeeded"


async def test_event_feed_and_filters(stack: Stack, tmp_path: Path) -> None:
    source = stack.connector("feed-src", "source", str(many_files(tmp_path / "src", 20)))
    store = stack.store("feed-store", tmp_path / "store")
    async with connect(stack.ws_url("/events", kinds="queued,started,finished")) as ws:
        job_id = stack.post(
            "/tasks", {"type": "backup", "source_id": source, "store_id": store}, expect=201
        )["job_id"]
        kinds = []
        while "finished" not in kinds:
            event = json.loads(await asyncio.wait_for(ws.recv(), 60))
            assert event["kind"] in ("queued", "started", "finished")
            if event["job_id"] == job_id:
                kinds.append(event["kind"])
    assert kinds == ["queued", "started", "finished"]


async def closed_with(url: str) -> tuple[int, str]:
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed) as e:
            await ws.recv()
    assert e.value.rcvd is not None
    return e.value.rcvd.code, e.value.rcvd.reason


async def test_bad_requests_close_with_a_reason(stack: Stack) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert await closed_with(stack.ws_url(f"/jobs/{unknown}/stream")) == (4404, "job not found")
    assert (await closed_with(stack.ws_url("/jobs/nope/stream")))[0] == 4404
    code, reason = await closed_with(stack.ws_url(f"/jobs/{unknown}/stream", after="x"))
    assert code == 4422 and "after" in reason
    code, reason = await closed_with(stack.ws_url(f"/jobs/{unknown}/stream", batch="yes"))
    assert code == 4422 and "batch" in reason
    code, reason = await closed_with(stack.ws_url("/events", kinds="queued,bogus"))
    assert code == 4422 and "bogus" in reason
    # What a close frame can carry of the reason, however long the kind asked for.
    for hostile in ("x" * 300, "\u00e9\u2028" * 200):
        code, reason = await closed_with(stack.ws_url("/events", kinds=hostile))
        assert code == 4422 and reason.startswith("kinds:") and len(reason.encode()) <= 123

    anonymous = stack.ws_url("/events").split("?")[0]
    for url in (anonymous, anonymous + "?token=wrong"):
        with pytest.raises(InvalidStatus):
            async with connect(url):
                pass
