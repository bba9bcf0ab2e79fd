-- The collections core. Money is integer sen (1/100 rupiah); times are UTC
-- (ISO-8601 text, which sorts chronologically); dates are YYYY-MM-DD text.

CREATE TABLE employers (
    id                 INTEGER PRIMARY KEY,
    npp                TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    branch             TEXT    NOT NULL,
    wa_id              TEXT,
    contact_name       TEXT    NOT NULL DEFAULT '',
    timezone           TEXT    NOT NULL,
    contact_invalid_at TEXT,
    opted_out_at       TEXT,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
);
CREATE INDEX employers_branch ON employers (branch);
CREATE INDEX employers_wa_id ON employers (wa_id);

CREATE TABLE bills (
    id             INTEGER PRIMARY KEY,
    employer_id    INTEGER NOT NULL REFERENCES employers (id),
    period         TEXT    NOT NULL,
    amount_minor   INTEGER NOT NULL CHECK (amount_minor >= 0),
    due_date       TEXT    NOT NULL,
    payment_code   TEXT,
    late_fee_minor INTEGER,
    paid_minor     INTEGER NOT NULL DEFAULT 0,
    settled_at     TEXT,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    UNIQUE (employer_id, period)
);
CREATE INDEX bills_unsettled ON bills (employer_id, due_date) WHERE settled_at IS NULL;

CREATE TABLE payments (
    id           INTEGER PRIMARY KEY,
    reference    TEXT    NOT NULL UNIQUE,
    employer_id  INTEGER NOT NULL REFERENCES employers (id),
    period       TEXT    NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
    paid_at      TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
);
CREATE INDEX payments_employer_period ON payments (employer_id, period);

CREATE TABLE cases (
    id              INTEGER PRIMARY KEY,
    employer_id     INTEGER NOT NULL REFERENCES employers (id),
    status          TEXT    NOT NULL,
    stage           TEXT    NOT NULL,
    opened_at       TEXT    NOT NULL,
    resolved_at     TEXT,
    resolution      TEXT,
    assignee        TEXT,
    paused_until    TEXT,
    promised_date   TEXT,
    quiet_reason    TEXT,
    next_action_at  TEXT,
    last_inbound_at TEXT,
    updated_at      TEXT    NOT NULL
);
-- At most one open case per employer, enforced by the database so that two
-- scanners cannot both open one.
CREATE UNIQUE INDEX cases_one_open ON cases (employer_id) WHERE resolved_at IS NULL;
CREATE INDEX cases_status ON cases (status);

CREATE TABLE case_events (
    id      INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases (id),
    at      TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    actor   TEXT    NOT NULL,
    data    TEXT    NOT NULL
);
CREATE INDEX case_events_case ON case_events (case_id, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER REFERENCES cases (id),
    employer_id     INTEGER NOT NULL REFERENCES employers (id),
    idempotency_key TEXT    NOT NULL UNIQUE,
    message         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    wa_id           TEXT,
    body            TEXT    NOT NULL DEFAULT '{}',
    state           TEXT    NOT NULL,
    due_at          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     TEXT,
    last_error      TEXT,
    error_code      INTEGER,
    wamid           TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (state, due_at);
CREATE INDEX outbox_employer ON outbox (employer_id, due_at);
CREATE INDEX outbox_wamid ON outbox (wamid);

-- Append-only, hash-chained. `payload_digest` is the SHA-256 of before/after,
-- and the chain hashes the digest, not the payload, so personal data can be
-- redacted later without breaking the chain.
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY,
    at             TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    entity         TEXT    NOT NULL,
    before         TEXT,
    after          TEXT,
    payload_digest TEXT    NOT NULL,
    prev_hash      TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    redacted_at    TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The chain head: one row, updated by every append. Appending takes its lock,
-- which is what serialises the chain across writers.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
