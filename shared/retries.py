"""Retries of failed jobs (pure): a job is retried at most once, by a job whose id is
derived from it, so that the scheduler's retry and an operator's, or two of either, are
one job (NATS drops a repeated message id, the history keeps one row per job id, the
runners one claim per job)."""

from __future__ import annotations

from datetime import timedelta

from shared.ids import derived_id

# Attempts a policy may give, and the delay before each: retries are for failures that
# pass (a store offline a while); a longer wait is a schedule's business.
MAX_ATTEMPTS = 10
MIN_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(days=1)
# Failures older than this are not retried any more (a control plane down that long).
LOOKBACK = MAX_DELAY + timedelta(days=1)


def retry_job_id(job_id: str) -> str:
    """The id of the one job that retries `job_id`."""
    return derived_id(f"retry:{job_id.lower()}")
