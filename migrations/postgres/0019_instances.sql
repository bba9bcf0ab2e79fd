-- Several `serve` instances on one database (issue 15 item 4).
--
-- The number's send budget, shared by every instance: the start of the next
-- free send slot. An instance books a short block of evenly spaced slots at
-- once (`UPDATE … RETURNING`, row-locked), so the slots of all instances
-- never overlap and together keep to `whatsapp.messages_per_second`.
CREATE TABLE delivery_pace (
    name    TEXT PRIMARY KEY,
    next_at TIMESTAMPTZ NOT NULL
);
INSERT INTO delivery_pace (name, next_at) VALUES ('send', '1970-01-01T00:00:00Z');

-- Scheduled scans done, one row per cron tick: an instance that gets the
-- scan lock after a peer finished the tick skips it.
CREATE TABLE scan_ticks (
    tick_at     TIMESTAMPTZ PRIMARY KEY,
    finished_at TIMESTAMPTZ NOT NULL
);
