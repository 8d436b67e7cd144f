-- Jobs by connector, newest first. An array column cannot be walked in that order: a
-- connector with few or old jobs made its list scan the whole jobs table. The history
-- keeps one row per (connector, job), so every page is a short index range.

CREATE TABLE job_connectors (
    connector_id  uuid NOT NULL,
    queued_at     timestamptz NOT NULL,
    job_id        uuid NOT NULL,
    PRIMARY KEY (connector_id, queued_at, job_id)
);

INSERT INTO job_connectors (connector_id, queued_at, job_id)
SELECT DISTINCT unnest(connector_ids), queued_at, id FROM jobs;
