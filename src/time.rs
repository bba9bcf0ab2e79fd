//! Instants as the database stores them: UTC, microsecond precision (what
//! PostgreSQL keeps), so a value read back equals the value written on both
//! backends — which the audit chain's hashes rely on.
//!
//! `now()` is the process's clock. It is the real clock except in
//! `wa-smile demo`, which may run on its own clock (a weekday morning inside
//! the sending window) by shifting every reading by a fixed offset: the
//! scan, the delivery worker, the webhooks and the simulator then agree.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// Microseconds added to the real clock (0 outside the demo).
static OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);

pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

pub fn now() -> DateTime<Utc> {
    let offset = TimeDelta::microseconds(OFFSET_MICROS.load(Ordering::Relaxed));
    truncate(Utc::now() + offset)
}

/// Runs the process's clock from `at` onwards, at real speed. For the demo
/// only: a server's clock is the real one.
pub fn run_clock_from(at: DateTime<Utc>) {
    let offset = at - Utc::now();
    OFFSET_MICROS.store(offset.num_microseconds().unwrap_or(0), Ordering::Relaxed);
}
