//! Instants as the database stores them: UTC, microsecond precision (what
//! PostgreSQL keeps), so a value read back equals the value written on both
//! backends — which the audit chain's hashes rely on.
//!
//! `now()` is the process's clock. It is the real clock except in
//! `wa-smile demo`, which may run on its own clock (a weekday morning inside
//! the sending window) by shifting every reading by a fixed offset: the
//! scan, the delivery worker, the webhooks and the simulator then agree.
//!
//! Tests may instead run work under a [`TestClock`]: a task-local, so each
//! test app has its own clock and parallel tests in one binary do not share
//! one (a global override would). Work spawned onto another task without the
//! clock reads the process's clock.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Microseconds added to the real clock (0 outside the demo).
static OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);

pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

pub fn now() -> DateTime<Utc> {
    if let Ok(Some(at)) = TEST_CLOCK.try_with(TestClock::fixed) {
        return truncate(at);
    }
    let offset = TimeDelta::microseconds(OFFSET_MICROS.load(Ordering::Relaxed));
    truncate(Utc::now() + offset)
}

/// Runs the process's clock from `at` onwards, at real speed. For the demo
/// only: a server's clock is the real one.
pub fn run_clock_from(at: DateTime<Utc>) {
    let offset = at - Utc::now();
    OFFSET_MICROS.store(offset.num_microseconds().unwrap_or(0), Ordering::Relaxed);
}

tokio::task_local! {
    static TEST_CLOCK: TestClock;
}

/// A clock for tests: follows the process's clock until [`TestClock::set`],
/// then stands still at what it was set to until set again.
/// Clones share one reading.
#[derive(Clone, Default, Debug)]
pub struct TestClock(Arc<Mutex<Option<DateTime<Utc>>>>);

impl TestClock {
    fn fixed(&self) -> Option<DateTime<Utc>> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the clock at `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(truncate(at));
    }

    /// What `now()` answers under this clock.
    pub fn now(&self) -> DateTime<Utc> {
        let clock = self.clone();
        TEST_CLOCK.sync_scope(clock, now)
    }

    /// Runs `work` with `now()` reading this clock.
    pub async fn run<F: Future>(&self, work: F) -> F::Output {
        TEST_CLOCK.scope(self.clone(), work).await
    }
}
