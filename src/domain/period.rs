use super::ParseError;
use chrono::{Datelike, NaiveDate};
use std::fmt;

/// A contribution month, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    month: u32,
}

impl Period {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        let err = || ParseError::new(format!("`{s}` is not a period (YYYY-MM)"));
        let (y, m) = s.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        let year: i32 = y.parse().map_err(|_| err())?;
        let month: u32 = m.parse().map_err(|_| err())?;
        if !(1..=12).contains(&month) || !(2000..=2100).contains(&year) {
            return Err(err());
        }
        Ok(Self { year, month })
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn month(&self) -> u32 {
        self.month
    }

    pub fn first_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid period")
    }

    pub fn next(&self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The nominal due date before working-day adjustment: the 15th of the
    /// following month.
    pub fn nominal_due_date(&self) -> NaiveDate {
        let n = self.next();
        NaiveDate::from_ymd_opt(n.year, n.month, 15).expect("15th exists")
    }

    pub fn of_date(d: NaiveDate) -> Self {
        Self {
            year: d.year(),
            month: d.month(),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rolls_the_year() {
        let p = Period::parse("2025-12").unwrap();
        assert_eq!(p.to_string(), "2025-12");
        assert_eq!(
            p.nominal_due_date(),
            NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
        );
    }

    #[test]
    fn rejects_bad_periods() {
        for bad in ["2025-13", "2025-1", "25-01", "2025/01", "", "2025-00"] {
            assert!(Period::parse(bad).is_err(), "{bad:?}");
        }
    }
}
