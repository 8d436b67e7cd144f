-- A backup task's excludes: gitignore patterns plakar leaves out (-ignore). Tasks saved
-- before, and other task types, have none.

ALTER TABLE tasks ADD COLUMN excludes text[] NOT NULL DEFAULT '{}';
