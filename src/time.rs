//! Instants as the database stores them: UTC, microsecond precision (what
//! PostgreSQL keeps), so a value read back equals the value written on both
//! backends — which the audit chain's hashes rely on.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}
