//! The figures derived from a case's bills — arrears, late fees, the oldest
//! unpaid due date, days overdue — and the copies of them the case list
//! sorts on.
//!
//! [`figures`] is the one place the rule lives: the scan, the case page, the
//! case list's stored columns and the exports all call it. A bill is overdue
//! on the employer's local date, so every caller passes the instant it
//! computes for and the employer's zone, never the database's clock.

use crate::domain::{Money, Policy};
use crate::store::{list_placeholders, rows_per_statement, Tx, Zone};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// One bill as the figures need it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BillLine {
    #[sqlx(rename = "amount_minor")]
    pub amount: Money,
    #[sqlx(rename = "paid_minor")]
    pub paid: Money,
    pub due_date: NaiveDate,
    pub settled_at: Option<DateTime<Utc>>,
    /// SMILE's late fee, when it sent one.
    #[sqlx(rename = "late_fee_minor")]
    pub late_fee: Option<Money>,
}

impl BillLine {
    /// The contribution still unpaid.
    pub fn unpaid(&self) -> Money {
        self.amount.saturating_sub(self.paid)
    }

    /// Whether the bill was still unsettled at `at` (a bill settled later
    /// counts as unsettled for an earlier instant, as exports need).
    pub fn unsettled_at(&self, at: DateTime<Utc>) -> bool {
        self.settled_at.is_none_or(|s| s > at)
    }
}

/// A bill's figures at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BillFigures {
    /// Unsettled and due before the employer's local date.
    pub overdue: bool,
    /// SMILE's figure when supplied, otherwise the bot's estimate.
    pub late_fee: Money,
    pub late_fee_estimated: bool,
}

/// A case's figures at one instant, in the employer's zone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// The employer's local date the figures are for.
    pub today: NaiveDate,
    /// Unpaid contribution of the overdue bills.
    pub arrears: Money,
    /// Late fees of every bill (zero without a policy).
    pub late_fees: Money,
    pub paid: Money,
    /// Bills unsettled and overdue.
    pub overdue_bills: i64,
    /// The earliest due date among the unsettled bills, due or not.
    pub oldest_due_date: Option<NaiveDate>,
}

impl Figures {
    /// Days since the oldest unpaid due date, when it has passed.
    pub fn days_overdue(&self) -> Option<i64> {
        days_overdue(self.oldest_due_date, self.today)
    }

    pub fn total_due(&self) -> Money {
        self.arrears + self.late_fees
    }
}

/// Days from `oldest` to `today`, when positive: what the list shows for a
/// stored oldest due date at the day it is read.
pub fn days_overdue(oldest: Option<NaiveDate>, today: NaiveDate) -> Option<i64> {
    oldest.map(|d| (today - d).num_days()).filter(|d| *d > 0)
}

/// The figures of `bills` at `at` in zone `tz`, and each bill's own. With a
/// policy, late fees are SMILE's when supplied, else estimated to the day
/// the bill was settled or to `at`'s date; without one (the scan, the
/// list's stored columns) they are left at zero.
pub fn figures(
    bills: &[BillLine],
    at: DateTime<Utc>,
    tz: Tz,
    policy: Option<&Policy>,
) -> (Figures, Vec<BillFigures>) {
    let today = at.with_timezone(&tz).date_naive();
    let mut f = Figures {
        today,
        ..Figures::default()
    };
    let mut each = Vec::with_capacity(if policy.is_some() { bills.len() } else { 0 });
    for b in bills {
        let unsettled = b.unsettled_at(at);
        let overdue = unsettled && b.due_date < today;
        if unsettled {
            f.oldest_due_date = Some(f.oldest_due_date.map_or(b.due_date, |o| o.min(b.due_date)));
        }
        if overdue {
            f.arrears = f.arrears + b.unpaid();
            f.overdue_bills += 1;
        }
        f.paid = f.paid + b.paid;
        let Some(policy) = policy else { continue };
        let (late_fee, late_fee_estimated) = match b.late_fee {
            Some(fee) => (fee, false),
            None => {
                let until = b
                    .settled_at
                    .filter(|s| *s <= at)
                    .map_or(today, |s| s.with_timezone(&tz).date_naive());
                (policy.late_fee(b.unpaid(), b.due_date, until), true)
            }
        };
        f.late_fees = f.late_fees + late_fee;
        each.push(BillFigures {
            overdue,
            late_fee,
            late_fee_estimated,
        });
    }
    (f, each)
}

/// The list's stored copy of a case's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub arrears: Money,
    pub oldest_due_date: Option<NaiveDate>,
}

impl From<&Figures> for Stored {
    fn from(f: &Figures) -> Self {
        Stored {
            arrears: f.arrears,
            oldest_due_date: f.oldest_due_date,
        }
    }
}

