-- An import in short transactions, all or nothing: the validated rows are
-- staged under a run in batches, then applied in batches. `state` records
-- how far a run got (staging → applying → done, or staging → discarding →
-- discarded), so an interrupted run is finished once it is applying — every
-- row is then known valid — and discarded while still staging; never left
-- half written. `applied_through` is the last staged `seq` applied, and the
-- counts are what the applied batches did, so a resumed run reports the
-- same totals as one that was never interrupted. `owner` and
-- `heartbeat_at` tell a live run from a dead one; `beats` counts the
-- heartbeats, so taking over a dead run is a compare-and-set on it.
CREATE TABLE import_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    payment_source  TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    rows_total      INTEGER NOT NULL DEFAULT 0,
    applied_through INTEGER NOT NULL DEFAULT 0,
    inserted        INTEGER NOT NULL DEFAULT 0,
    updated         INTEGER NOT NULL DEFAULT 0,
    unchanged       INTEGER NOT NULL DEFAULT 0,
    owner           TEXT    NOT NULL,
    heartbeat_at    TEXT    NOT NULL,
    beats           INTEGER NOT NULL DEFAULT 0,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT
);
CREATE INDEX import_runs_open ON import_runs (state) WHERE state IN ('staging', 'applying', 'discarding');

-- One validated row (its parsed values as JSON) of a run not yet applied.
CREATE TABLE import_staged (
    run_id BIGINT  NOT NULL REFERENCES import_runs (id),
    seq    BIGINT  NOT NULL,
    row    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
