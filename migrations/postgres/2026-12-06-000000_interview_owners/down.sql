ALTER TABLE session_events DROP COLUMN epoch;
DROP TABLE interview_owners;
