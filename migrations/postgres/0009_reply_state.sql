-- The case state an automated reply was queued in (`replies::outgoing`):
-- the same reply is not sent twice in one state, and replies to one
-- employer are capped per day. NULL for reminders and older rows.
ALTER TABLE outbox ADD COLUMN reply_state TEXT;
CREATE INDEX outbox_reply_state ON outbox (employer_id, message, reply_state) WHERE reply_state IS NOT NULL;
