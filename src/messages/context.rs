//! The data a message is rendered from: plain values the caller fills from
//! the case, its employer and bills. Totals are derived here, not supplied,
//! so a message can never quote a total that disagrees with its lines.

use crate::config::ContactConfig;
use crate::domain::{Money, Period, Policy};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Everything any message template may mention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageContext {
    /// The employer's local date when the message is rendered.
    pub today: NaiveDate,
    /// Suffixed to button payloads (`PAID:42`) so a tap finds its case.
    pub case_id: i64,
    pub employer_name: String,
    /// The PIC keuangan/HRD; `None` makes the salutation address the
    /// company's management instead.
    pub contact_name: Option<String>,
    pub npp: String,
    pub branch: BranchContact,
    /// The case's bills, oldest first; settled ones may be included (a
    /// thank-you lists them).
    pub bills: Vec<BillLine>,
    /// The kode iuran to pay with, when SMILE issued one (for several
    /// bills, the caller picks the one to quote, usually the oldest's).
    pub payment_code: Option<String>,
    pub payment_link: Option<String>,
    pub promised_date: Option<NaiveDate>,
}

/// Whom the employer should contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BranchContact {
    pub name: String,
    pub phone: String,
    /// May be empty; templates then leave it out.
    pub address: String,
}

impl From<ContactConfig> for BranchContact {
    fn from(c: ContactConfig) -> Self {
        Self {
            name: c.name,
            phone: c.phone,
            address: c.address,
        }
    }
}

/// One period's contribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillLine {
    pub period: Period,
    pub amount: Money,
    pub late_fee: Money,
    /// True when SMILE supplied no late fee and `late_fee` is the bot's
    /// estimate: messages then label it *perkiraan*.
    pub late_fee_estimated: bool,
    pub due_date: NaiveDate,
    /// Paid so far towards `amount`.
    pub paid: Money,
}

/// A `bills` row as a message quotes it: select these columns by name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredBill {
    pub period: Period,
    pub amount_minor: Money,
    pub due_date: NaiveDate,
    pub payment_code: Option<String>,
    pub late_fee_minor: Option<Money>,
    pub paid_minor: Money,
    pub settled_at: Option<DateTime<Utc>>,
}

impl StoredBill {
    /// The columns of [`StoredBill`], for a `SELECT`.
    pub const COLUMNS: &'static str =
        "period, amount_minor, due_date, payment_code, late_fee_minor, paid_minor, settled_at";

    /// Its line on the employer's local day `today` in `tz`: SMILE's late
    /// fee, or the policy's estimate up to the day it was settled (or today).
    pub fn line(&self, policy: &Policy, tz: chrono_tz::Tz, today: NaiveDate) -> BillLine {
        let fee_until = self
            .settled_at
            .map(|s| s.with_timezone(&tz).date_naive())
            .unwrap_or(today);
        let (late_fee, late_fee_estimated) = match self.late_fee_minor {
            Some(f) => (f, false),
            None => (
                policy.late_fee(
                    self.amount_minor.saturating_sub(self.paid_minor),
                    self.due_date,
                    fee_until,
                ),
                true,
            ),
        };
        BillLine {
            period: self.period,
            amount: self.amount_minor,
            late_fee,
            late_fee_estimated,
            due_date: self.due_date,
            paid: self.paid_minor,
        }
    }
}

impl BillLine {
    pub fn outstanding(&self) -> Money {
        self.amount.saturating_sub(self.paid)
    }

    pub fn is_settled(&self) -> bool {
        self.outstanding().is_zero()
    }
}

/// Sums over the bills, as templates see them under `totals`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Unpaid contributions.
    pub outstanding: Money,
    /// Late fees of all listed bills (they are billed with the next
    /// contribution, so they remain after the contribution is paid).
    pub late_fee: Money,
    pub amount_due: Money,
    /// Paid so far on the listed bills.
    pub paid: Money,
    /// Some listed late fee is the bot's estimate.
    pub late_fee_estimated: bool,
    /// The oldest due date among unpaid bills (of all bills when every one
    /// is settled).
    pub oldest_due_date: Option<NaiveDate>,
    pub days_overdue: Option<i64>,
}