#[derive(sqlx::FromRow)]
struct OpenCase {
    id: i64,
    employer_id: i64,
    timezone: Zone,
    arrears_minor: Money,
    oldest_due_date: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct EmployerBill {
    employer_id: i64,
    #[sqlx(flatten)]
    bill: BillLine,
}

/// Recomputes the list's figures of these employers' open cases at `at`,
/// in each employer's zone, and writes those that changed. Called by every
/// writer of bills (the ledger, the bills import); the scan writes its own.
pub async fn refresh(tx: &mut Tx, employer_ids: &[i64], at: DateTime<Utc>) -> Result<()> {
    for chunk in employer_ids.chunks(500) {
        let sql = format!(
            "SELECT c.id, c.employer_id, e.timezone, c.arrears_minor, c.oldest_due_date \
             FROM cases c JOIN employers e ON e.id = c.employer_id \
             WHERE c.resolved_at IS NULL AND c.employer_id IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = tx.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        let cases: Vec<OpenCase> = q
            .fetch_all_as(&mut *tx)
            .await
            .context("failed to read open cases")?;
        if cases.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT employer_id, amount_minor, paid_minor, due_date, settled_at, late_fee_minor \
             FROM bills WHERE settled_at IS NULL AND employer_id IN ({})",
            list_placeholders(cases.len(), 1)
        );
        let mut q = tx.query(&sql);
        for c in &cases {
            q = q.bind(c.employer_id);
        }
        let mut bills: HashMap<i64, Vec<BillLine>> = HashMap::new();
        for b in q
            .fetch_all_as::<EmployerBill>(&mut *tx)
            .await
            .context("failed to read unpaid bills")?
        {
            bills.entry(b.employer_id).or_default().push(b.bill);
        }
        let changed: Vec<(i64, Stored)> = cases
            .iter()
            .filter_map(|c| {
                let tz = c.timezone.0;
                let lines = bills.get(&c.employer_id).map_or(&[][..], Vec::as_slice);
                let stored = Stored::from(&figures(lines, at, tz, None).0);
                let before = Stored {
                    arrears: c.arrears_minor,
                    oldest_due_date: c.oldest_due_date,
                };
                (stored != before).then_some((c.id, stored))
            })
            .collect();
        write(tx, &changed).await?;
    }
    Ok(())
}

/// Writes the list's figures of these cases (open ones only).
pub async fn write(tx: &mut Tx, figures: &[(i64, Stored)]) -> Result<()> {
    tx.execute_chunked(
        "UPDATE cases SET arrears_minor = v.column2, oldest_due_date = v.column3 \
         FROM (VALUES {values}) AS v \
         WHERE cases.id = v.column1 AND cases.resolved_at IS NULL",
        3,
        figures,
        |q, (id, s)| q.bind(*id).bind(s.arrears).bind(s.oldest_due_date),
    )
    .await
    .context("failed to write the case list's figures")?;
    Ok(())
}

/// Keeps the list's branch of an employer's cases with the employer's, when
/// an import moves it.
pub async fn employer_moved(tx: &mut Tx, npp: &str, branch: &str) -> Result<()> {
    tx.query(
        "UPDATE cases SET branch = $1 \
         WHERE employer_id = (SELECT id FROM employers WHERE npp = $2)",
    )
    .bind(branch.to_owned())
    .bind(npp.to_owned())
    .execute(&mut *tx)
    .await
    .context("failed to move the employer's cases to its branch")?;
    Ok(())
}

/// Moves each case's last activity forward to its latest event here.
/// Grouped by time (a scan's events share one instant) and written with id
/// lists, which both planners answer from the primary key.
pub async fn touch(tx: &mut Tx, latest: &[(i64, DateTime<Utc>)]) -> Result<()> {
    let mut by_time: std::collections::BTreeMap<DateTime<Utc>, Vec<i64>> = Default::default();
    for (id, at) in latest {
        by_time.entry(*at).or_default().push(*id);
    }
    for (at, ids) in by_time {
        for chunk in ids.chunks(rows_per_statement(tx.backend(), 1).saturating_sub(1).max(1)) {
            let sql = format!(
                "UPDATE cases SET last_activity_at = $1 WHERE id IN ({}) \
                   AND (last_activity_at IS NULL OR last_activity_at < $1)",
                list_placeholders(chunk.len(), 2)
            );
            let mut q = tx.query(&sql).bind(at);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *tx)
                .await
                .context("failed to record the cases' last activity")?;
        }
    }
    Ok(())
}

/// Longest message preview the list keeps.
pub const PREVIEW_CHARS: usize = 140;

/// The worklist's "awaiting reply": the employer's message starts the wait;
/// any message queued for the case after it — an officer's or the bot's
/// answer — ends it. Applied to each batch of events as the case log
/// records them, so the list reads a column instead of the log.
pub async fn conversation(tx: &mut Tx, events: &[crate::case_log::NewEvent]) -> Result<()> {
    use crate::case_log::EventKind;
    // Per case, the batch's last word: Some(wait) or None (answered).
    let mut last: std::collections::BTreeMap<i64, Option<(DateTime<Utc>, String)>> =
        Default::default();
    for e in events {
        match e.kind {
            EventKind::ReplyReceived => {
                let text = ["text", "button", "button_text"]
                    .iter()
                    .find_map(|k| e.data.get(*k).and_then(serde_json::Value::as_str))
                    .unwrap_or("");
                let preview: String = text.trim().chars().take(PREVIEW_CHARS).collect();
                last.insert(e.case_id, Some((e.at, preview)));
            }
            EventKind::MessageQueued => {
                last.insert(e.case_id, None);
            }
            _ => {}
        }
    }
    let mut answered = Vec::new();
    for (case_id, wait) in last {
        match wait {
            Some((at, preview)) => {
                tx.query(
                    "UPDATE cases SET awaiting_since = $2, awaiting_preview = $3 WHERE id = $1",
                )
                .bind(case_id)
                .bind(at)
                .bind(preview)
                .execute(&mut *tx)
                .await
                .context("failed to mark the case awaiting a reply")?;
            }
            None => answered.push(case_id),
        }
    }
    // Ids are integers, listed inline: a scan queues one message per case,
    // and only the few waiting rows are written.
    for chunk in answered.chunks(1000) {
        let ids: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let sql = format!(
            "UPDATE cases SET awaiting_since = NULL, awaiting_preview = NULL \
             WHERE awaiting_since IS NOT NULL AND id IN ({})",
            ids.join(",")
        );
        tx.query(&sql)
            .execute(&mut *tx)
            .await
            .context("failed to clear the cases' awaiting reply")?;
    }
    Ok(())
}
