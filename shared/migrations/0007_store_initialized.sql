-- Whether a store is initialized, as the control plane last learned it from a runner (an
-- initialize, a test) and when; NULL: not known. A job that succeeded with the store
-- since then proves it too (the api reads both).

ALTER TABLE connectors ADD COLUMN initialized boolean, ADD COLUMN initialized_seen_at timestamptz;
