-- Supervisors and admins in the browser (issue 11): export jobs kept in the
-- database, logins' last use, and how an officer settled an exception.

-- One background export. `heartbeat_at` is touched while the job runs; a
-- running job whose heartbeat stopped (the process died) is shown as failed
-- and can be started again. `manifest` is the finished export's manifest
-- (JSON); `file_path` where its file lies.
CREATE TABLE export_jobs (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT        NOT NULL CHECK (kind IN ('audit', 'cases', 'summary')),
    format        TEXT        NOT NULL CHECK (format IN ('csv', 'xlsx')),
    from_date     DATE        NOT NULL,
    to_date       DATE        NOT NULL,
    branch        TEXT,
    actor         TEXT        NOT NULL,
    state         TEXT        NOT NULL CHECK (state IN ('running', 'finished', 'failed')),
    rows_written  BIGINT      NOT NULL DEFAULT 0,
    rows_expected BIGINT,
    file_path     TEXT,
    manifest      TEXT,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    heartbeat_at  TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX export_jobs_created ON export_jobs (created_at);
CREATE INDEX export_jobs_running ON export_jobs (heartbeat_at) WHERE state = 'running';

ALTER TABLE users ADD COLUMN last_login_at TIMESTAMPTZ;

-- One active token per name, so `token revoke NAME` names one token.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Unmatched inbound messages an officer has dealt with: linked to an
-- employer, marked spam or ignored.
ALTER TABLE inbound_messages ADD COLUMN resolution TEXT;
ALTER TABLE inbound_messages ADD COLUMN resolved_at TIMESTAMPTZ;
ALTER TABLE inbound_messages ADD COLUMN resolved_by TEXT;
ALTER TABLE payment_exceptions ADD COLUMN resolution TEXT;
ALTER TABLE payment_exceptions ADD COLUMN note TEXT;
