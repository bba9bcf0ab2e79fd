-- Several `serve` instances on one database (issue 15 item 4).
--
-- The number's send budget shared by every instance. Only PostgreSQL books
-- slots here (SQLite is one instance; its pacer is in-process); the table
-- exists on both so the schemas stay alike.
CREATE TABLE delivery_pace (
    name    TEXT PRIMARY KEY,
    next_at TEXT NOT NULL
);
INSERT INTO delivery_pace (name, next_at) VALUES ('send', '1970-01-01T00:00:00Z');

-- Scheduled scans done, one row per cron tick: an instance that gets the
-- scan lock after a peer finished the tick skips it.
CREATE TABLE scan_ticks (
    tick_at     TEXT PRIMARY KEY,
    finished_at TEXT NOT NULL
);
