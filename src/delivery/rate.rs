//! Pacing: one limiter per process holds `whatsapp.messages_per_second`
//! across every concurrent send.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Hands out evenly spaced send slots (a token bucket of depth one), then
/// checks the last second's actual sends. Even spacing, rather than bursts
/// of a whole second's tokens, keeps requests from clumping; the sliding
/// window is the hard guarantee: a late-woken task (a busy runtime wakes
/// several slots at once) can never make more than the limit leave within
/// any second. Both carry a small margin because Meta counts arrivals,
/// which jitter by a few milliseconds.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    limit: usize,
    next: Mutex<Instant>,
    recent: Mutex<VecDeque<Instant>>,
}

/// Headroom under the configured rate (see [`RateLimiter`]).
const MARGIN: f64 = 1.02;
/// The sliding window, a little over one second for the same reason.
const WINDOW: Duration = Duration::from_millis(1_020);

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        Self {
            interval: Duration::from_secs_f64(MARGIN / f64::from(per_second)),
            limit: per_second as usize,
            next: Mutex::new(Instant::now()),
            recent: Mutex::new(VecDeque::with_capacity(per_second as usize)),
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
        loop {
            let wait_until = {
                let mut recent = self.recent.lock().await;
                let now = Instant::now();
                while recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    recent.pop_front();
                }
                if recent.len() < self.limit {
                    recent.push_back(now);
                    return;
                }
                recent[0] + WINDOW
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_more_than_the_limit_in_any_second() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..35 {
            let l = limiter.clone();
            handles.push(tokio::spawn(async move {
                l.acquire().await;
                Instant::now().duration_since(start)
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.unwrap());
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_secs(1))
                .count();
            assert!(in_window <= 10, "{in_window} sends within 1 s of {t:?}");
        }
        // And it does not crawl: 35 sends at 10/s take about 3.5 s.
        assert!(times[34] < Duration::from_secs(4), "{:?}", times[34]);
    }
}
