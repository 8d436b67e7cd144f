"""The runner groups' work queues on the jobs stream: one durable consumer per group
(`runners-<group>`, filtered on `plakar.jobs.due.<group>`), and the move from the single
queue of earlier versions (`runners` on `plakar.jobs.due`)."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from shared import subjects as s
from shared.groups import DEFAULT_GROUP, group_problem
from shared.settings import Settings

log = logging.getLogger(__name__)

# The queue of earlier versions: every job on one subject, one consumer for all runners.
LEGACY_JOB_DUE = "plakar.jobs.due"
LEGACY_DURABLE = s.RUNNERS_DURABLE
_DURABLE_PREFIX = f"{s.RUNNERS_DURABLE}-"


def runners_consumer(settings: Settings, group: str) -> js_api.ConsumerConfig:
    """The durable consumer the runners of `group` share."""
    return js_api.ConsumerConfig(
        durable_name=s.runners_durable(group),
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        # Past this, NATS gives up on the message and says so on the advisory that
        # DEAD_JOBS keeps; a runner then ends the job (runner/dead_letters.py).
        max_deliver=settings.max_deliveries,
        max_ack_pending=1000,
        filter_subject=s.job_due(group),
    )


async def ensure_group(js: JetStreamContext, settings: Settings, group: str) -> None:
    """Create the group's consumer unless it exists (a runner of a new group, at start);
    one that exists keeps what `plakar-cp migrate` set."""
    try:
        await js.consumer_info(s.JOBS_STREAM, s.runners_durable(group))
    except NotFoundError:
        await js.add_consumer(s.JOBS_STREAM, runners_consumer(settings, group))
        log.info("created the work queue of runner group %s", group)


async def drop_legacy_consumer(js: JetStreamContext) -> None:
    """Delete the earlier single consumer: a work-queue stream takes no consumers whose
    subjects overlap, and the groups' consumers replace it. Messages stay."""
    try:
        await js.delete_consumer(s.JOBS_STREAM, LEGACY_DURABLE)
        log.info("deleted the single work queue of earlier versions")
    except NotFoundError:
        pass


async def provision_groups(js: JetStreamContext, settings: Settings) -> None:
    """The default group's consumer, and every group's consumer as `settings` say
    (ack wait, deliveries); then the earlier queue's messages moved to the default group."""
    groups = {DEFAULT_GROUP}
    for info in await js.consumers_info(s.JOBS_STREAM):
        name = info.name or ""
        group = name.removeprefix(_DURABLE_PREFIX)
        if name.startswith(_DURABLE_PREFIX) and group_problem(group) is None:
            groups.add(group)
    for group in sorted(groups):
        await js.add_consumer(s.JOBS_STREAM, runners_consumer(settings, group))
    await move_legacy_messages(js)


async def move_legacy_messages(js: JetStreamContext) -> int:
    """Put the jobs still queued on the earlier subject on the default group's subject
    (their tasks name no group); returns how many. A job moved twice (a migration
    interrupted and run again) still runs once: its claim decides."""
    moved = 0
    seq = 1
    while True:
        try:
            msg = await js.get_msg(s.JOBS_STREAM, seq, subject=LEGACY_JOB_DUE, next=True)
        except NotFoundError:
            break
        assert msg.seq is not None
        await js.publish(
            s.job_due(DEFAULT_GROUP),
            msg.data or b"",
            headers={"Nats-Msg-Id": f"moved:{msg.seq}"},
            timeout=5,
        )
        await js.delete_msg(s.JOBS_STREAM, msg.seq)
        moved += 1
        seq = msg.seq + 1
    if moved:
        log.info("moved %d queued jobs to the default runner group", moved)
    return moved
