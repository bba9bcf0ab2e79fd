//! Pacing: one limiter per process holds `whatsapp.messages_per_second`
//! across every concurrent send, and slows down when Meta says the number's
//! throughput is exceeded (130429): the rate halves, then climbs back
//! linearly to the configured limit (AIMD), so a limit lower than configured
//! (Meta's, or one shared with other senders on the number) is found and
//! kept to instead of being hit again and again.
//!
//! On PostgreSQL several instances share the number, so the slots come from
//! the database instead (`delivery_pace`): each instance books a short block
//! of evenly spaced slots at a time with one `UPDATE … RETURNING`, and the
//! blocks of all instances follow one another without overlap, so together
//! they keep to the one limit rather than each to its own. SQLite is one
//! instance and keeps the in-process slots.

use crate::store::{Backend, Db};
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
    /// Slots booked from the shared budget and not yet handed out.
    booked: Mutex<VecDeque<Slot>>,
    /// How late a shared slot may still be used (see [`Slot::latest`]).
    tolerance: Duration,
    /// The database's clock as this process reads it (shared slots).
    clock: std::sync::Mutex<ClockSync>,
    /// The local zero that database times are measured against.
    origin: Instant,
}

/// One slot of the shared budget, in this process's clock.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: Instant,
    /// Not after: every send falls within `tolerance` of its slot, so the
    /// sends of all instances stay as evenly spaced as the slots; a later
    /// one would crowd the next slots and is dropped.
    latest: Instant,
    /// When it was booked: a rate cut since voids it.
    booked: Instant,
}

/// The database clock's offset from this process's (seconds), estimated
/// NTP-style from the booking queries: the database read its clock somewhere
/// within the round trip, so the midpoint is off by at most half of it; the
/// sample with the shortest round trip is kept, aged so that a drifting
/// clock is followed.
#[derive(Debug, Default)]
struct ClockSync {
    /// Database seconds minus local seconds (since `origin`).
    offset: f64,
    /// Round trip of the sample, plus its age × [`CLOCK_AGEING`].
    quality: f64,
    measured: Option<Instant>,
}

/// Seconds of doubt added per second of a clock sample's age.
const CLOCK_AGEING: f64 = 1e-3;

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

/// A shared booking covers about this much sending: few round trips (ten a
/// second per busy instance), and little of the budget lost when an
/// instance dies holding a block.
const BLOCK: Duration = Duration::from_millis(100);

