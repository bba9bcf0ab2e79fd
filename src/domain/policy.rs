use super::{Calendar, Money, QuietReason, Stage};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use rust_decimal::Decimal;

/// When the bot may message an employer: days of the week and local hours,
/// never on holidays (POJK 22/2023 art. 62 as the benchmark).
#[derive(Debug, Clone)]
pub struct SendingWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub days: Vec<Weekday>,
}

impl SendingWindow {
    /// Whether a message may go out at `at` to someone in `tz`; if not, why.
    pub fn check(&self, at: DateTime<Utc>, tz: Tz, cal: &Calendar) -> Result<(), QuietReason> {
        let local = at.with_timezone(&tz);
        let date = local.date_naive();
        if cal.holiday(date).is_some() {
            return Err(QuietReason::Holiday);
        }
        if !self.days.contains(&date.weekday()) {
            return Err(QuietReason::NonSendingDay);
        }
        let t = local.time();
        if t < self.start || t >= self.end {
            return Err(QuietReason::WindowClosed);
        }
        Ok(())
    }

    /// The earliest instant at or after `at` inside the window, and why it
    /// had to wait (None when `at` itself is inside).
    pub fn next_opening(
        &self,
        at: DateTime<Utc>,
        tz: Tz,
        cal: &Calendar,
    ) -> (DateTime<Utc>, Option<QuietReason>) {
        let reason = match self.check(at, tz, cal) {
            Ok(()) => return (at, None),
            Err(r) => r,
        };
        let local = at.with_timezone(&tz);
        let mut date = local.date_naive();
        if local.time() >= self.start {
            date = date.succ_opt().expect("date in range");
        }
        // A year of days off in a row would be a broken calendar; stop there.
        for _ in 0..366 {
            if self.days.contains(&date.weekday()) && cal.holiday(date).is_none() {
                let opening = super::local_instant(tz, date.and_time(self.start));
                return (opening, Some(reason));
            }
            date = date.succ_opt().expect("date in range");
        }
        (at + Duration::days(366), Some(reason))
    }

    /// The opening of the window on the first sending day after `after`
    /// (used by the one-reminder-a-day cap).
    pub fn opening_after_day(&self, after: NaiveDate, tz: Tz, cal: &Calendar) -> DateTime<Utc> {
        let next = after.succ_opt().expect("date in range");
        self.next_opening(super::start_of_day(tz, next), tz, cal).0
    }
}

/// The collection policy: when a case escalates, what a late fee is, how
/// long promises may run. Every number comes from config.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Days after the oldest due date at which each stage starts, ascending.
    pub stage_days: Vec<(Stage, i64)>,
    pub window: SendingWindow,
    /// Percent of the unpaid contribution per month or part of a month.
    pub late_fee_percent_per_month: Decimal,
    pub promise_horizon_days: i64,
    pub paid_claim_pause_working_days: u32,
    pub reminders_per_day: u32,
}

impl Policy {
    /// The stage a case should be at after `days_overdue` days, if any.
    pub fn stage_for(&self, days_overdue: i64) -> Option<Stage> {
        self.stage_days
            .iter()
            .rev()
            .find(|(_, d)| days_overdue >= *d)
            .map(|(s, _)| *s)
    }

    /// Months or parts of a month late on `on` for a bill due on `due`:
    /// the day after the due date already counts as one.
    pub fn months_late(due: NaiveDate, on: NaiveDate) -> u32 {
        if on <= due {
            return 0;
        }
        let mut full = 0u32;
        while let Some(next) = due.checked_add_months(Months::new(full + 1)) {
            if next > on {
                break;
            }
            full += 1;
        }
        let anniversary = due
            .checked_add_months(Months::new(full))
            .expect("date in range");
        if anniversary == on {
            full
        } else {
            full + 1
        }
    }

    /// The bot's estimate of the late fee (*denda*): simple, per bill, on
    /// the unpaid contribution only, rounded to whole rupiah half up.
    pub fn late_fee(&self, unpaid: Money, due: NaiveDate, on: NaiveDate) -> Money {
        let months = Decimal::from(Self::months_late(due, on));
        let fee =
            unpaid.decimal() * self.late_fee_percent_per_month / Decimal::ONE_HUNDRED * months;
        Money::from_decimal(fee).round_rupiah()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn policy() -> Policy {
        Policy {
            stage_days: vec![
                (Stage::Reminder1, 1),
                (Stage::Reminder2, 7),
                (Stage::Reminder3, 14),
                (Stage::Warning, 30),
                (Stage::Escalated, 60),
            ],
            window: SendingWindow {
                start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
                days: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                ],
            },
            late_fee_percent_per_month: Decimal::from(2),
            promise_horizon_days: 30,
            paid_claim_pause_working_days: 3,
            reminders_per_day: 1,
        }
    }

