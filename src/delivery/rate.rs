//! Pacing: one limiter per process holds `whatsapp.messages_per_second`
//! across every concurrent send.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Hands out evenly spaced send slots (a token bucket of depth one), then
/// checks the actual sends of the last window. Even spacing, rather than
/// bursts of a whole second's tokens, keeps requests from clumping; the
/// sliding window is the hard guarantee: however late a busy runtime wakes
/// the tasks, no more than the limit leave within any window. The window is
/// a little over a second because Meta counts arrivals, which jitter: by up
/// to 100 ms on a loaded host. At low rates (the default 80/s) that whole
/// allowance costs a few messages a second; at high rates (1,000/s) it would
/// cost 10% of the throughput, so there it is 20 ms.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    window: Duration,
    limit: usize,
    next: Mutex<Instant>,
    recent: Mutex<VecDeque<Instant>>,
}

/// Slots missed by up to this much (a stalled runtime) are still handed
/// out; the sliding window still caps every second.
const CATCH_UP: Duration = Duration::from_millis(50);

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        let allowance = if per_second <= 100 { 100 } else { 20 };
        let window = Duration::from_millis(1_000 + allowance);
        Self {
            interval: window / per_second,
            window,
            limit: per_second as usize,
            next: Mutex::new(Instant::now()),
            recent: Mutex::new(VecDeque::with_capacity(per_second as usize)),
        }
    }

    /// Waits for the next slot. A slot missed because nobody was waiting is
    /// not saved up (beyond [`CATCH_UP`]), so a quiet spell never turns into
    /// a burst.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now.checked_sub(CATCH_UP).unwrap_or(now));
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
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    recent.pop_front();
                }
                if recent.len() < self.limit {
                    recent.push_back(now);
                    return;
                }
                recent[0] + self.window
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
