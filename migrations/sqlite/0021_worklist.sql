-- The worklist: a case is "awaiting reply" from the employer's last message
-- until an officer or the bot answers (`src/case/figures.rs`, written from
-- the case log as it records, no trigger). The preview is that message's
-- first words, so the list needs no join on the case log.
ALTER TABLE cases ADD COLUMN awaiting_since TEXT;
ALTER TABLE cases ADD COLUMN awaiting_preview TEXT;
-- Few cases wait at a time: a partial index serves the filter and the sort.
CREATE INDEX cases_list_awaiting ON cases (awaiting_since, id) WHERE awaiting_since IS NOT NULL;

UPDATE cases SET
    awaiting_since = (SELECT MAX(ev.at) FROM case_events ev
                      WHERE ev.case_id = cases.id AND ev.kind = 'reply_received'),
    awaiting_preview = (SELECT substr(json_extract(ev.data, '$.text'), 1, 140) FROM case_events ev
                        WHERE ev.case_id = cases.id AND ev.kind = 'reply_received'
                        ORDER BY ev.id DESC LIMIT 1)
WHERE resolved_at IS NULL
  AND EXISTS (SELECT 1 FROM case_events r WHERE r.case_id = cases.id AND r.kind = 'reply_received')
  AND NOT EXISTS (SELECT 1 FROM case_events q WHERE q.case_id = cases.id AND q.kind = 'message_queued'
                  AND q.id > (SELECT MAX(r.id) FROM case_events r
                              WHERE r.case_id = cases.id AND r.kind = 'reply_received'));

-- Officer-editable short texts, sent as free text inside the 24-hour window.
CREATE TABLE canned_replies (
    id         INTEGER PRIMARY KEY,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Labels officers put on cases ("alamat baru", "tunggu transfer").
CREATE TABLE case_labels (
    case_id    INTEGER NOT NULL REFERENCES cases(id),
    label      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (case_id, label)
);
CREATE INDEX case_labels_label ON case_labels (label, case_id);
