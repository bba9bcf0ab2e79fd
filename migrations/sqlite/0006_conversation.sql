-- Conversations: inbound webhooks recorded once, payment links, payment
-- callbacks and the payment exceptions an officer has to look at.

-- Every inbound message, keyed by Meta's id so a redelivery is a no-op. A
-- message from a number with no employer keeps employer_id NULL and shows in
-- `unmatched_inbound` for officers; nothing is dropped.
CREATE TABLE inbound_messages (
    id            INTEGER PRIMARY KEY,
    wamid         TEXT    NOT NULL UNIQUE,
    wa_id         TEXT,
    user_id       TEXT,
    employer_id   INTEGER REFERENCES employers (id),
    case_id       INTEGER REFERENCES cases (id),
    kind          TEXT    NOT NULL,
    body          TEXT,
    payload       TEXT,
    context_wamid TEXT,
    intent        TEXT,
    promised_date TEXT,
    received_at   TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    -- Set when the reply's effects could not be applied (kept for an officer).
    error         TEXT
);
CREATE INDEX inbound_messages_employer ON inbound_messages (employer_id, received_at);
CREATE INDEX inbound_messages_case ON inbound_messages (case_id, received_at);
CREATE INDEX inbound_messages_unmatched ON inbound_messages (received_at) WHERE employer_id IS NULL;

CREATE VIEW unmatched_inbound AS
    SELECT id, wamid, wa_id, user_id, kind, body, payload, received_at, created_at
    FROM inbound_messages WHERE employer_id IS NULL;

-- Status webhooks as received, once per (message, status). `sunk_at` is set
-- once the delivery side (`status_sink`) has taken the status.
CREATE TABLE webhook_statuses (
    wamid         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    at            TEXT    NOT NULL,
    recipient     TEXT,
    callback_data TEXT,
    error_code    INTEGER,
    error_title   TEXT,
    created_at    TEXT    NOT NULL,
    sunk_at       TEXT,
    PRIMARY KEY (wamid, status)
);

-- Other webhook events (account updates, change-level errors, items that
-- could not be read): counted and kept briefly for the operator.
CREATE TABLE webhook_other (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Payment links sent to employers. `reference` is our payment reference
-- (Xendit's external_id); `bills` lists the periods and amounts it covers.
CREATE TABLE payment_links (
    id           INTEGER PRIMARY KEY,
    reference    TEXT    NOT NULL UNIQUE,
    case_id      INTEGER NOT NULL REFERENCES cases (id),
    employer_id  INTEGER NOT NULL REFERENCES employers (id),
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
    bills        TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    provider_id  TEXT,
    expires_at   TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending',
    paid_at      TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX payment_links_case ON payment_links (case_id, expires_at);

-- Payment callbacks, once per (reference, status) however often the gateway retries.
CREATE TABLE payment_callbacks (
    id          INTEGER PRIMARY KEY,
    reference   TEXT NOT NULL,
    status      TEXT NOT NULL,
    paid_minor  INTEGER,
    paid_at     TEXT,
    outcome     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (reference, status)
);

-- Payments the bot would not guess about: unknown references, amounts that
-- differ from the link. An officer settles them by hand.
CREATE TABLE payment_exceptions (
    id             INTEGER PRIMARY KEY,
    reference      TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    case_id        INTEGER REFERENCES cases (id),
    employer_id    INTEGER REFERENCES employers (id),
    expected_minor INTEGER,
    paid_minor     INTEGER,
    payload        TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    resolved_at    TEXT,
    resolved_by    TEXT
);
CREATE INDEX payment_exceptions_open ON payment_exceptions (created_at) WHERE resolved_at IS NULL;

-- When an employer said "already paid": the scan hands the case to an
-- officer once the pause ends with the claim still unmatched. When they
-- promised without a date and were asked for one.
ALTER TABLE cases ADD COLUMN payment_claimed_at TEXT;
ALTER TABLE cases ADD COLUMN promise_date_asked_at TEXT;
