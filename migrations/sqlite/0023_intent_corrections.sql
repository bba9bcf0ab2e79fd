-- Officers' corrections of how the bot read a reply (issue 14): the reading
-- the officer says is right, kept beside the bot's own (`intent`,
-- `promised_date`, which stay as classified) so the corrections can be
-- exported as a labelled file and counted per week. `corrections` counts
-- them: a correction applies only over the reading it was made against, so
-- a form sent twice changes the reply once.
ALTER TABLE inbound_messages ADD COLUMN corrected_intent TEXT;
ALTER TABLE inbound_messages ADD COLUMN corrected_date TEXT;
ALTER TABLE inbound_messages ADD COLUMN corrected_at TEXT;
ALTER TABLE inbound_messages ADD COLUMN corrected_by TEXT;
ALTER TABLE inbound_messages ADD COLUMN corrections INTEGER NOT NULL DEFAULT 0;
CREATE INDEX inbound_messages_corrected ON inbound_messages (corrected_at) WHERE corrected_at IS NOT NULL;
