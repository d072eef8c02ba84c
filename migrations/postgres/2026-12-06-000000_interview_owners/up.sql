-- Who owns each interview, fenced by an epoch (DESIGN.md, "Several nodes").
-- A node may write an interview's log only at the epoch it acquired: the
-- commit's transaction reads this row FOR SHARE and rolls back on any other
-- epoch, so a takeover (which updates the row) waits for commits in flight
-- and every later commit of the old owner fails.
CREATE TABLE interview_owners (
    interview_id TEXT PRIMARY KEY NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    -- The owner's node lease (nodes.node_id, nodes.incarnation): the
    -- interview may be taken over once that lease has expired.
    node_id TEXT NOT NULL,
    incarnation UUID NOT NULL,
    -- 1 at the first acquire, one more at every change of owner.
    epoch BIGINT NOT NULL,
    -- Set by the owner when it lets go (passivation, drain): taken at once.
    released BOOLEAN NOT NULL DEFAULT false,
    acquired_at TIMESTAMPTZ
);

-- The epoch each event was written at; 0 for events written before
-- ownership existed (and by an embedded single process).
ALTER TABLE session_events ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
