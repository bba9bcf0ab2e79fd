//! The case as officers, the API and `wa-smile case show` see it: the
//! employer, the bills with late fees, totals and the case log.

use crate::case_log::{self, Event};
use crate::domain::{Money, Policy};
use crate::store::Db;
use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseView {
    pub id: i64,
    pub status: String,
    pub stage: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub assignee: Option<String>,
    pub paused_until: Option<DateTime<Utc>>,
    pub promised_date: Option<NaiveDate>,
    /// Why the bot is silent right now, if it is.
    pub quiet_reason: Option<String>,
    /// When the bot will next act on its own.
    pub next_action_at: Option<DateTime<Utc>>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub employer: EmployerView,
    pub bills: Vec<BillView>,
    pub totals: Totals,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EmployerView {
    pub id: i64,
    pub npp: String,
    pub name: String,
    pub branch: String,
    pub wa_id: Option<String>,
    pub contact_name: String,
    pub timezone: String,
    pub opted_out_at: Option<DateTime<Utc>>,
    pub contact_invalid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BillView {
    pub period: String,
    pub amount: Money,
    pub due_date: NaiveDate,
    pub payment_code: Option<String>,
    pub paid: Money,
    pub settled_at: Option<DateTime<Utc>>,
    /// SMILE's figure when supplied, otherwise the bot's estimate.
    pub late_fee: Money,
    pub late_fee_estimated: bool,
    pub overdue: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    /// Unpaid contribution of overdue bills.
    pub arrears: Money,
    pub late_fees: Money,
    pub paid: Money,
    pub total_due: Money,
}

/// The employer's current case, or else its latest one.
pub async fn case_id_for_npp(db: &Db, npp: &str) -> Result<Option<i64>> {
    let row = db
        .query(
            "SELECT c.id FROM cases c JOIN employers e ON e.id = c.employer_id WHERE e.npp = $1 \
             ORDER BY (c.resolved_at IS NULL) DESC, c.opened_at DESC, c.id DESC LIMIT 1",
        )
        .bind(npp.to_owned())
        .fetch_optional(db)
        .await?;
    row.map(|r| r.get("id")).transpose()
}

/// Loads a case with everything a reader needs, as of `at`.
pub async fn load(
    db: &Db,
    policy: &Policy,
    case_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<CaseView>> {
    let Some(c) = db
        .query(
            "SELECT c.id, c.status, c.stage, c.opened_at, c.resolved_at, c.resolution, c.assignee, c.paused_until, \
                    c.promised_date, c.quiet_reason, c.next_action_at, c.last_inbound_at, \
                    e.id AS employer_id, e.npp, e.name, e.branch, e.wa_id, e.contact_name, e.timezone, e.opted_out_at, e.contact_invalid_at \
             FROM cases c JOIN employers e ON e.id = c.employer_id WHERE c.id = $1",
        )
        .bind(case_id)
        .fetch_optional(db)
        .await?
    else {
        return Ok(None);
    };
    let employer = EmployerView {
        id: c.get("employer_id")?,
        npp: c.get("npp")?,
        name: c.get("name")?,
        branch: c.get("branch")?,
        wa_id: c.get("wa_id")?,
        contact_name: c.get("contact_name")?,
        timezone: c.get("timezone")?,
        opted_out_at: c.get("opted_out_at")?,
        contact_invalid_at: c.get("contact_invalid_at")?,
    };
    let tz: Tz = employer
        .timezone
        .parse()
        .unwrap_or(chrono_tz::Asia::Jakarta);
    let today = at.with_timezone(&tz).date_naive();
    let rows = db
        .query(
            "SELECT period, amount_minor, due_date, payment_code, late_fee_minor, paid_minor, settled_at \
             FROM bills WHERE employer_id = $1 ORDER BY period",
        )
        .bind(employer.id)
        .fetch_all(db)
        .await?;
    let mut bills = Vec::with_capacity(rows.len());
    let mut totals = Totals::default();
    for r in rows {
        let amount = Money::from_minor(r.get("amount_minor")?);
        let paid = Money::from_minor(r.get("paid_minor")?);
        let due_date: NaiveDate = r.get("due_date")?;
        let settled_at: Option<DateTime<Utc>> = r.get("settled_at")?;
        let smile_fee: Option<i64> = r.get("late_fee_minor")?;
        let overdue = settled_at.is_none() && due_date < today;
        // The estimate runs to the payment that settled the bill, or today.
        let fee_until = settled_at
            .map(|s| s.with_timezone(&tz).date_naive())
            .unwrap_or(today);
        let (late_fee, late_fee_estimated) = match smile_fee {
            Some(f) => (Money::from_minor(f), false),
            None => (
                policy.late_fee(amount.saturating_sub(paid), due_date, fee_until),
                true,
            ),
        };
        if overdue {
            totals.arrears = totals.arrears + amount.saturating_sub(paid);
        }
        totals.late_fees = totals.late_fees + late_fee;
        totals.paid = totals.paid + paid;
        bills.push(BillView {
            period: r.get("period")?,
            amount,
            due_date,
            payment_code: r.get("payment_code")?,
            paid,
            settled_at,
            late_fee,
            late_fee_estimated,
            overdue,
        });
    }
    totals.total_due = totals.arrears + totals.late_fees;
    let events = case_log::for_case(db, case_id).await?;
    Ok(Some(CaseView {
        id: c.get("id")?,
        status: c.get("status")?,
        stage: c.get("stage")?,
        opened_at: c.get("opened_at")?,
        resolved_at: c.get("resolved_at")?,
        resolution: c.get("resolution")?,
        assignee: c.get("assignee")?,
        paused_until: c.get("paused_until")?,
        promised_date: c.get("promised_date")?,
        quiet_reason: c.get("quiet_reason")?,
        next_action_at: c.get("next_action_at")?,
        last_inbound_at: c.get("last_inbound_at")?,
        employer,
        bills,
        totals,
        events,
    }))
}
