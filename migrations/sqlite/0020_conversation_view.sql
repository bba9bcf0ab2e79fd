-- The case page's conversation: the media employers send (a transfer
-- receipt), fetched from the Cloud API off the webhook's path and kept with
-- its hash; and the outbox row an event is about, as a column, so a page of
-- the timeline shows each message once, at its first event.

CREATE TABLE inbound_media (
    id              INTEGER PRIMARY KEY,
    inbound_id      INTEGER NOT NULL UNIQUE REFERENCES inbound_messages (id),
    wamid           TEXT    NOT NULL UNIQUE,
    case_id         INTEGER REFERENCES cases (id),
    kind            TEXT    NOT NULL,
    media_id        TEXT    NOT NULL,
    declared_mime   TEXT,
    declared_sha256 TEXT,
    filename        TEXT,
    -- pending, stored, failed (may be tried again) or refused (too big, a
    -- type not kept).
    state           TEXT    NOT NULL DEFAULT 'pending',
    content_type    TEXT,
    size            INTEGER,
    sha256          TEXT,
    content         BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      TEXT    NOT NULL,
    fetched_at      TEXT
);
CREATE INDEX inbound_media_case ON inbound_media (case_id);

ALTER TABLE case_events ADD COLUMN outbox_id INTEGER;
UPDATE case_events SET outbox_id = CAST(json_extract(data, '$.outbox_id') AS INTEGER)
    WHERE json_valid(data) AND json_extract(data, '$.outbox_id') IS NOT NULL;
CREATE INDEX case_events_outbox ON case_events (case_id, outbox_id, id) WHERE outbox_id IS NOT NULL;
CREATE INDEX case_events_case_at ON case_events (case_id, at, id);
