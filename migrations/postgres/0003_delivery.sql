-- Delivery: a message's delivery status (`state` goes queued → sending →
-- sent → delivered → read, or failed/skipped/cancelled), whether it counted
-- against the daily tier of business-initiated recipients, and the row a
-- template fallback replaces.
ALTER TABLE outbox ADD COLUMN initiated BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE outbox ADD COLUMN status_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN fallback_of BIGINT;
ALTER TABLE outbox ADD COLUMN error_title TEXT;
CREATE INDEX outbox_initiated ON outbox (sent_at) WHERE initiated;
CREATE INDEX outbox_lease ON outbox (lease_until) WHERE state = 'sending';

-- Status webhooks are at least once: each (message, status) is recorded once.
CREATE TABLE outbox_statuses (
    outbox_id BIGINT NOT NULL REFERENCES outbox (id),
    status    TEXT   NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (outbox_id, status)
);

-- Operator switches: `sending_paused` (account restricted, 368/131031) and
-- `auth_expired` (190). While either is set no message is sent.
CREATE TABLE delivery_flags (
    name   TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    set_at TIMESTAMPTZ NOT NULL
);
