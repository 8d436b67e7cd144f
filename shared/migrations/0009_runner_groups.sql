-- Runner groups ("run on"): a task's jobs and a connector's actions are served by the
-- runners of its group; NULL: the default group (what every row saved before means).
-- A job keeps the group it was queued for, to say why it waits.

ALTER TABLE tasks ADD COLUMN runner_group text
    CHECK (runner_group ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
ALTER TABLE connectors ADD COLUMN runner_group text
    CHECK (runner_group ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
ALTER TABLE jobs ADD COLUMN runner_group text;
