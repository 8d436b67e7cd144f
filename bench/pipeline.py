"""Output pipeline: lines from the runner's publisher (the real `JobEventSink`) through
NATS to PostgreSQL (history) and to a WebSocket client of the api, against a naive
row-by-row INSERT projection and plakar's own output rate, measured in the same run.

Lines carry the monotonic time they were written at (`perf_counter_ns`: CLOCK_MONOTONIC,
one clock for every process of the host); the WebSocket client runs in the benchmark's
process, so line-to-client latency is exact. Paced lines are written by a child, one
write each as plakar prints, and read as the runner reads plakar's (`process.run`): their
latency includes the runner's pause between reads. The same lines read by a plain NATS
subscriber show what the api adds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from websockets.asyncio.client import connect

from bench.common import Row, percentile
from deploy.embedded import nats_url
from services.runner import process
from shared import bus
from shared import subjects as s
from shared.db import Pool, create_pool
from shared.events import (
    JobFinished,
    JobQueued,
    JobStarted,
    decode_job_event,
    encode,
    job_event_subject,
)
from shared.events import utcnow as now
from shared.ids import new_id
from shared.job_events import JobEventSink
from tests.support.stack import Stack, many_files, running_stack, stack_dir

LINES = int(os.environ.get("BENCH_PIPELINE_LINES", "100000"))
PACED_LINES, PACED_RATE = 3000, 1000.0  # about plakar's pace on small files
NAIVE_LINES = 5000
# About the length of plakar's `<id>: OK ✓ /path` lines.
PAD = "x" * 60


class Receiver:
    """When each line reached a WebSocket client of the api that reads a message per line,
    one that reads batches (`?batch=1`, as the web UI does), a NATS subscriber and a
    JetStream ordered consumer (how the api reads them)."""

    def __init__(self) -> None:
        self.ws_ns: list[tuple[int, int]] = []  # (logged at, received at)
        self.batched_ns: list[tuple[int, int]] = []
        self.nats_ns: list[tuple[int, int]] = []
        self.stream_ns: list[tuple[int, int]] = []
        self.last_ws_ns = 0

    async def websocket(self, url: str, ready: asyncio.Event) -> None:
        async with connect(url, max_size=None) as ws:
            ready.set()
            async for raw in ws:
                got = time.perf_counter_ns()
                m = json.loads(raw)
                if m["type"] == "log":
                    self.ws_ns.append((int(m["line"].split(" ", 1)[0]), got))
                elif m["type"] == "lines":
                    self.batched_ns += [
                        (int(ln["line"].split(" ", 1)[0]), got) for ln in m["lines"]
                    ]
                else:
                    continue
                self.last_ws_ns = got

    async def on_nats(self, msg: Msg) -> None:
        self.nats_ns += _logged(msg)

    async def on_stream(self, msg: Msg) -> None:
        self.stream_ns += _logged(msg)


def _logged(msg: Msg) -> list[tuple[int, int]]:
    """(logged at, received now) of each line of a log event."""
    got = time.perf_counter_ns()
    lines = getattr(decode_job_event(msg.data), "lines", [])
    return [(int(ln.line.split(" ", 1)[0]), got) for ln in lines]


def latencies_ms(pairs: list[tuple[int, int]]) -> list[float]:
    return [(got - sent) / 1e6 for sent, got in pairs]


async def _queued_job(api: JetStreamContext, pool: Pool) -> str:
    """A job queued as the api queues one, as its user (runners may not)."""
    job_id = new_id()
    queued = JobQueued(
        job_id=job_id, seq=1, task_id=new_id(), trigger="manual", type="backup", due_at=now()
    )
    await bus.publish(api, job_event_subject(queued), encode(queued), queued.event_id)
    await _poll(pool, "SELECT 1 FROM jobs WHERE id = $1", job_id)
    return job_id


async def _poll(pool: Pool, query: str, job_id: str) -> None:
    """Until the query finds a value: the history tells nobody when it has written,
    so looking every 2 ms is the measurement."""
    while await pool.fetchval(query, job_id) is None:  # noqa: ASYNC110
        await asyncio.sleep(0.002)


async def _one_job(
    stack: Stack,
    js: JetStreamContext,
    api: JetStreamContext,
    reader: Client,
    pool: Pool,
    lines: int,
    rate: float | None,
    batches: tuple[bool, ...],
) -> tuple[Receiver, float, float, float]:
    """Publish `lines` lines (paced at `rate` per second if given) as one job, read by
    WebSocket clients that read batches or a message per line (`batches`: the `batch`
    of each); returns the receiver, then seconds to the clients' last line, to the job
    stored, and from the end to the job stored."""
    job_id = await _queued_job(api, pool)
    receiver = Receiver()
    subject = s.job_event(job_id, "log")
    sub = await reader.subscribe(subject, cb=receiver.on_nats)
    ordered = await reader.jetstream().subscribe(
        subject, ordered_consumer=True, cb=receiver.on_stream
    )
    path = f"/jobs/{job_id}/stream"
    urls = [stack.ws_url(path, batch=int(batch)) for batch in batches]
    ready = [asyncio.Event() for _ in urls]
    clients = [
        asyncio.create_task(receiver.websocket(u, r)) for u, r in zip(urls, ready, strict=True)
    ]
    for r in ready:
        await r.wait()
    started, ended = await _publish(js, job_id, lines, rate)
    await _poll(pool, "SELECT finished_at FROM jobs WHERE id = $1", job_id)
    stored = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*clients), 120)
    await sub.unsubscribe()
    await ordered.unsubscribe()
    count = await pool.fetchval("SELECT count(*) FROM job_output WHERE job_id = $1", job_id)
    got = (count, len(receiver.batched_ns), len(receiver.ws_ns))
    want = (lines, lines if True in batches else 0, lines if False in batches else 0)
    assert got == want, (want, got)
    to_client = receiver.last_ws_ns / 1e9 - started
    return receiver, to_client, stored - started, stored - ended


# Writes the benchmark's lines as plakar does, one write each: `<perf_counter_ns> PAD i`.
_WRITER = """
import os, sys, time
lines, rate, pad = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
begun = time.perf_counter()
for i in range(lines):
    os.write(1, f"{time.perf_counter_ns()} {pad} {i}\\n".encode())
    time.sleep(max(0.0, begun + (i + 1) / rate - time.perf_counter()))
