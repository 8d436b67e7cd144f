-- A restore task may restore one folder of the snapshot, and says where its files go:
-- into a new folder of the destination (new_folder) or over what is there (overwrite).
-- Restore tasks saved before kept the destination as it was; they keep doing so, now
-- saying it (overwrite). Other task types have neither (NULL).

ALTER TABLE tasks ADD COLUMN restore_path text;
ALTER TABLE tasks ADD COLUMN restore_mode text
    CHECK (restore_mode IN ('new_folder', 'overwrite'));
UPDATE tasks SET restore_mode = 'overwrite' WHERE type = 'restore';
