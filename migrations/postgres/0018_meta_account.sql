-- Meta's view of the account (issue 15): each message template's review
-- status and quality, the number's messaging tier and quality and any
-- restriction, and what each sent message costs (a status webhook's
-- `pricing`). Written by `templates sync` and by the webhooks Meta sends
-- for these (`message_template_status_update`, `…_quality_update`,
-- `phone_number_quality_update`, `account_update`).
CREATE TABLE meta_templates (
    name        TEXT NOT NULL,
    language    TEXT NOT NULL,
    category    TEXT,
    meta_id     TEXT,
    status      TEXT NOT NULL,
    quality     TEXT,
    reason      TEXT,
    -- When Meta said so (the webhook entry's time, or the sync's clock):
    -- an older event arriving late does not overwrite a newer one.
    status_at   TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, language)
);

-- One row per business number (`phone` is the display number Meta names,
-- or '' for account-wide facts).
CREATE TABLE meta_account (
    phone          TEXT PRIMARY KEY,
    tier           TEXT,
    daily_limit    BIGINT,
    quality        TEXT,
    restriction    TEXT,
    restricted_until TIMESTAMPTZ,
    event          TEXT,
    event_at       TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE message_pricing (
    wamid         TEXT PRIMARY KEY,
    outbox_id     BIGINT,
    billable      BOOLEAN NOT NULL,
    category      TEXT NOT NULL,
    pricing_type  TEXT,
    pricing_model TEXT,
    at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_pricing_at ON message_pricing (at);
CREATE INDEX message_pricing_outbox ON message_pricing (outbox_id);
