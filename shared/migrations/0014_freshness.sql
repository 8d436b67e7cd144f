-- Freshness: how recent a task's or a connector's last successful job must be (seconds;
-- NULL: no rule), and what the scheduler last told of each (the freshness events it
-- published), so that it tells each change once.

ALTER TABLE tasks ADD COLUMN freshness_s int;
ALTER TABLE connectors ADD COLUMN freshness_s int;

CREATE TABLE freshness_journal (
    watched     text NOT NULL CHECK (watched IN ('task', 'connector')),
    id          uuid NOT NULL,
    state       text NOT NULL CHECK (state IN ('fresh', 'stale')),
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (watched, id)
);

GRANT SELECT ON connectors, job_connectors TO plakar_scheduler;
GRANT SELECT, INSERT, UPDATE, DELETE ON freshness_journal TO plakar_scheduler;
GRANT SELECT ON freshness_journal TO plakar_api;