"""


async def _publish(
    js: JetStreamContext, job_id: str, lines: int, rate: float | None
) -> tuple[float, float]:
    """The runner's part, its `JobEventSink` publishing `lines` lines; when the first line
    was written and when the last event was acknowledged.

    Paced at `rate` lines a second (as plakar prints), a child writes them and the
    runner's own reading (`process.run`, with its pause between reads) hands them over.
    At full speed the lines are logged as fast as the publisher takes them: a child
    writing faster than the pipeline carries would measure how long lines queue in its
    pipe, and the readers of this process, decoding every line, rather than the pipeline.
    """
    sink = JobEventSink(job_id, partial(bus.publish, js), first_seq=2)
    started = JobStarted(
        job_id=job_id, seq=sink.next_seq(), attempt=1, runner="bench", concurrency=1
    )
    await sink.emit(started)
    begun = time.perf_counter()
    if rate is None:
        for i in range(lines):
            await sink.log("plakar", f"{time.perf_counter_ns()} {PAD} {i}")
    else:
        argv = [sys.executable, "-c", _WRITER, str(lines), str(rate), PAD]
        code = await process.run(argv, partial(sink.log_lines, "plakar"))
        assert code == 0, code
    finished = JobFinished(
        job_id=job_id, seq=sink.next_seq(), status="succeeded", attempt=1, exit_code=0
    )
    await sink.emit(finished)
    await sink.close()
    return begun, time.perf_counter()


async def _naive_inserts(pool: Pool) -> float:
    """Lines per second of a projection that inserts and commits one line at a time."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE TEMP TABLE naive (LIKE job_output INCLUDING ALL)")
        job_id = new_id()
        started = time.perf_counter()
        for seq in range(1, NAIVE_LINES + 1):
            await conn.execute(
                "INSERT INTO naive (job_id, seq, ts, stream, line) VALUES ($1, $2, $3, $4, $5)",
                job_id,
                seq,
                now(),
                "plakar",
                f"{seq} {PAD}",
            )
        return NAIVE_LINES / (time.perf_counter() - started)


