DROP INDEX interviews_status_since;
ALTER TABLE interviews DROP COLUMN status_since;