/// Books `$1` seconds of slots from the later of the budget's next free
/// instant and the database's now: answers where the booked span starts and
/// the database's now, both in seconds since the epoch.
const BOOK_SQL: &str = "WITH c AS (SELECT clock_timestamp() AS now) \
     UPDATE delivery_pace SET next_at = GREATEST(delivery_pace.next_at, c.now) + make_interval(secs => $1) \
     FROM c WHERE delivery_pace.name = 'send' \
     RETURNING EXTRACT(EPOCH FROM delivery_pace.next_at)::float8 - $1 AS starts_at, \
               EXTRACT(EPOCH FROM c.now)::float8 AS db_now";

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
            booked: Mutex::new(VecDeque::new()),
            // A fifth of the allowance: the rest is for the arrivals' jitter.
            tolerance: Duration::from_millis((allowance / 5).max(5)),
            clock: std::sync::Mutex::new(ClockSync::default()),
            origin: Instant::now(),
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

    /// Waits for the next slot: this process's own on SQLite, one of the
    /// budget shared by every instance on PostgreSQL.
    pub async fn acquire_on(&self, db: &Db) {
        match db.backend() {
            Backend::Sqlite => self.acquire().await,
            Backend::Postgres => self.acquire_shared(db).await,
        }
    }

    /// A slot of the shared budget, used on time or not at all.
    async fn acquire_shared(&self, db: &Db) {
        loop {
            let slot = self.take_booked(db).await;
            tokio::time::sleep_until(slot.at).await;
            if Instant::now() <= slot.latest && !self.cut_since(slot.booked) {
                return;
            }
            // Woken too late (a busy runtime) or slowed down meanwhile: the
            // slot is lost to everyone, which is safe; take the next.
            metrics::counter!(crate::metrics::DELIVERY_SLOTS_DROPPED).increment(1);
        }
    }

    fn cut_since(&self, t: Instant) -> bool {
        let adapt = self.adapt.lock().expect("pacer lock");
        adapt.cut_at.is_some_and(|c| c > t)
    }

    /// The next booked slot still usable, booking a block when none is.
    async fn take_booked(&self, db: &Db) -> Slot {
        let mut booked = self.booked.lock().await;
        loop {
            let now = Instant::now();
            while let Some(s) = booked.pop_front() {
                if s.latest >= now && !self.cut_since(s.booked) {
                    return s;
                }
            }
            match self.book(db).await {
                Ok(slots) => booked.extend(slots),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot book send slots; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Books a block of slots, spaced for the rate allowed now.
    async fn book(&self, db: &Db) -> anyhow::Result<Vec<Slot>> {
        let rate = self.rate();
        let spacing = self.window.div_f64(rate);
        let n = ((rate * BLOCK.as_secs_f64()).ceil() as u32).max(1);
        let span = spacing * n;
        let sent = Instant::now();
        let (starts_at, db_now): (f64, f64) = db
            .query(BOOK_SQL)
            .bind(span.as_secs_f64())
            .fetch_one_as(db)
            .await?;
        let answered = Instant::now();
        let offset = self.sync_clock(sent, answered, db_now);
        let first = starts_at - offset;
        let start = self.origin + Duration::from_secs_f64(first.max(0.0));
        Ok((0..n)
            .map(|i| {
                let at = start + spacing * i;
                Slot {
                    at,
                    latest: at + self.tolerance,
                    booked: sent,
                }
            })
            .collect())
    }

    /// Takes in one reading of the database's clock; returns the offset to
    /// use (database seconds minus local seconds).
    fn sync_clock(&self, sent: Instant, answered: Instant, db_now: f64) -> f64 {
        let local = |t: Instant| t.duration_since(self.origin).as_secs_f64();
        let rtt = local(answered) - local(sent);
        let sample = db_now - (local(sent) + local(answered)) / 2.0;
        let mut clock = self.clock.lock().expect("clock lock");
        let aged = clock.quality
            + clock.measured.map_or(f64::INFINITY, |m| {
                answered.duration_since(m).as_secs_f64() * CLOCK_AGEING
            });
        if rtt <= aged {
            *clock = ClockSync {
                offset: sample,
                quality: rtt,
                measured: Some(answered),
            };
        }
        clock.offset
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

    /// Sends (their instants) made by `tasks` concurrent senders drawing on
    /// `limiter` until `until`.
    async fn send_until(
        limiter: std::sync::Arc<RateLimiter>,
        db: Db,
        tasks: usize,
        until: Instant,
    ) -> Vec<Instant> {
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let (l, db) = (limiter.clone(), db.clone());
            handles.push(tokio::spawn(async move {
                let mut times = Vec::new();
                loop {
                    l.acquire_on(&db).await;
                    let now = Instant::now();
                    if now >= until {
                        return times;
                    }
                    times.push(now);
                }
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.extend(h.await.unwrap());
        }
        times
    }

    fn most_in_one_second(times: &mut [Instant]) -> usize {
        times.sort();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= Duration::from_secs(1) {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    // Two instances (two pools, two limiters) on one PostgreSQL database
    // share the one limit: each alone would send 40 a second.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_on_one_postgres_database_share_the_limit() {
        let Some(t) = crate::testing::postgres().await.unwrap() else {
            return;
        };
        let other = t.connect_again().await.unwrap();
        let a = std::sync::Arc::new(RateLimiter::new(40));
        let b = std::sync::Arc::new(RateLimiter::new(40));
        let until = Instant::now() + Duration::from_secs(3);
        let (mut from_a, mut from_b) = tokio::join!(
            send_until(a, t.db.clone(), 20, until),
            send_until(b, other, 20, until),
        );
        let (na, nb) = (from_a.len(), from_b.len());
        let mut all: Vec<Instant> = from_a.drain(..).chain(from_b.drain(..)).collect();
        let most = most_in_one_second(&mut all);
        assert!(most <= 40, "{most} sends within one second by both");
        // Both get a share, and together they use much of the budget. The
        // floor is loose: slots a sender wakes too late for are dropped, so
        // a loaded host (CI) sends fewer; the ceiling above is the property.
        assert!(na >= 15 && nb >= 15, "a sent {na}, b sent {nb}");
        assert!(na + nb >= 60, "only {} sends in 3 s at 40/s", na + nb);
    }

    // On SQLite (one instance) the slots stay in the process.
    #[tokio::test]
    async fn on_sqlite_the_slots_are_the_processs_own() {
        let t = crate::testing::sqlite().await.unwrap();
        let limiter = std::sync::Arc::new(RateLimiter::new(20));
        let until = Instant::now() + Duration::from_millis(1500);
        let mut times = send_until(limiter, t.db.clone(), 10, until).await;
        let most = most_in_one_second(&mut times);
        assert!((15..=20).contains(&most), "{most} sends within one second");
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
