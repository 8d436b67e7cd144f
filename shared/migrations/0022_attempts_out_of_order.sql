-- A job's events may reach the history out of order: a batch fetched from a NATS server
-- that dies on the way is given again only after the ack wait, behind later events. An
-- attempt's finished event that comes before its started one makes the attempt's row;
-- its runner and start stay null until the started event comes.

ALTER TABLE job_attempts ALTER COLUMN runner DROP NOT NULL,
                         ALTER COLUMN started_at DROP NOT NULL;
