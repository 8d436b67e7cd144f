"""Retries of failed jobs by their task's policy: once the delay after a failure has
passed, the active scheduler queues the job that retries it (shared/retries.py), unless
a later run of the task came first. What is retried is read from the history each time
(nothing to journal): the retry's id is derived from the failed job, so publishing it
again after a crash or a failover is harmless."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from services.scheduler import journal
from services.scheduler.clock import Clock
from services.scheduler.watch import Watch
from shared.db import Pool
from shared.dispatch import Message, Publish, Retry, job_messages
from shared.retries import LOOKBACK, retry_job_id

log = logging.getLogger("plakar_cp.scheduler")

# New failures are looked for this often (a retry's delay is a minute at least, so none
# is late); a retry due sooner is looked for when due.
LOOK_EVERY = timedelta(seconds=10)
# Retries published are not published again this long, while the history records them.
SENT_KEPT = timedelta(seconds=300)
# Retries that could not be published are tried again this much later.
AGAIN_AFTER = timedelta(seconds=2)


class Retrier(Watch):
    """Queues the retries of failed jobs whose delay has passed."""

    def __init__(self, pool: Pool, clock: Clock, publish: Publish) -> None:
        super().__init__(pool, clock, publish)
        # Failed jobs whose retry this scheduler published, and when.
        self._sent: dict[str, datetime] = {}

    async def look(self) -> None:
        """Retry the failures whose delay has passed; look again when the next is due."""
        now = self.clock.now()
        self._sent = {job: at for job, at in self._sent.items() if now - at < SENT_KEPT}
        failures = await journal.failures_to_retry(self.pool, now - LOOKBACK)
        due = [f for f in failures if f.retry_at <= now and f.job_id not in self._sent]
        later = [f.retry_at for f in failures if f.retry_at > now]
        self.look_at = min([now + LOOK_EVERY, *later])
        if not due:
            return
        states = await journal.task_states(self.pool, sorted({f.task_id for f in due}))
        queued: list[Message] = []
        dues: list[Message] = []
        for f in due:
            if (state := states.get(f.task_id)) is None:
                continue  # deleted meanwhile
            retry = Retry(f.job_id, f.retries_left - 1)
            message, job_due = job_messages(
                state.task, "retry", retry_job_id(f.job_id), due_at=f.retry_at, retry=retry
            )
            queued.append(message)
            dues.append(job_due)
        try:
            # The queued events stored before the job-dues, as for every job.
            await self.publish(queued)
            await self.publish(dues)
        except Exception as e:
            log.warning("publishing retries failed (%s); again shortly", e)
            self.look_at = now + AGAIN_AFTER
            return
        self._sent.update(dict.fromkeys((f.job_id for f in due), now))
        log.info("queued %d retries of failed jobs", len(queued))