impl MessageContext {
    pub fn totals(&self) -> Totals {
        let outstanding: Money = self.bills.iter().map(BillLine::outstanding).sum();
        let late_fee: Money = self.bills.iter().map(|b| b.late_fee).sum();
        let unpaid_due = self
            .bills
            .iter()
            .filter(|b| !b.is_settled())
            .map(|b| b.due_date)
            .min();
        let oldest_due_date = unpaid_due.or_else(|| self.bills.iter().map(|b| b.due_date).min());
        Totals {
            outstanding,
            late_fee,
            amount_due: outstanding + late_fee,
            paid: self.bills.iter().map(|b| b.paid).sum(),
            late_fee_estimated: self
                .bills
                .iter()
                .any(|b| b.late_fee_estimated && !b.late_fee.is_zero()),
            oldest_due_date,
            days_overdue: oldest_due_date.map(|d| (self.today - d).num_days()),
        }
    }

    /// A complete context (every optional value present) for start-up checks,
    /// previews and tests: Tuesday 3 March 2026, two overdue months, one late
    /// fee from SMILE and one estimated.
    pub fn sample() -> Self {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid sample date");
        let period = |p| Period::parse(p).expect("valid sample period");
        Self {
            today: date(2026, 3, 3),
            case_id: 42,
            employer_name: "PT Sinar Riau Abadi".into(),
            contact_name: Some("Budi Santoso".into()),
            npp: "19010021".into(),
            branch: BranchContact {
                name: "BPJS Ketenagakerjaan Cabang Pekanbaru Kota".into(),
                phone: "0761-123456".into(),
                address: "Jl. Jenderal Sudirman No. 1, Pekanbaru".into(),
            },
            bills: vec![
                BillLine {
                    period: period("2025-12"),
                    amount: Money::from_rupiah(12_500_000),
                    late_fee: Money::from_rupiah(500_000),
                    late_fee_estimated: false,
                    due_date: date(2026, 1, 15),
                    paid: Money::ZERO,
                },
                BillLine {
                    period: period("2026-01"),
                    amount: Money::from_rupiah(12_750_000),
                    late_fee: Money::from_rupiah(255_000),
                    late_fee_estimated: true,
                    due_date: date(2026, 2, 16),
                    paid: Money::ZERO,
                },
            ],
            payment_code: Some("12345678901".into()),
            payment_link: Some("https://bayar.example/iuran/19010021?ref=C42".into()),
            promised_date: Some(date(2026, 3, 6)),
        }
    }

    /// The sample with every optional value absent and a single bill: the
    /// other branch of each `{% if %}`, checked at start-up too.
    pub fn sample_minimal() -> Self {
        let mut ctx = Self::sample();
        ctx.contact_name = None;
        ctx.payment_code = None;
        ctx.payment_link = None;
        ctx.promised_date = None;
        ctx.branch.address = String::new();
        ctx.bills.truncate(1);
        ctx
    }

    /// Whether an optional value a template `requires` is present.
    pub(crate) fn has(&self, field: &str) -> Option<bool> {
        Some(match field {
            "contact_name" => self.contact_name.is_some(),
            "payment_code" => self.payment_code.is_some(),
            "payment_link" => self.payment_link.is_some(),
            "promised_date" => self.promised_date.is_some(),
            _ => return None,
        })
    }

    /// Copies an optional value from `other` (used to satisfy `requires`
    /// when checking templates against the minimal sample).
    pub(crate) fn take_field(&mut self, field: &str, other: &MessageContext) {
        match field {
            "contact_name" => self.contact_name.clone_from(&other.contact_name),
            "payment_code" => self.payment_code.clone_from(&other.payment_code),
            "payment_link" => self.payment_link.clone_from(&other.payment_link),
            "promised_date" => self.promised_date = other.promised_date,
            _ => {}
        }
    }

