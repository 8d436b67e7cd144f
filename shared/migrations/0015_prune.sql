-- Prune tasks: a store's old snapshots deleted by a retention policy (a JSON object of
-- counts, shared/retention.py). A prune job records the full ids of the snapshots it
-- kept and deleted; other jobs, and prunes that never got a plan, have NULL.

ALTER TABLE tasks DROP CONSTRAINT tasks_type_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_type_check
    CHECK (type IN ('backup', 'restore', 'sync', 'check', 'prune'));
ALTER TABLE tasks ADD COLUMN retention jsonb,
    ADD CONSTRAINT tasks_prune_retention CHECK ((type = 'prune') = (retention IS NOT NULL));

ALTER TABLE jobs ADD COLUMN kept_snapshots text[], ADD COLUMN deleted_snapshots text[];
