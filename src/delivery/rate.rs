//! Pacing: one limiter per process holds `whatsapp.messages_per_second`
//! across every concurrent send, and slows down when Meta says the number's
//! throughput is exceeded (130429): the rate halves, then climbs back
//! linearly to the configured limit (AIMD), so a limit lower than configured
//! (Meta's, or one shared with other senders on the number) is found and
//! kept to instead of being hit again and again.

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
    /// The configured messages per second: the ceiling.
    max: f64,
    window: Duration,
    next: Mutex<Instant>,
    recent: Mutex<VecDeque<Instant>>,
    adapt: std::sync::Mutex<Adapt>,
}

/// The multiplicative decrease: the rate just after the last cut.
#[derive(Debug, Default)]
struct Adapt {
    floor: f64,
    cut_at: Option<Instant>,
}

/// From no rate back to the configured one after a 130429, with no further
/// throttling: half the rate comes back in half this time.
const RECOVERY: Duration = Duration::from_secs(30);
/// Requests already in flight when the rate is cut fail too; their errors
/// within this time are the same event, not a reason to halve again.
const HOLD_OFF: Duration = Duration::from_secs(1);

/// Slots missed by up to this much (a stalled runtime) are still handed
/// out; the sliding window still caps every second.
const CATCH_UP: Duration = Duration::from_millis(50);

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        let allowance = if per_second <= 100 { 100 } else { 20 };
        let window = Duration::from_millis(1_000 + allowance);
        Self {
            max: f64::from(per_second),
            window,
            next: Mutex::new(Instant::now()),
            recent: Mutex::new(VecDeque::with_capacity(per_second as usize)),
            adapt: std::sync::Mutex::new(Adapt::default()),
        }
    }

    /// The messages per second allowed now.
    pub fn rate(&self) -> f64 {
        self.rate_at(Instant::now())
    }

    fn rate_at(&self, now: Instant) -> f64 {
        let adapt = self.adapt.lock().expect("pacer lock");
        self.rate_of(&adapt, now)
    }

    fn rate_of(&self, adapt: &Adapt, now: Instant) -> f64 {
        match adapt.cut_at {
            None => self.max,
            Some(cut) => {
                let regained =
                    self.max * now.duration_since(cut).as_secs_f64() / RECOVERY.as_secs_f64();
                (adapt.floor + regained).min(self.max)
            }
        }
    }

    /// Meta answered 130429: halve the rate (at most once per [`HOLD_OFF`]).
    pub fn throttled(&self) {
        self.throttled_at(Instant::now());
    }

    fn throttled_at(&self, now: Instant) {
        let mut adapt = self.adapt.lock().expect("pacer lock");
        if adapt
            .cut_at
            .is_some_and(|c| now.duration_since(c) < HOLD_OFF)
        {
            return;
        }
        let rate = (self.rate_of(&adapt, now) / 2.0).max(1.0);
        adapt.floor = rate;
        adapt.cut_at = Some(now);
        tracing::warn!(
            per_second = rate,
            "WhatsApp throughput limit (130429): slowing down, recovering gradually"
        );
        metrics::gauge!(crate::metrics::DELIVERY_PACE).set(rate);
    }

    /// Waits for the next slot. A slot missed because nobody was waiting is
    /// not saved up (beyond [`CATCH_UP`]), so a quiet spell never turns into
    /// a burst.
    pub async fn acquire(&self) {
        let rate = self.rate();
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now.checked_sub(CATCH_UP).unwrap_or(now));
            *next = slot + self.window.div_f64(rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
        loop {
            // The rate now, not when the slot was booked: a cut applies to
            // the sends already waiting too.
            let limit = (self.rate().floor() as usize).max(1);
            let wait_until = {
                let mut recent = self.recent.lock().await;
                let now = Instant::now();
                while recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    recent.pop_front();
                }
                if recent.len() < limit {
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

    #[test]
    fn a_throughput_error_halves_the_rate_which_then_recovers() {
        let t0 = Instant::now();
        let secs = |s: f64| t0 + Duration::from_secs_f64(s);
        let limiter = RateLimiter::new(1000);
        assert_eq!(limiter.rate_at(t0), 1000.0);
        limiter.throttled_at(t0);
        assert_eq!(limiter.rate_at(t0), 500.0);
        // The in-flight requests' errors are the same event.
        limiter.throttled_at(secs(0.5));
        assert_eq!(limiter.rate_at(secs(0.5)), 500.0 + 1000.0 * 0.5 / 30.0);
        assert_eq!(limiter.rate_at(secs(3.0)), 600.0);
        // Still throttled a little later: halve again from where it was.
        limiter.throttled_at(secs(3.0));
        assert_eq!(limiter.rate_at(secs(3.0)), 300.0);
        assert_eq!(
            limiter.rate_at(secs(3.0) + RECOVERY),
            1000.0,
            "back to the configured rate"
        );
        // Never below one a second.
        let slow = RateLimiter::new(1);
        slow.throttled_at(t0);
        assert_eq!(slow.rate_at(t0), 1.0);
    }

    // On tokio's paused clock: slots are timed exactly, not by how soon a
    // busy machine wakes the task.
    #[tokio::test(start_paused = true)]
    async fn after_a_throughput_error_fewer_slots_are_handed_out() {
        let limiter = std::sync::Arc::new(RateLimiter::new(20));
        limiter.throttled();
        let start = Instant::now();
        let mut n = 0;
        while Instant::now().duration_since(start) < Duration::from_secs(1) {
            limiter.acquire().await;
            n += 1;
        }
        assert!((9..=12).contains(&n), "{n} slots in the second after a cut");
    }

    #[tokio::test(start_paused = true)]
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
