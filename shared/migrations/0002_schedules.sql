-- Schedules: configuration, written by the api.

CREATE TABLE schedules (
    id                uuid PRIMARY KEY,
    task_id           uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    recurrence        text NOT NULL
                      CHECK (recurrence IN ('twice_daily', 'daily', 'weekly', 'every_30_days', 'custom')),
    -- The interval of every recurrence, named ones included.
    interval_minutes  integer NOT NULL CHECK (interval_minutes >= 1),
    start_at          timestamptz CHECK (date_trunc('minute', start_at) = start_at),
    journalised       boolean NOT NULL DEFAULT true,
    enabled           boolean NOT NULL DEFAULT true,
    -- Bumped by every change: a journal computed for an older revision is stale.
    revision          integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_task ON schedules (task_id);

-- The schedule journal, written only by the active scheduler.

CREATE TABLE schedule_journal (
    schedule_id       uuid PRIMARY KEY REFERENCES schedules (id) ON DELETE CASCADE,
    -- The schedule revision next_run_at was computed for.
    revision          integer NOT NULL,
    -- The control-plane session a non-journalised schedule's reference belongs to.
    session           text NOT NULL,
    next_run_at       timestamptz NOT NULL,
    -- The reference of the next run: the due instant of the last run on time,
    -- or the instant a catch-up run fired.
    last_run_at       timestamptz,
    -- The last firing, recorded before it is published (an outbox): a scheduler
    -- taking over publishes again a firing whose publication was not confirmed.
    last_due_at       timestamptz,
    last_job_id       uuid,
    last_skip_reason  text,
    published         boolean NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedule_journal_unpublished ON schedule_journal (schedule_id) WHERE NOT published;
