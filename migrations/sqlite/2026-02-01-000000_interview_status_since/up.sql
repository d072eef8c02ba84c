-- When the interview's current status began (NULL: since its creation).
-- The expiry sweep reads coalesce(status_since, created_at).
ALTER TABLE interviews ADD COLUMN status_since TIMESTAMP;
CREATE INDEX interviews_status_since ON interviews (status, status_since);
