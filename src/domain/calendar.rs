use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One day off from the official joint decrees.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Holiday {
    pub date: NaiveDate,
    /// `libur` (national holiday) or `cuti_bersama` (collective leave).
    pub kind: String,
    pub name: String,
}

/// Working days for due dates and sending days for reminders. Built once
/// from the configuration; clones share the holidays.
#[derive(Debug, Clone)]
pub struct Calendar {
    holidays: Arc<BTreeMap<NaiveDate, Holiday>>,
    saturday_is_working: bool,
}

impl Calendar {
    /// `include_cuti_bersama` decides whether collective-leave days count as
    /// days off; SMILE's own treatment is unconfirmed, so it is config.
    pub fn new(
        holidays: Vec<Holiday>,
        include_cuti_bersama: bool,
        saturday_is_working: bool,
    ) -> Self {
        let holidays = Arc::new(
            holidays
                .into_iter()
                .filter(|h| include_cuti_bersama || h.kind != "cuti_bersama")
                .map(|h| (h.date, h))
                .collect(),
        );
        Self {
            holidays,
            saturday_is_working,
        }
    }

    pub fn holiday(&self, d: NaiveDate) -> Option<&Holiday> {
        self.holidays.get(&d)
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        match d.weekday() {
            Weekday::Sun => false,
            Weekday::Sat if !self.saturday_is_working => false,
            _ => !self.holidays.contains_key(&d),
        }
    }

    /// The first working day on or after `d`.
    pub fn roll_forward(&self, mut d: NaiveDate) -> NaiveDate {
        while !self.is_working_day(d) {
            d = d.succ_opt().expect("date in range");
        }
        d
    }

    /// `n` working days after `d` (the "pause 3 working days" rule).
    pub fn add_working_days(&self, mut d: NaiveDate, n: u32) -> NaiveDate {
        let mut left = n;
        while left > 0 {
            d = d.succ_opt().expect("date in range");
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// The contribution's due date: the 15th of the next month, moved to the
    /// next working day when that is a Sunday or a holiday.
    pub fn due_date(&self, period: super::Period) -> NaiveDate {
        self.roll_forward(period.nominal_due_date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Period;

    fn cal() -> Calendar {
        let h = |d: &str, kind: &str| Holiday {
            date: d.parse().unwrap(),
            kind: kind.into(),
            name: "x".into(),
        };
        Calendar::new(
            vec![h("2026-06-16", "libur"), h("2026-05-15", "cuti_bersama")],
            true,
            true,
        )
    }

    #[test]
    fn due_date_on_sunday_rolls_to_monday() {
        // 15 February 2026 is a Sunday (January's contribution).
        assert_eq!(
            cal().due_date(Period::parse("2026-01").unwrap()),
            "2026-02-16".parse::<NaiveDate>().unwrap()
        );
    }

    #[test]
    fn due_date_on_holiday_rolls_past_it() {
        // 15 June 2026 is a Monday; 16 June is Tahun Baru Islam in this calendar... use May:
        // 15 May 2026 (Friday) is cuti bersama → Saturday 16 May is a working day.
        assert_eq!(
            cal().due_date(Period::parse("2026-04").unwrap()),
            "2026-05-16".parse::<NaiveDate>().unwrap()
        );
        let no_sat = Calendar::new(vec![], true, false);
        // 15 August 2026 is a Saturday → Monday 17 when Saturdays are off.
        assert_eq!(
            no_sat.due_date(Period::parse("2026-07").unwrap()),
            "2026-08-17".parse::<NaiveDate>().unwrap()
        );
    }

    #[test]
    fn counts_working_days() {
        // Friday 12 June 2026 + 3 working days: Sat 13, Mon 15, (Tue 16 holiday), Wed 17.
        assert_eq!(
            cal().add_working_days("2026-06-12".parse().unwrap(), 3),
            "2026-06-17".parse::<NaiveDate>().unwrap()
        );
    }
}
