//! Indonesian formatting for templates: the filters `rupiah`, `tanggal`,
//! `tanggal_pendek`, `bulan` and `rincian`, and the test `zero`.

use crate::domain::{Money, Period};
use chrono::{Datelike, NaiveDate, Weekday};
use minijinja::{Error, ErrorKind, Value};
use rust_decimal::Decimal;
use std::str::FromStr;

const MONTHS: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];

pub fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Senin",
        Weekday::Tue => "Selasa",
        Weekday::Wed => "Rabu",
        Weekday::Thu => "Kamis",
        Weekday::Fri => "Jumat",
        Weekday::Sat => "Sabtu",
        Weekday::Sun => "Minggu",
    }
}

pub fn month_name(month: u32) -> &'static str {
    MONTHS[(month as usize).saturating_sub(1).min(11)]
}

/// `Selasa, 3 Maret 2026`.
pub fn format_tanggal(d: NaiveDate) -> String {
    format!(
        "{}, {} {} {}",
        day_name(d.weekday()),
        d.day(),
        month_name(d.month()),
        d.year()
    )
}

/// `3 Maret 2026`.
pub fn format_tanggal_pendek(d: NaiveDate) -> String {
    format!("{} {} {}", d.day(), month_name(d.month()), d.year())
}

/// Indonesia's zone names: `WIB`, `WITA`, `WIT` (others as tz names it).
pub fn zone_name(tz: chrono_tz::Tz) -> String {
    use chrono_tz::Asia;
    match tz {
        Asia::Jakarta | Asia::Pontianak => "WIB".into(),
        Asia::Makassar => "WITA".into(),
        Asia::Jayapura => "WIT".into(),
        other => other.name().to_owned(),
    }
}

/// `10.00 WIB`.
pub fn format_jam(t: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    format!("{} {}", t.with_timezone(&tz).format("%H.%M"), zone_name(tz))
}

/// `Selasa, 3 Maret 2026 10.00 WIB`: the one way the UI writes an instant.
pub fn format_waktu(t: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    format!(
        "{} {}",
        format_tanggal(t.with_timezone(&tz).date_naive()),
        format_jam(t, tz)
    )
}

/// `Maret 2026`.
pub fn format_bulan(p: Period) -> String {
    format!("{} {}", month_name(p.month()), p.year())
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// Money reaches templates as a decimal string (how `Money` serialises);
/// integers are accepted for convenience, floats never.
fn amount(value: &Value, filter: &str) -> Result<Money, Error> {
    let decimal = if let Some(s) = value.as_str() {
        Decimal::from_str(s.trim())
            .map_err(|_| invalid(format!("{filter}: `{s}` is not an amount")))?
    } else if let Some(i) = value.as_i64().filter(|_| value.is_integer()) {
        Decimal::from(i)
    } else {
        return Err(invalid(format!(
            "{filter}: expected an amount as a decimal string, got {} ({value})",
            value.kind()
        )));
    };
    Ok(Money::from_decimal(decimal))
}

pub fn rupiah(value: &Value) -> Result<String, Error> {
    amount(value, "rupiah").map(|m| m.to_rupiah_string())
}

/// The test `is zero`, for amounts: `{% if totals.late_fee is not zero %}`.
pub fn is_zero(value: &Value) -> Result<bool, Error> {
    amount(value, "zero").map(|m| m.is_zero())
}

fn date_of(value: &Value, filter: &str) -> Result<NaiveDate, Error> {
    let s = value
        .as_str()
        .ok_or_else(|| invalid(format!("{filter}: expected a date, got {}", value.kind())))?;
    // A timestamp's date part is enough: callers pass local dates.
    let day = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| invalid(format!("{filter}: `{s}` is not a date (YYYY-MM-DD)")))
}

pub fn tanggal(value: &Value) -> Result<String, Error> {
    date_of(value, "tanggal").map(format_tanggal)
}

pub fn tanggal_pendek(value: &Value) -> Result<String, Error> {
    date_of(value, "tanggal_pendek").map(format_tanggal_pendek)
}

/// A period (`2026-03`) or a date (`2026-03-03`) as `Maret 2026`.
pub fn bulan(value: &Value) -> Result<String, Error> {
    let s = value
        .as_str()
        .ok_or_else(|| invalid(format!("bulan: expected a period, got {}", value.kind())))?;
    Period::parse(s.get(..7).unwrap_or(s))
        .map(format_bulan)
        .map_err(|_| invalid(format!("bulan: `{s}` is not a period (YYYY-MM)")))
}

