-- Delivery faults (issue 9). Which worker holds a claim and whether its HTTP
-- call may have started (`handed_at`): a dead worker's rows that never
-- reached HTTP go back at once; the others wait for a status webhook. An
-- unknown outcome (timeout, dead worker) is remembered, and so is every
-- resend made without knowing whether Meta had taken the earlier attempt.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN handed_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN unknown_since TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN resent_unknown BIGINT NOT NULL DEFAULT 0;

-- Live delivery workers (serve instances, `deliver --once` runs): a worker
-- beats while it runs and deletes its row when it stops cleanly.
CREATE TABLE delivery_workers (
    id         TEXT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    beat_at    TIMESTAMPTZ NOT NULL
);
