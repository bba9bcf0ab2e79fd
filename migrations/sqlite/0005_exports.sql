-- Exports read the case log by time range (the case log export, the
-- summary's counts are per case and use case_events_case).
CREATE INDEX case_events_at ON case_events (at);
-- Retention looks for old outbox rows by creation time.
CREATE INDEX outbox_created ON outbox (created_at);
