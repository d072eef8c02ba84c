-- The same schema as migrations/sqlite, in types both backends map alike:
-- ids TEXT, times TIMESTAMP (UTC, no zone), JSON as TEXT, seq BIGINT.
CREATE TABLE interviews (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL,
    title TEXT NOT NULL,
    candidate_name TEXT NOT NULL,
    candidate_id TEXT NOT NULL,
    questions TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    progress TEXT NOT NULL,
    trust_score INTEGER NOT NULL DEFAULT 100,
    summary TEXT,
    last_seq BIGINT NOT NULL DEFAULT 0,
    -- When the current status began (NULL: since its creation); the expiry
    -- sweep reads coalesce(status_since, created_at).
    status_since TIMESTAMP
);
CREATE INDEX interviews_org_created ON interviews (org_id, created_at, id);
CREATE INDEX interviews_created ON interviews (created_at, id);
CREATE INDEX interviews_status ON interviews (status);
CREATE INDEX interviews_status_since ON interviews (status, status_since);

-- The log. (interview_id, seq) is unique: a seq is never reused or overwritten.
CREATE TABLE session_events (
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    audience TEXT NOT NULL,
    ts TIMESTAMP NOT NULL,
    PRIMARY KEY (interview_id, seq)
);

-- Read models, projections of the log written in the same transaction.
CREATE TABLE transcript_entries (
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    question_id TEXT,
    ts TIMESTAMP NOT NULL,
    PRIMARY KEY (interview_id, seq)
);

CREATE TABLE proctor_events (
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    ts TIMESTAMP NOT NULL,
    PRIMARY KEY (interview_id, seq)
);

CREATE TABLE evaluations (
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    question_id TEXT NOT NULL,
    score INTEGER NOT NULL,
    next_action TEXT NOT NULL,
    source TEXT NOT NULL,
    data TEXT NOT NULL,
    ts TIMESTAMP NOT NULL,
    PRIMARY KEY (interview_id, seq)
);

CREATE TABLE answer_audio (
    id BIGSERIAL PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    ts TIMESTAMP NOT NULL
);
CREATE INDEX answer_audio_interview ON answer_audio (interview_id, question_id);
