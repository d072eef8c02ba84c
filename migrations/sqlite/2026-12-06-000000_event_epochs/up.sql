-- The epoch each event was written at, as on PostgreSQL. One process owns
-- a SQLite file, so there is no owner table and every event stays at the
-- embedded store's constant epoch (see src/store/owners.rs).
ALTER TABLE session_events ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