    #[test]
    fn late_fee_one_day_one_month_three_months() {
        let p = policy();
        let unpaid = Money::from_rupiah(1_000_000);
        let due = d("2026-03-16");
        assert_eq!(
            p.late_fee(unpaid, due, due),
            Money::ZERO,
            "on the due date nothing is owed"
        );
        assert_eq!(
            p.late_fee(unpaid, due, d("2026-03-17")),
            Money::from_rupiah(20_000),
            "1 day late"
        );
        assert_eq!(
            p.late_fee(unpaid, due, d("2026-04-16")),
            Money::from_rupiah(20_000),
            "exactly 1 month"
        );
        assert_eq!(
            p.late_fee(unpaid, due, d("2026-04-17")),
            Money::from_rupiah(40_000),
            "1 month and a day"
        );
        assert_eq!(
            p.late_fee(unpaid, due, d("2026-06-16")),
            Money::from_rupiah(60_000),
            "3 months"
        );
    }

    #[test]
    fn late_fee_rounds_half_up_to_whole_rupiah() {
        // 2% of 1,234,525 = 24,690.5 → 24,691.
        let fee = policy().late_fee(
            Money::from_rupiah(1_234_525),
            d("2026-01-15"),
            d("2026-01-20"),
        );
        assert_eq!(fee, Money::from_rupiah(24_691));
    }

    #[test]
    fn month_end_due_dates_count_calendar_months() {
        assert_eq!(Policy::months_late(d("2026-01-31"), d("2026-02-28")), 1);
        assert_eq!(Policy::months_late(d("2026-01-31"), d("2026-03-01")), 2);
    }

    #[test]
    fn stages_follow_days_overdue() {
        let p = policy();
        assert_eq!(p.stage_for(0), None);
        assert_eq!(p.stage_for(1), Some(Stage::Reminder1));
        assert_eq!(p.stage_for(13), Some(Stage::Reminder2));
        assert_eq!(p.stage_for(40), Some(Stage::Warning));
        assert_eq!(p.stage_for(400), Some(Stage::Escalated));
    }

    #[test]
    fn window_edges_and_next_opening() {
        let p = policy();
        let cal = Calendar::new(vec![], true, true);
        let tz = chrono_tz::Asia::Jakarta;
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Tuesday 3 March 2026: 08:00 WIB = 01:00 UTC opens; 20:00 WIB closes.
        assert!(p.window.check(at("2026-03-03T01:00:00Z"), tz, &cal).is_ok());
        assert_eq!(
            p.window.check(at("2026-03-03T00:59:59Z"), tz, &cal),
            Err(QuietReason::WindowClosed)
        );
        assert_eq!(
            p.window.check(at("2026-03-03T13:00:00Z"), tz, &cal),
            Err(QuietReason::WindowClosed)
        );
        assert!(p.window.check(at("2026-03-03T12:59:59Z"), tz, &cal).is_ok());
        // Saturday 20:00 → Monday 08:00 (Sunday is not a sending day).
        let (next, why) = p.window.next_opening(at("2026-03-07T13:00:00Z"), tz, &cal);
        assert_eq!(next, at("2026-03-09T01:00:00Z"));
        assert_eq!(why, Some(QuietReason::WindowClosed));
        // Makassar (WITA) opens an hour earlier in UTC.
        let (next, _) =
            p.window
                .next_opening(at("2026-03-03T23:30:00Z"), chrono_tz::Asia::Makassar, &cal);
        assert_eq!(next, at("2026-03-04T00:00:00Z"));
    }

    #[test]
    fn a_zone_whose_clocks_jump_over_the_opening_does_not_panic() {
        // São Paulo, 4 November 2018: clocks went from 00:00 -03 straight to
        // 01:00 -02, so neither midnight nor a 00:00 opening existed.
        let mut p = policy();
        p.window.start = NaiveTime::MIN;
        let cal = Calendar::new(vec![], true, true);
        let tz = chrono_tz::America::Sao_Paulo;
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let gap_ends = at("2018-11-04T03:00:00Z");
        // Saturday 3 November 20:00 -03: the next opening is Monday (Sunday
        // is not a sending day) but the day after Saturday must be computed.
        assert_eq!(
            p.window.opening_after_day(d("2018-11-03"), tz, &cal),
            at("2018-11-05T02:00:00Z")
        );
        p.window.days.push(Weekday::Sun);
        assert_eq!(
            p.window.opening_after_day(d("2018-11-03"), tz, &cal),
            gap_ends
        );
        let (next, why) = p.window.next_opening(at("2018-11-03T23:30:00Z"), tz, &cal);
        assert_eq!((next, why), (gap_ends, Some(QuietReason::WindowClosed)));
    }
}