def _plakar_rate(root: Path) -> float:
    """Lines per second plakar itself prints backing up small files (stdout to a file)."""
    plakar = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "plakar")
    src = many_files(root / "plakar-src", 5000)
    base = [plakar, "-configdir", str(root / "pcfg"), "-cachedir", str(root / "pcache")]
    subprocess.run([*base, "-disable-security-check"], check=True, capture_output=True)
    subprocess.run([*base, "at", str(root / "pstore"), "create", "-plaintext"], check=True)
    with open(root / "plakar.out", "wb") as out:
        started = time.perf_counter()
        subprocess.run(
            [*base, "at", str(root / "pstore"), "backup", str(src)], stdout=out, check=True
        )
        took = time.perf_counter() - started
    return len((root / "plakar.out").read_bytes().splitlines()) / took


def _user_url(stack: Stack, user: str) -> str:
    """A service's NATS user, or the URL as is without users."""
    url = urlsplit(stack.endpoints["events_nats_url"])
    if not url.username:
        return url.geturl()
    creds = json.loads((stack.data_dir / "credentials.json").read_text())
    return nats_url(str(url.hostname), url.port or 4222, user, creds[user])


async def _measure(stack: Stack, root: Path) -> list[Row]:
    # The lines go as the runner publishes them, as its user.
    nc = await nats.connect(_user_url(stack, "runner"), inbox_prefix=s.RUNNER_INBOX_PREFIX)
    queuer = await nats.connect(_user_url(stack, "api"))
    reader = await nats.connect(stack.endpoints["events_nats_url"])
    pool = await create_pool(stack.database_url(), max_size=2)
    try:
        js, api = nc.jetstream(), queuer.jetstream()
        # At full speed each kind of client alone: they share the api's time otherwise.
        fast, to_client, to_db, after_end = await _one_job(
            stack, js, api, reader, pool, LINES, None, (True,)
        )
        fast_per_line, *_ = await _one_job(stack, js, api, reader, pool, LINES, None, (False,))
        paced, *_ = await _one_job(
            stack, js, api, reader, pool, PACED_LINES, PACED_RATE, (True, False)
        )
        naive = await _naive_inserts(pool)
    finally:
        await pool.close()
        await reader.close()
        await queuer.close()
        await nc.close()
    plakar = await asyncio.to_thread(_plakar_rate, root)
    lines_s = "lines/s"
    return [
        Row(
            f"lines/s into PostgreSQL ({LINES} lines)",
            LINES / to_db,
            "row-by-row INSERT",
            naive,
            lines_s,
        ),
        Row(
            "lines/s to a WebSocket client",
            LINES / to_client,
            "plakar's own output",
            plakar,
            lines_s,
        ),
        Row("full output stored after the job ends", after_end * 1000, "", None, "ms"),
        *_latency_rows(f"{PACED_RATE:.0f} lines/s", paced),
        *_latency_rows("full speed", fast),
        *_latency_rows("full speed", fast_per_line, hop=False),
    ]


def _latency_rows(pace: str, r: Receiver, hop: bool = True) -> list[Row]:
    """p50 and p99 of line -> the clients measured, and of the hop before the api
    (JetStream) if `hop`, each beside the NATS subscriber's."""
    peer = latencies_ms(r.nats_ns)
    clients = (
        ("JetStream consumer", r.stream_ns if hop else []),
        ("client", r.ws_ns),
        ("UI client (batch=1)", r.batched_ns),
    )
    return [
        Row(
            f"line -> {client} p{p}, {pace}",
            percentile(latencies_ms(pairs), p),
            "NATS subscriber",
            percentile(peer, p),
            "ms",
        )
        for client, pairs in clients
        if pairs
        for p in (50, 99)
    ]


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="pcp-bench-") as tmp:
        root = Path(tmp)
        with running_stack(stack_dir("bench-pipeline"), runners=1) as stack:
            return asyncio.run(_measure(stack, root))
