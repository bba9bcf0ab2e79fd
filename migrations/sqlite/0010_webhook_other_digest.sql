-- A redelivered webhook body stored its account updates and unreadable
-- items again each time. `digest` names the body (its SHA-256) and the
-- item's place in it, so a second delivery adds nothing. Older rows keep
-- NULL, which the unique index allows any number of.
ALTER TABLE webhook_other ADD COLUMN digest TEXT;
CREATE UNIQUE INDEX webhook_other_digest ON webhook_other (digest);
