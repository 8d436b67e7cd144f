"""The pure rules that keep one bad job or one dead process from harming the rest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from deploy.supervisor import FIRST_RESTART_S, HEALTHY_S, MAX_RESTART_S, Restarts
from services.runner.lines import MAX_LINE_BYTES, LineSplitter, cut_marker
from shared import claims, job_events
from shared.events import decode_job_event, job_id_of
from shared.job_events import FLUSH_BYTES, JobEventSink

JOB = "6f1d2c3b-0000-4000-8000-000000000001"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_lines_are_split_across_chunks_and_cut_at_the_limit() -> None:
    split = LineSplitter(max_bytes=10)
    assert split.feed(b"one\ntw") == ["one"]
    assert split.feed(b"o\r\nthree") == ["two"]
    assert split.feed(b"-and-more-than-ten\n") == ["three-and-" + cut_marker(13)]
    assert split.feed(b"\xff\xfeok") == []
    assert split.finish() == ["\ufffd\ufffdok"]
    assert split.finish() == []


def test_a_huge_line_keeps_only_its_head() -> None:
    split = LineSplitter()
    lines = split.feed(b"x" * (5 << 20) + b"\nnext\n")
    assert lines == ["x" * MAX_LINE_BYTES + cut_marker((5 << 20) - MAX_LINE_BYTES), "next"]


def test_log_events_stay_under_the_payload_limit_whatever_the_lines() -> None:
    sent: list[bytes] = []

    async def publish(subject: str, payload: bytes, msg_id: str) -> None:
        sent.append(payload)

    async def run() -> None:
        sink = JobEventSink(JOB, publish, 1)
        # Control characters: JSON escapes each as six bytes.
        for _ in range(400):
            await sink.log("plakar", "\x01" * MAX_LINE_BYTES)
        await sink.close()

    asyncio.run(run())
    assert len(sent) > 1
    assert max(len(p) for p in sent) < FLUSH_BYTES + 6 * MAX_LINE_BYTES + 1024 < 1 << 20
    seqs = [line.seq for p in sent for line in decode_job_event(p).lines]  # type: ignore[union-attr]
    assert seqs == list(range(1, 401))


def test_restart_delays_double_and_start_over_after_a_healthy_minute() -> None:
    r = Restarts()
    r.started(0, restart=False)
    delays = []
    now = 1.0
    for _ in range(9):
        delays.append(r.exited(now))
        now = r.due_at or now
        r.started(now)
        now += 1  # dies a second after each start
    assert delays == [FIRST_RESTART_S * 2**i for i in range(6)] + [MAX_RESTART_S] * 3
    assert r.exited(now + HEALTHY_S) == FIRST_RESTART_S


def test_a_claim_that_is_not_one_is_unreadable() -> None:
    with pytest.raises(claims.Unreadable, match="claim cannot be read"):
        claims.decode(b"\x00garbage")
    with pytest.raises(claims.Unreadable):
        claims.decode(b'{"state": "sleeping"}')


def test_what_becomes_of_a_job_nats_gave_up_on() -> None:
    running = claims.Claim(state="running", attempt=2, runner="r1")
    assert claims.exhausted(running, True, 6) == claims.Wait()
    lost = claims.exhausted(running, False, 6)
    assert isinstance(lost, claims.Finish) and (lost.status, lost.attempt) == ("failed", 2)
    assert "delivered 6 times" in lost.error
    never = claims.exhausted(None, False, 6)
    assert isinstance(never, claims.Finish) and "no runner could take the job" in never.error
    assert claims.exhausted(claims.Claim(state="done", attempt=1), False, 6) == claims.Drop()
    queued_cancel = claims.Claim(state="cancelled", attempt=0, cancel_by="ann", cancel_at=T0)
    assert claims.exhausted(queued_cancel, False, 6) == claims.Drop()
    running_cancel = claims.Claim(state="cancelled", attempt=1, cancel_by="ann", cancel_at=T0)
    assert claims.exhausted(running_cancel, False, 6) == claims.Finish(
        1, "cancelled", "cancelled by ann"
    )


def test_the_job_id_of_an_unreadable_message() -> None:
    assert job_id_of(f'{{"job_id": "{JOB}", "task": 3}}'.encode()) == JOB
    assert job_id_of(b'{"job_id": "../../etc"}') is None
    assert job_id_of(b"\xff") is None


def test_a_job_keeps_at_most_its_share_of_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_events, "MAX_BYTES", 10_000)
    lines: list[str] = []

    async def publish(subject: str, payload: bytes, msg_id: str) -> None:
        lines.extend(line.line for line in decode_job_event(payload).lines)  # type: ignore[union-attr]

    async def run() -> None:
        sink = JobEventSink(JOB, publish, 1)
        for i in range(100):
            await sink.log("plakar", f"{i:04d}" + "x" * 996)
        await sink.close()

    asyncio.run(run())
    assert len(lines) == 12 and lines[:10] == [f"{i:04d}" + "x" * 996 for i in range(10)]
    assert lines[10] == "[output cut after 10 lines: a job keeps at most 200000 lines and 0 MiB]"
    assert lines[11] == "[90 more lines were not kept]"
