-- Retries. A task's policy: how many times a failed run is tried again, each how many
-- seconds after the failure (both, or neither). A job: the job it retries, the retries
-- it may still have if it fails (its task's attempts when it was queued, one fewer down
-- a chain), and the job that retried it.

ALTER TABLE tasks ADD COLUMN retry_attempts int, ADD COLUMN retry_delay_s int,
    ADD CONSTRAINT tasks_retry_policy CHECK ((retry_attempts IS NULL) = (retry_delay_s IS NULL));

ALTER TABLE jobs ADD COLUMN retry_of uuid, ADD COLUMN retries_left int NOT NULL DEFAULT 0,
    ADD COLUMN retried_by uuid;

-- The failures the scheduler may have to retry: few, whatever the size of the history.
CREATE INDEX jobs_to_retry ON jobs (finished_at) WHERE status = 'failed' AND retries_left > 0;
