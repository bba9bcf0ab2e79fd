-- Admin UI and API: logins, database sessions, API tokens, login throttling,
-- and the columns the case list sorts and filters on.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
    branch        TEXT,
    created_at    TEXT    NOT NULL,
    disabled_at   TEXT
);

-- `id` is the SHA-256 of the cookie value: a leaked table cannot be replayed.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    csrf_token TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Only the SHA-256 of a token is kept; the token is printed once.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('supervisor', 'admin')),
    branch     TEXT,
    created_at TEXT    NOT NULL,
    revoked_at TEXT
);

CREATE TABLE login_attempts (
    id       INTEGER PRIMARY KEY,
    username TEXT    NOT NULL,
    client   TEXT    NOT NULL,
    at       TEXT    NOT NULL,
    success  INTEGER NOT NULL
);
CREATE INDEX login_attempts_username ON login_attempts (username, at);
CREATE INDEX login_attempts_client ON login_attempts (client, at);

-- The case list sorts 200,000 cases by arrears, days overdue and last
-- activity; computing those per request means aggregating a million bills.
-- Triggers keep them on the case row whatever path writes bills, cases or
-- events (import, API, scan, webhooks), so no writer has to remember.
-- `arrears_minor` is the unpaid contribution of unsettled bills already due
-- when the row last changed; the case page computes the exact figure.
ALTER TABLE cases ADD COLUMN branch TEXT;
ALTER TABLE cases ADD COLUMN arrears_minor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN oldest_due_date TEXT;
ALTER TABLE cases ADD COLUMN last_activity_at TEXT;

CREATE TRIGGER cases_list_insert AFTER INSERT ON cases BEGIN
    UPDATE cases SET
        branch = (SELECT branch FROM employers WHERE id = NEW.employer_id),
        arrears_minor = COALESCE((SELECT SUM(amount_minor - paid_minor) FROM bills
            WHERE employer_id = NEW.employer_id AND settled_at IS NULL AND due_date < date('now')), 0),
        oldest_due_date = (SELECT MIN(due_date) FROM bills
            WHERE employer_id = NEW.employer_id AND settled_at IS NULL),
        last_activity_at = COALESCE(last_activity_at, NEW.opened_at)
    WHERE id = NEW.id;
END;

CREATE TRIGGER cases_list_bill_insert AFTER INSERT ON bills BEGIN
    UPDATE cases SET
        arrears_minor = COALESCE((SELECT SUM(amount_minor - paid_minor) FROM bills
            WHERE employer_id = NEW.employer_id AND settled_at IS NULL AND due_date < date('now')), 0),
        oldest_due_date = (SELECT MIN(due_date) FROM bills
            WHERE employer_id = NEW.employer_id AND settled_at IS NULL)
    WHERE employer_id = NEW.employer_id AND resolved_at IS NULL;
END;

CREATE TRIGGER cases_list_bill_update AFTER UPDATE OF amount_minor, paid_minor, settled_at, due_date ON bills BEGIN
    UPDATE cases SET
        arrears_minor = COALESCE((SELECT SUM(amount_minor - paid_minor) FROM bills
            WHERE employer_id = NEW.employer_id AND settled_at IS NULL AND due_date < date('now')), 0),
        oldest_due_date = (SELECT MIN(due_date) FROM bills
            WHERE employer_id = NEW.employer_id AND settled_at IS NULL)
    WHERE employer_id = NEW.employer_id AND resolved_at IS NULL;
END;

CREATE TRIGGER cases_list_branch_moved AFTER UPDATE OF branch ON employers BEGIN
    UPDATE cases SET branch = NEW.branch WHERE employer_id = NEW.id;
END;

CREATE TRIGGER cases_list_event AFTER INSERT ON case_events BEGIN
    UPDATE cases SET last_activity_at = NEW.at
    WHERE id = NEW.case_id AND (last_activity_at IS NULL OR last_activity_at < NEW.at);
END;

UPDATE cases SET
    branch = (SELECT branch FROM employers WHERE id = cases.employer_id),
    arrears_minor = COALESCE((SELECT SUM(amount_minor - paid_minor) FROM bills
        WHERE employer_id = cases.employer_id AND settled_at IS NULL AND due_date < date('now')), 0),
    oldest_due_date = (SELECT MIN(due_date) FROM bills
        WHERE employer_id = cases.employer_id AND settled_at IS NULL),
    last_activity_at = COALESCE((SELECT MAX(at) FROM case_events WHERE case_id = cases.id), opened_at);

CREATE INDEX cases_list_arrears ON cases (arrears_minor, id);
CREATE INDEX cases_list_oldest_due ON cases (oldest_due_date, id);
CREATE INDEX cases_list_activity ON cases (last_activity_at, id);
-- An officer's list is one branch's: each sort also has a per-branch index.
CREATE INDEX cases_list_branch ON cases (branch, status, employer_id);
CREATE INDEX cases_list_branch_arrears ON cases (branch, arrears_minor, id);
CREATE INDEX cases_list_branch_oldest_due ON cases (branch, oldest_due_date, id);
CREATE INDEX cases_list_branch_activity ON cases (branch, last_activity_at, id);
CREATE INDEX cases_list_status ON cases (status, arrears_minor);
-- Counting by status under a filter reads these indexes, not the table.
CREATE INDEX cases_list_assignee ON cases (assignee, status);
CREATE INDEX cases_list_stage ON cases (stage, status);
CREATE INDEX cases_list_promised ON cases (promised_date, status);
CREATE INDEX cases_list_inbound ON cases (last_inbound_at, status);
CREATE INDEX case_events_kind ON case_events (kind, case_id);
-- Search finds employers first, then their cases by employer id.
CREATE INDEX cases_employer ON cases (employer_id);
