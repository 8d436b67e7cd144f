-- What a restore task's chosen snapshot holds at its path ({root, kind}), learnt from the
-- store when the task is saved, so that its jobs open the store once. Tasks saved before
-- have none: their jobs learn it from the store, as they did.

ALTER TABLE tasks ADD COLUMN restore_point jsonb;
