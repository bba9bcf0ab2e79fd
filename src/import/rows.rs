//! One CSV (or API) row per kind, parsed into domain values. Each failure
//! names its column so the caller can print `line N, column NAME: reason`.

use crate::config::parse_zone;
use crate::domain::{Calendar, Money, Npp, ParseError, Period, WaId};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// A problem with one cell (or a whole row, with column `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.reason
        )
    }
}

/// Cells of one row by column name.
pub struct RawRow<'a> {
    pub line: u64,
    pub cells: HashMap<&'a str, &'a str>,
}

impl RawRow<'_> {
    fn cell(&self, column: &str) -> &str {
        self.cells.get(column).map(|s| s.trim()).unwrap_or("")
    }

    fn err(&self, column: &str, e: impl Into<String>) -> RowError {
        RowError {
            line: self.line,
            column: column.to_owned(),
            reason: e.into(),
        }
    }

    fn required<T>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, RowError> {
        let raw = self.cell(column);
        if raw.is_empty() {
            return Err(self.err(column, "required value is empty"));
        }
        parse(raw).map_err(|e| self.err(column, cut_value(e.0, raw)))
    }

    fn optional<T>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, RowError> {
        let raw = self.cell(column);
        if raw.is_empty() {
            return Ok(None);
        }
        parse(raw)
            .map(Some)
            .map_err(|e| self.err(column, cut_value(e.0, raw)))
    }
}

/// Values longer than this are cut in error messages: one bad 5 MB cell
/// must not become a 5 MB line on stderr.
const SHOWN_VALUE_CHARS: usize = 40;

/// `reason` with the cell's value, where it quotes it, cut to its first
/// `SHOWN_VALUE_CHARS` characters and `…`.
fn cut_value(reason: String, raw: &str) -> String {
    match raw.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((end, _)) => reason.replace(raw, &format!("{}…", &raw[..end])),
        None => reason,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Employers,
    Bills,
    Payments,
}

impl Kind {
    pub fn required_columns(&self) -> &'static [&'static str] {
        match self {
            Kind::Employers => &["npp", "name", "branch", "wa_phone", "contact_name"],
            Kind::Bills => &["npp", "period", "amount"],
            Kind::Payments => &["npp", "period", "amount", "paid_at", "reference"],
        }
    }

    /// Every column this kind reads (the rest of a file's columns are ignored).
    pub fn read_columns(&self) -> &'static [&'static str] {
        match self {
            Kind::Employers => &[
                "npp",
                "name",
                "branch",
                "wa_phone",
                "contact_name",
                "timezone",
            ],
            Kind::Bills => &[
                "npp",
                "period",
                "amount",
                "due_date",
                "payment_code",
                "late_fee",
            ],
            Kind::Payments => &["npp", "period", "amount", "paid_at", "reference"],
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Employers => "employers",
            Kind::Bills => "bills",
            Kind::Payments => "payments",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "employers" => Ok(Kind::Employers),
            "bills" => Ok(Kind::Bills),
            "payments" => Ok(Kind::Payments),
            other => Err(format!(
                "unknown import kind `{other}` (employers, bills or payments)"
            )),
        }
    }
}

impl crate::store::TextColumn for Kind {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

crate::store_column!(text: Kind);

#[derive(Debug, Clone, PartialEq)]
pub struct EmployerRow {
    pub npp: Npp,
    pub name: String,
    pub branch: String,
    pub wa_id: Option<WaId>,
    pub contact_name: String,
    pub timezone: Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BillRow {
    pub npp: Npp,
    pub period: Period,
    pub amount: Money,
    pub due_date: NaiveDate,
    pub payment_code: Option<String>,
    pub late_fee: Option<Money>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRow {
    pub npp: Npp,
    pub period: Period,
    pub amount: Money,
    pub paid_at: DateTime<Utc>,
    pub reference: String,
}

fn text(max: usize, what: &'static str) -> impl Fn(&str) -> Result<String, ParseError> {
    move |s: &str| {
        if s.chars().count() > max {
            Err(ParseError::new(format!(
                "{what} is longer than {max} characters"
            )))
        } else if s.chars().any(char::is_control) {
            Err(ParseError::new(format!(
                "{what} contains control characters"
            )))
        } else {
            Ok(s.to_owned())
        }
    }
}

/// Longest employer or contact name accepted.
pub const MAX_NAME_CHARS: usize = 200;

/// A contact name, from a CSV row or an officer's form alike.
pub fn contact_name(s: &str) -> Result<String, ParseError> {
    text(MAX_NAME_CHARS, "the contact name")(s)
}

/// A bill of nothing is not arrears: it would only send a "Rp0" reminder.
fn positive_amount(s: &str) -> Result<Money, ParseError> {
    let amount = Money::parse(s)?;
    if amount.minor() > 0 {
        Ok(amount)
    } else {
        Err(ParseError::new(format!(
            "`{s}` is not a bill amount (it must be more than 0)"
        )))
    }
}

fn date(s: &str) -> Result<NaiveDate, ParseError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ParseError::new(format!("`{s}` is not a date (YYYY-MM-DD)")))
}

fn instant(s: &str) -> Result<DateTime<Utc>, ParseError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| crate::time::truncate(t.with_timezone(&Utc)))
        .map_err(|_| {
            ParseError::new(format!(
                "`{s}` is not an RFC 3339 time (e.g. 2026-03-03T10:15:00+07:00)"
            ))
        })
}

fn payment_code(s: &str) -> Result<String, ParseError> {
    if s.len() == 11 && s.chars().all(|c| c.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err(ParseError::new(format!(
            "`{s}` is not a kode iuran (11 digits)"
        )))
    }
}