    /// What templates see: the context plus derived per-bill values and
    /// totals.
    pub(crate) fn view(&self) -> View<'_> {
        let bills: Vec<BillView> = self.bills.iter().map(BillView::new).collect();
        View {
            today: self.today,
            case_id: self.case_id,
            employer_name: &self.employer_name,
            contact_name: self.contact_name.as_deref().map(without_salutation),
            sapaan: greeting(self.contact_name.as_deref(), &self.employer_name),
            npp: &self.npp,
            branch: &self.branch,
            unpaid: bills.iter().filter(|b| !b.settled).cloned().collect(),
            settled: bills.iter().filter(|b| b.settled).cloned().collect(),
            bills,
            payment_code: self.payment_code.as_deref(),
            payment_link: self.payment_link.as_deref(),
            promised_date: self.promised_date,
            totals: self.totals(),
        }
    }
}

/// Whom a message addresses, after "Yth.": a PIC stored with an honorific
/// keeps it, written out ("Pak Agus" → "Bapak Agus"); one without gets
/// "Bapak/Ibu" ("Bapak/Ibu Sari"); no PIC addresses the company's
/// management ("Bapak/Ibu Pimpinan PT …"). Never two honorifics.
pub fn greeting(contact_name: Option<&str>, employer_name: &str) -> String {
    let Some(name) = contact_name.map(str::trim).filter(|n| !n.is_empty()) else {
        return format!("Bapak/Ibu Pimpinan {}", employer_name.trim());
    };
    let rest = without_salutation(name);
    if rest.len() == name.len() {
        return format!("Bapak/Ibu {name}");
    }
    let first = name.split_whitespace().next().unwrap_or("").to_lowercase();
    let honorific = match first.as_str() {
        "ibu" | "bu" => "Ibu",
        "sdr." | "saudara" => "Saudara",
        "sdri." | "saudari" => "Saudari",
        _ => "Bapak",
    };
    format!("{honorific} {rest}")
}

/// The name without a leading "Bapak"/"Ibu" (or "Pak", "Bu", "Bpk.",
/// "Sdr."): every message greets "Bapak/Ibu {name}", and SMILE writes PICs
/// both with and without one. Titles such as "dr." or "Hj." stay.
fn without_salutation(name: &str) -> &str {
    const SALUTATIONS: [&str; 10] = [
        "bapak", "bpk.", "bpk", "pak", "ibu", "bu", "sdr.", "sdri.", "saudara", "saudari",
    ];
    let trimmed = name.trim();
    let Some((first, rest)) = trimmed.split_once(char::is_whitespace) else {
        return trimmed;
    };
    let rest = rest.trim_start();
    if SALUTATIONS.contains(&first.to_lowercase().as_str()) && !rest.is_empty() {
        rest
    } else {
        trimmed
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct View<'a> {
    today: NaiveDate,
    case_id: i64,
    employer_name: &'a str,
    contact_name: Option<&'a str>,
    /// Whom the message addresses, with one honorific ([`greeting`]).
    sapaan: String,
    npp: &'a str,
    branch: &'a BranchContact,
    bills: Vec<BillView>,
    unpaid: Vec<BillView>,
    settled: Vec<BillView>,
    payment_code: Option<&'a str>,
    payment_link: Option<&'a str>,
    promised_date: Option<NaiveDate>,
    totals: Totals,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BillView {
    period: Period,
    amount: Money,
    late_fee: Money,
    late_fee_estimated: bool,
    due_date: NaiveDate,
    paid: Money,
    outstanding: Money,
    settled: bool,
}

impl BillView {
    fn new(b: &BillLine) -> Self {
        Self {
            period: b.period,
            amount: b.amount,
            late_fee: b.late_fee,
            late_fee_estimated: b.late_fee_estimated,
            due_date: b.due_date,
            paid: b.paid,
            outstanding: b.outstanding(),
            settled: b.is_settled(),
        }
    }
}
