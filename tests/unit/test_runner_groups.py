"""Runner groups and slots, pure: names, live groups, why a job waits, a task's group,
and the slot loop that takes a message only when a slot is free."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from services.api import cancel
from services.api.runner_groups import live_groups, waiting_reason
from services.api.validation import Invalid, check_task_group
from services.runner.slots import run_in_slots
from shared import subjects as s
from shared.claims import Claim
from shared.groups import DEFAULT_GROUP, group_of, group_problem
from shared.models import Connector, RunnerGroup, ServiceInfo, TaskCreate

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("name", ["default", "b", "host-a", "rack_2", "0", "a" * 32])
def test_group_names_that_are_subject_tokens(name: str) -> None:
    assert group_problem(name) is None
    assert s.job_due(name) == f"plakar.jobs.due.{name}"
    assert s.runners_durable(name) == f"runners-{name}"


@pytest.mark.parametrize("name", ["", "B", "-a", "a.b", "a*", "a>", "a b", "a" * 33, "é"])
def test_group_names_that_are_not(name: str) -> None:
    assert group_problem(name) is not None


def test_no_group_is_the_default_group() -> None:
    assert group_of(None) == DEFAULT_GROUP == "default"
    assert s.job_due(DEFAULT_GROUP) == s.JOB_DUE
    assert s.rpc_connector(DEFAULT_GROUP) == s.RPC_CONNECTOR


def runner(group: str | None, slots: int, jobs: int) -> ServiceInfo:
    return ServiceInfo(
        kind="runner",
        id=f"r{id(object())}",
        host="h",
        pid=1,
        started_at=NOW,
        jobs=[f"j{i}" for i in range(jobs)],
        group=group,
        slots=slots,
    )


def test_live_groups_add_up_their_runners() -> None:
    api = ServiceInfo(kind="api", id="a", host="h", pid=1, started_at=NOW)
    live = live_groups([runner("default", 2, 1), runner(None, 1, 0), runner("b", 4, 4), api])
    assert live == {
        "default": RunnerGroup(name="default", runners=2, slots=3, running=1),
        "b": RunnerGroup(name="b", runners=1, slots=4, running=4),
    }


def test_why_a_queued_job_waits() -> None:
    live = live_groups([runner("default", 2, 1), runner("b", 2, 2), runner("b", 1, 1)])
    assert waiting_reason("default", live) is None
    assert waiting_reason("b", live) == "its 2 runners are busy: 3 of 3 jobs at once (group b)"
    assert waiting_reason("c", live) == "no runner of group c is live"


def connector(cid: str, group: str | None) -> Connector:
    role: Any = "store" if cid == "st" else "source"
    return Connector(id=cid, name=cid, role=role, location="/x", created_at=NOW, runner_group=group)


def backup(group: str | None) -> TaskCreate:
    return TaskCreate(type="backup", source_id="src", store_id="st", runner_group=group)


def test_a_task_runs_where_its_connectors_can_be_reached() -> None:
    anywhere = {"src": connector("src", None), "st": connector("st", None)}
    pinned = {"src": connector("src", "a"), "st": connector("st", None)}
    assert check_task_group(backup(None), anywhere) is None
    assert check_task_group(backup("b"), anywhere) == "b"
    assert check_task_group(backup(None), pinned) == "a"
    assert check_task_group(backup("a"), pinned) == "a"
    with pytest.raises(Invalid) as refused:
        check_task_group(backup("b"), pinned)
    assert refused.value.field == "runner_group"
    split = {"src": connector("src", "a"), "st": connector("st", "b")}
    with pytest.raises(Invalid) as apart:
        check_task_group(backup(None), split)
    assert apart.value.field == "store_id"
    with pytest.raises(Invalid):
        check_task_group(backup("Not valid"), anywhere)


class FakeMsg:
    def __init__(self, n: int) -> None:
        self.n = n
        self.naked = False

    async def nak(self) -> None:
        self.naked = True


def test_slots_take_a_message_only_when_one_is_free_and_wait_for_them_on_stop() -> None:
    async def scenario() -> tuple[int, list[int], bool]:
        stop = asyncio.Event()
        queue = list(range(7))
        running: set[int] = set()
        most = 0
        handled: list[int] = []
        release, full, last_started = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def fetch() -> list[Any]:
            assert len(running) < 3, "fetched while every slot was busy"
            if not queue:
                await asyncio.sleep(0.01)
                return []
            return [FakeMsg(queue.pop(0))]

        async def handle(msg: Any) -> None:
            nonlocal most
            running.add(msg.n)
            most = max(most, len(running))
            if len(running) == 3:
                full.set()
            if msg.n == 6:
                last_started.set()
            if msg.n >= 5:  # the last ones run until the stop
                await stop.wait()
            else:
                await release.wait()
            running.discard(msg.n)
            handled.append(msg.n)

        loop = asyncio.create_task(run_in_slots(3, fetch, handle, stop))
        await full.wait()
        await asyncio.sleep(0.05)  # time to fetch a fourth, which `fetch` would refuse
        assert sorted(running) == [0, 1, 2]  # three slots, three jobs
        release.set()
        await last_started.wait()
        stop.set()  # 5 and 6 run until now: the loop waits for them
        await loop
        return most, handled, not running

    most, handled, all_done = asyncio.run(scenario())
    assert most == 3
    assert sorted(handled) == list(range(7))
    assert all_done


def test_a_message_beyond_the_free_slots_goes_back_at_once() -> None:
    async def scenario() -> tuple[list[int], list[bool]]:
        stop = asyncio.Event()
        msgs = [FakeMsg(1), FakeMsg(2)]
        given = False

        async def fetch() -> list[Any]:
            nonlocal given
            if not given:
                given = True
                return list(msgs)  # two where one slot was free
            await asyncio.sleep(0.01)
            return []

        started: list[int] = []

        async def handle(msg: Any) -> None:
            started.append(msg.n)
            await stop.wait()

        loop = asyncio.create_task(run_in_slots(1, fetch, handle, stop))
        await asyncio.sleep(0.05)
        stop.set()
        await loop
        return started, [m.naked for m in msgs]

    started, naked = asyncio.run(scenario())
    assert started == [1]
    assert naked == [False, True]


def test_a_job_whose_runner_was_lost_is_cancelled_at_once() -> None:
    held = Claim(state="running", attempt=1, runner="r", runner_since=NOW)
    assert isinstance(cancel.plan("running", held, holder_alive=True), cancel.StopRunning)
    # Its group may have no runner left to end it: the api does.
    assert isinstance(cancel.plan("running", held, holder_alive=False), cancel.EndQueued)