fn reference(s: &str) -> Result<String, ParseError> {
    if s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        Ok(s.to_owned())
    } else {
        Err(ParseError::new(format!(
            "`{s}` is not a payment reference (up to 64 letters, digits, - _ . / :)"
        )))
    }
}

/// An IANA zone the reminders can be scheduled in. The sending window and
/// the one-a-day cap are local times (08:00, midnight) that must exist on
/// every day: a zone whose clocks jump forward (daylight saving) skips some
/// of them, so it is refused here, with the row, rather than failing later
/// when a reminder is scheduled. A file names few zones, so each verdict is
/// computed once per process.
fn usable_zone(s: &str) -> Result<Tz, ParseError> {
    static VERDICTS: std::sync::LazyLock<std::sync::Mutex<HashMap<Tz, Option<NaiveDate>>>> =
        std::sync::LazyLock::new(Default::default);
    let tz = parse_zone(s).map_err(ParseError::new)?;
    let skipped = *VERDICTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(tz)
        .or_insert_with(|| first_skipped_day(tz));
    match skipped {
        None => Ok(tz),
        Some(day) => Err(ParseError::new(format!(
            "`{s}` skips local times when its clocks go forward (on {day}, for one), so reminders cannot be scheduled in it; use a zone without daylight saving (Asia/Jakarta, Asia/Makassar, Asia/Jayapura)"
        ))),
    }
}

/// The first day from 2020 to 2100 on which `tz`'s offset from UTC grows,
/// i.e. its local clock skips forward: the span reminders may be scheduled
/// in (a zone that dropped daylight saving before 2020 is usable today).
fn first_skipped_day(tz: Tz) -> Option<NaiveDate> {
    use chrono::{Offset, TimeZone};
    let offset = |t: &chrono::NaiveDateTime| tz.offset_from_utc_datetime(t).fix().local_minus_utc();
    let mut day = NaiveDate::from_ymd_opt(2020, 1, 1)?.and_hms_opt(0, 0, 0)?;
    let end = NaiveDate::from_ymd_opt(2100, 1, 1)?.and_hms_opt(0, 0, 0)?;
    let mut before = offset(&day);
    while day < end {
        day += chrono::TimeDelta::days(1);
        let now = offset(&day);
        if now > before {
            return Some(tz.from_utc_datetime(&day).date_naive());
        }
        before = now;
    }
    None
}

/// Parses every cell and reports all of the row's problems, not just the first.
fn collect<T>(errors: &mut Vec<RowError>, r: Result<T, RowError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

pub fn employer(row: &RawRow, default_tz: Tz) -> Result<EmployerRow, Vec<RowError>> {
    let mut errs = Vec::new();
    let npp = collect(&mut errs, row.required("npp", Npp::parse));
    let name = collect(
        &mut errs,
        row.required("name", text(MAX_NAME_CHARS, "the name")),
    );
    let branch = collect(&mut errs, row.required("branch", text(64, "the branch")));
    let wa_id = collect(&mut errs, row.optional("wa_phone", WaId::parse));
    let contact_name = collect(&mut errs, row.optional("contact_name", contact_name));
    let timezone = collect(&mut errs, row.optional("timezone", usable_zone));
    match (npp, name, branch, wa_id, contact_name, timezone) {
        (Some(npp), Some(name), Some(branch), Some(wa_id), Some(contact_name), Some(timezone))
            if errs.is_empty() =>
        {
            Ok(EmployerRow {
                npp,
                name,
                branch,
                wa_id,
                contact_name: contact_name.unwrap_or_default(),
                timezone: timezone.unwrap_or(default_tz),
            })
        }
        _ => Err(errs),
    }
}

pub fn bill(row: &RawRow, calendar: &Calendar) -> Result<BillRow, Vec<RowError>> {
    let mut errs = Vec::new();
    let npp = collect(&mut errs, row.required("npp", Npp::parse));
    let period = collect(&mut errs, row.required("period", Period::parse));
    let amount = collect(&mut errs, row.required("amount", positive_amount));
    let due_date = collect(&mut errs, row.optional("due_date", date));
    let code = collect(&mut errs, row.optional("payment_code", payment_code));
    let late_fee = collect(&mut errs, row.optional("late_fee", Money::parse));
    match (npp, period, amount, due_date, code, late_fee) {
        (
            Some(npp),
            Some(period),
            Some(amount),
            Some(due_date),
            Some(payment_code),
            Some(late_fee),
        ) if errs.is_empty() => Ok(BillRow {
            npp,
            period,
            amount,
            due_date: due_date.unwrap_or_else(|| calendar.due_date(period)),
            payment_code,
            late_fee,
        }),
        _ => Err(errs),
    }
}

pub fn payment(row: &RawRow) -> Result<PaymentRow, Vec<RowError>> {
    let mut errs = Vec::new();
    let npp = collect(&mut errs, row.required("npp", Npp::parse));
    let period = collect(&mut errs, row.required("period", Period::parse));
    let amount = collect(&mut errs, row.required("amount", Money::parse));
    let paid_at = collect(&mut errs, row.required("paid_at", instant));
    let reference = collect(&mut errs, row.required("reference", reference));
    match (npp, period, amount, paid_at, reference) {
        (Some(npp), Some(period), Some(amount), Some(paid_at), Some(reference))
            if errs.is_empty() =>
        {
            Ok(PaymentRow {
                npp,
                period,
                amount,
                paid_at,
                reference,
            })
        }
        _ => Err(errs),
    }
}
