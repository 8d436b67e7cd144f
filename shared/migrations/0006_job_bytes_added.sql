-- What a job wrote to its store, as plakar's result line says (`out:`): for a backup,
-- the bytes the store grew by. Older jobs and jobs plakar printed no result for: NULL.

ALTER TABLE jobs ADD COLUMN bytes_added bigint;