/// Bills on one line, for template parameters (which cannot hold new
/// lines): `Desember 2025: iuran Rp12.500.000, denda Rp500.000; Januari
/// 2026: iuran Rp12.750.000, denda Rp255.000 (perkiraan)`.
pub fn rincian(bills: &Value) -> Result<String, Error> {
    let iter = bills.try_iter().map_err(|_| {
        invalid(format!(
            "rincian: expected a list of bills, got {}",
            bills.kind()
        ))
    })?;
    let mut items = Vec::new();
    for bill in iter {
        let field = |name: &str| {
            bill.get_attr(name)
                .ok()
                .filter(|v| !v.is_undefined())
                .ok_or_else(|| invalid(format!("rincian: a bill has no `{name}`")))
        };
        let mut item = format!(
            "{}: iuran {}",
            bulan(&field("period")?)?,
            rupiah(&field("outstanding")?)?
        );
        let fee = amount(&field("late_fee")?, "rincian")?;
        if !fee.is_zero() {
            item.push_str(&format!(", denda {}", fee.to_rupiah_string()));
            if field("late_fee_estimated")?.is_true() {
                item.push_str(" (perkiraan)");
            }
        }
        items.push(item);
    }
    Ok(items.join("; "))
}

pub fn register(env: &mut minijinja::Environment<'_>) {
    env.add_filter("rincian", |v: Value| rincian(&v));
    env.add_filter("rupiah", |v: Value| rupiah(&v));
    env.add_filter("tanggal", |v: Value| tanggal(&v));
    env.add_filter("tanggal_pendek", |v: Value| tanggal_pendek(&v));
    env.add_filter("bulan", |v: Value| bulan(&v));
    env.add_test("zero", |v: Value| is_zero(&v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupiah_uses_dots_for_thousands_and_no_space() {
        assert_eq!(rupiah(&Value::from("1234567")).unwrap(), "Rp1.234.567");
        assert_eq!(rupiah(&Value::from("1234567.5")).unwrap(), "Rp1.234.567,50");
        assert_eq!(rupiah(&Value::from("0")).unwrap(), "Rp0");
        assert_eq!(rupiah(&Value::from(250_000)).unwrap(), "Rp250.000");
        assert_eq!(
            rupiah(&Value::from(minijinja::value::Serde(Money::from_rupiah(
                25_250_000
            ))))
            .unwrap(),
            "Rp25.250.000"
        );
    }

    #[test]
    fn rupiah_refuses_floats_and_words() {
        assert!(rupiah(&Value::from(1.5)).is_err());
        assert!(rupiah(&Value::from("satu juta")).is_err());
        assert!(rupiah(&Value::from(())).is_err());
    }

    #[test]
    fn zero_tests_amounts_not_strings() {
        assert!(is_zero(&Value::from("0")).unwrap());
        assert!(is_zero(&Value::from("0.00")).unwrap());
        assert!(!is_zero(&Value::from("0.01")).unwrap());
        assert!(is_zero(&Value::from("nol")).is_err());
    }

    #[test]
    fn tanggal_names_the_day_and_month_in_indonesian() {
        assert_eq!(
            tanggal(&Value::from("2026-03-03")).unwrap(),
            "Selasa, 3 Maret 2026"
        );
        assert_eq!(
            tanggal(&Value::from("2026-08-17")).unwrap(),
            "Senin, 17 Agustus 2026"
        );
        assert_eq!(
            tanggal(&Value::from("2026-02-15T10:00:00+07:00")).unwrap(),
            "Minggu, 15 Februari 2026"
        );
        assert_eq!(
            tanggal_pendek(&Value::from("2026-01-15")).unwrap(),
            "15 Januari 2026"
        );
        assert!(tanggal(&Value::from("3/3/2026")).is_err());
    }

    #[test]
    fn waktu_names_the_day_and_the_zone() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-03T03:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            format_waktu(t, chrono_tz::Asia::Jakarta),
            "Selasa, 3 Maret 2026 10.00 WIB"
        );
        assert_eq!(format_jam(t, chrono_tz::Asia::Makassar), "11.00 WITA");
        assert_eq!(format_jam(t, chrono_tz::Asia::Jayapura), "12.00 WIT");
    }

    #[test]
    fn bulan_names_a_period() {
        assert_eq!(bulan(&Value::from("2026-03")).unwrap(), "Maret 2026");
        assert_eq!(bulan(&Value::from("2025-12-01")).unwrap(), "Desember 2025");
        assert!(bulan(&Value::from("2026-13")).is_err());
    }
}
