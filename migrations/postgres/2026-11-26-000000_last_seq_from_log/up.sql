-- The log's head is read from session_events (max seq), not kept on the
-- row: updating the row for every batch cost most of a commit (see
-- docs/benchmarks.md), and most batches change nothing else on it.
ALTER TABLE interviews DROP COLUMN last_seq;
