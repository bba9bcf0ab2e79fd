-- The scan and payment resolution look up a case's outbox rows (to cancel
-- superseded or no longer needed reminders); without this index that is a
-- scan of the whole outbox per case.
CREATE INDEX outbox_case ON outbox (case_id, state);
