//! The case as officers, the API and `wa-smile case show` see it: the
//! employer, the bills with late fees, totals and the case log.

use super::figures::{figures, BillLine};
use super::{CaseRow, CASE_COLUMNS};
use crate::case_log::{self, Event};
use crate::domain::{Money, Policy};
use crate::store::{Db, Zone};
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
    /// Why reminders wait for an officer, if they do.
    pub officer_hold: Option<String>,
    /// The employer's own "already paid" claim, awaiting its payment.
    pub payment_claimed_at: Option<DateTime<Utc>>,
    pub employer: EmployerView,
    pub bills: Vec<BillView>,
    pub totals: Totals,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct EmployerView {
    pub id: i64,
    pub npp: String,
    pub name: String,
    pub branch: String,
    pub wa_id: Option<String>,
    pub contact_name: String,
    pub timezone: Zone,
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

/// The zone of the case's employer, in which the times of its
/// conversation are shown (`None`: no such case).
pub async fn employer_zone(db: &Db, case_id: i64) -> Result<Option<Tz>> {
    // Decoded as the store's `Zone`, as the case page's employer row is: one
    // parse of a stored zone, no fallback of its own.
    let zone: Option<Zone> = db
        .query("SELECT e.timezone FROM cases c JOIN employers e ON e.id = c.employer_id WHERE c.id = $1")
        .bind(case_id)
        .fetch_optional_scalar(db)
        .await?;
    Ok(zone.map(|z| z.0))
}

/// The employer's current case, or else its latest one.
pub async fn case_id_for_npp(db: &Db, npp: &str) -> Result<Option<i64>> {
    Ok(db
        .query(
            "SELECT c.id FROM cases c JOIN employers e ON e.id = c.employer_id WHERE e.npp = $1 \
             ORDER BY (c.resolved_at IS NULL) DESC, c.opened_at DESC, c.id DESC LIMIT 1",
        )
        .bind(npp.to_owned())
        .fetch_optional_scalar(db)
        .await?)
}

#[derive(sqlx::FromRow)]
struct BillRow {
    period: String,
    payment_code: Option<String>,
    #[sqlx(flatten)]
    line: BillLine,
}

/// Loads a case with everything a reader needs, as of `at`.
pub async fn load(
    db: &Db,
    policy: &Policy,
    case_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<CaseView>> {
    let Some(mut view) = load_head(db, policy, case_id, at).await? else {
        return Ok(None);
    };
    view.events = case_log::for_case(db, case_id).await?;
    Ok(Some(view))
}

/// [`load`] without the case log (`events` empty): the case page reads its
/// log a page at a time.
pub async fn load_head(
    db: &Db,
    policy: &Policy,
    case_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<CaseView>> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM cases c WHERE c.id = $1");
    let Some(c) = db
        .query(&sql)
        .bind(case_id)
        .fetch_optional_as::<CaseRow>(db)
        .await?
    else {
        return Ok(None);
    };
    let employer: EmployerView = db
        .query(
            "SELECT id, npp, name, branch, wa_id, contact_name, timezone, opted_out_at, contact_invalid_at \
             FROM employers WHERE id = $1",
        )
        .bind(c.employer_id)
        .fetch_one_as(db)
        .await?;
    let tz: Tz = employer.timezone.0;
    let rows: Vec<BillRow> = db
        .query(
            "SELECT period, amount_minor, due_date, payment_code, late_fee_minor, paid_minor, settled_at \
             FROM bills WHERE employer_id = $1 ORDER BY period",
        )
        .bind(employer.id)
        .fetch_all_as(db)
        .await?;
    let lines: Vec<BillLine> = rows.iter().map(|r| r.line.clone()).collect();
    let (fig, each) = figures(&lines, at, tz, Some(policy));
    let bills = rows
        .into_iter()
        .zip(each)
        .map(|(r, f)| BillView {
            period: r.period,
            amount: r.line.amount,
            due_date: r.line.due_date,
            payment_code: r.payment_code,
            paid: r.line.paid,
            settled_at: r.line.settled_at,
            late_fee: f.late_fee,
            late_fee_estimated: f.late_fee_estimated,
            overdue: f.overdue,
        })
        .collect();
    let totals = Totals {
        arrears: fig.arrears,
        late_fees: fig.late_fees,
        paid: fig.paid,
        total_due: fig.total_due(),
    };
    Ok(Some(CaseView {
        id: c.id,
        status: c.status.as_str().to_owned(),
        stage: c.stage.as_str().to_owned(),
        opened_at: c.opened_at,
        resolved_at: c.resolved_at,
        resolution: c.resolution,
        assignee: c.assignee,
        paused_until: c.paused_until,
        promised_date: c.promised_date,
        quiet_reason: c.quiet_reason.map(|q| q.as_str().to_owned()),
        next_action_at: c.next_action_at,
        last_inbound_at: c.last_inbound_at,
        officer_hold: c.officer_hold,
        payment_claimed_at: c.payment_claimed_at,
        employer,
        bills,
        totals,
        events: Vec::new(),
    }))
}
