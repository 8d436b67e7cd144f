-- Every filter of the job history, and every combination of them, walks an index in
-- the list's order (newest first), so a page stays a short index range on a million
-- jobs even when the filters match few jobs or none: a task's jobs by status, a
-- connector's by status or by task. job_connectors carries the job's task and status
-- for that (the history keeps its status current).

CREATE INDEX jobs_task_status_newest ON jobs (task_id, status, queued_at DESC, id DESC);

ALTER TABLE job_connectors ADD COLUMN task_id uuid, ADD COLUMN status text;
UPDATE job_connectors c SET task_id = j.task_id, status = j.status FROM jobs j WHERE j.id = c.job_id;
DELETE FROM job_connectors WHERE status IS NULL;
ALTER TABLE job_connectors ALTER COLUMN task_id SET NOT NULL, ALTER COLUMN status SET NOT NULL;
CREATE INDEX job_connectors_status ON job_connectors (connector_id, status, queued_at DESC, job_id DESC);
CREATE INDEX job_connectors_task ON job_connectors (connector_id, task_id, queued_at DESC, job_id DESC);
