-- The exact text the employer saw (a template's approved body with its
-- parameters filled in), written when a message is queued finished or sent,
-- so the case log can show it (CONTRACT: every message_* event carries or
-- links to it).
ALTER TABLE outbox ADD COLUMN text TEXT;
