-- One row per NODE_ID: the lease a live process holds on that identity
-- (DESIGN.md, "Several nodes"). PostgreSQL only: on SQLite one process owns
-- the file and there is nothing to lease.
--
-- Every time here is PostgreSQL's own (clock_timestamp()), never a node's,
-- so nodes with skewed clocks agree on whether a lease has expired.
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY NOT NULL,
    -- New for every process start: a renewal or release by an older process
    -- with the same NODE_ID matches no row.
    incarnation UUID NOT NULL,
    -- Renewed every NODE_HEARTBEAT_MS to clock_timestamp() + NODE_LEASE_TTL_MS;
    -- another process may take the identity once this has passed.
    expires_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    -- The address the holder listens on, for operators and error messages.
    address TEXT
);
