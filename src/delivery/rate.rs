//! Pacing: one limiter per process holds `whatsapp.messages_per_second`
//! across every concurrent send.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Hands out evenly spaced send slots (a token bucket of depth one). Even
/// spacing, rather than bursts of a whole second's tokens, keeps any
/// one-second window as Meta measures it at or under the limit even when
/// requests reach Meta a few milliseconds apart from when they left. The
/// spacing carries a 2% margin for the same reason.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

/// Headroom under the configured rate (see [`RateLimiter`]).
const MARGIN: f64 = 1.02;

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        Self {
            interval: Duration::from_secs_f64(MARGIN / f64::from(per_second)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next slot. A slot missed because nobody was waiting is
    /// not saved up, so a quiet spell never turns into a burst.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}
