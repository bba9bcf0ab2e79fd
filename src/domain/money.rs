use super::ParseError;
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;

/// An amount of rupiah, exact. Stored as integer sen (1/100 rupiah) so that
/// neither backend ever sees a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// A machine decimal as CONTRACT writes it: digits, optionally `.` and up
    /// to two decimals; no sign, separators or currency.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        let err = |why: &str| ParseError::new(format!("`{s}` is not an amount ({why})"));
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int.is_empty() || !int.chars().all(|c| c.is_ascii_digit()) {
            return Err(err(
                "digits with an optional `.` and up to two decimals, e.g. 1250000.50",
            ));
        }
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 2 || !f.chars().all(|c| c.is_ascii_digit()) {
                return Err(err("at most two decimals"));
            }
        }
        if int.len() > 15 {
            return Err(err("too large"));
        }
        let d: Decimal = s.parse().map_err(|_| err("not a number"))?;
        Ok(Self(d))
    }

    pub fn from_decimal(d: Decimal) -> Self {
        Self(d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    pub fn from_minor(sen: i64) -> Self {
        Self(Decimal::new(sen, 2))
    }

    pub fn from_rupiah(rp: i64) -> Self {
        Self(Decimal::from(rp))
    }

    /// Integer sen for storage.
    pub fn minor(&self) -> i64 {
        let scaled = (self.0 * Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        i64::try_from(scaled).expect("amount fits in i64 sen")
    }

    pub fn decimal(&self) -> Decimal {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Rounded to whole rupiah, half up (how late fees are quoted).
    pub fn round_rupiah(&self) -> Self {
        Self(
            self.0
                .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero),
        )
    }

    pub fn saturating_sub(self, other: Money) -> Money {
        if other.0 >= self.0 {
            Money::ZERO
        } else {
            Money(self.0 - other.0)
        }
    }

    /// `Rp1.234.567` (and `,50` when there are sen), as Indonesian readers
    /// expect.
    pub fn to_rupiah_string(&self) -> String {
        let normalized = self.0.round_dp(2).normalize();
        let s = normalized.abs().to_string();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i.to_string(), Some(f.to_string())),
            None => (s, None),
        };
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push('.');
            }
            grouped.push(c);
        }
        let sign = if self.0.is_sign_negative() && !self.0.is_zero() {
            "-"
        } else {
            ""
        };
        match frac {
            Some(f) => format!("{sign}Rp{grouped},{f:0<2}"),
            None => format!("{sign}Rp{grouped}"),
        }
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.round_dp(2).normalize())
    }
}

impl serde::Serialize for Money {
    /// A decimal string (`"1250000.50"`), exact for any JSON reader.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_machine_decimals_only() {
        assert_eq!(Money::parse("1250000").unwrap().minor(), 125_000_000);
        assert_eq!(Money::parse("1250000.5").unwrap().minor(), 125_000_050);
        assert_eq!(Money::parse("0.05").unwrap().minor(), 5);
        for bad in [
            "",
            "1.234.567",
            "1,5",
            "Rp100",
            "-5",
            "1.234",
            "1e5",
            "1.",
            ".5",
        ] {
            assert!(Money::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_rupiah_the_indonesian_way() {
        assert_eq!(
            Money::from_rupiah(1_234_567).to_rupiah_string(),
            "Rp1.234.567"
        );
        assert_eq!(Money::from_rupiah(500).to_rupiah_string(), "Rp500");
        assert_eq!(
            Money::from_minor(123_456_750).to_rupiah_string(),
            "Rp1.234.567,50"
        );
        assert_eq!(Money::ZERO.to_rupiah_string(), "Rp0");
    }

    #[test]
    fn round_trips_through_minor_units() {
        let m = Money::parse("987654321.09").unwrap();
        assert_eq!(Money::from_minor(m.minor()), m);
    }
}
