//! Payments and the bills they settle — the one path every payment takes,
//! whether it arrives by CSV import, the JSON API or a gateway callback.

use crate::audit::AuditEntry;
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::domain::{Counts, Money, Period};
use crate::store::{list_placeholders, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

/// A payment as received, keyed by its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPayment {
    pub employer_id: i64,
    pub period: Period,
    pub amount: Money,
    pub paid_at: DateTime<Utc>,
    pub reference: String,
}

/// Why the ledger refused a batch of payments. Nothing of the batch is
/// written (the caller's transaction must be dropped).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// References that already belong to another employer: a payment is
    /// never moved from one employer to another by an upsert.
    #[error("{} payment reference(s) already belong to another employer", .0.len())]
    ReferenceTaken(Vec<TakenReference>),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for LedgerError {
    fn from(e: crate::store::StoreError) -> Self {
        LedgerError::Failed(e.into())
    }
}

/// One refused payment: its position in the batch and its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenReference {
    pub index: usize,
    pub reference: String,
}

impl TakenReference {
    /// The one-line reason an import or the API reports.
    pub fn reason(&self) -> String {
        format!(
            "reference `{}` already belongs to another employer; a payment is never moved (ask SMILE for a corrected export)",
            self.reference
        )
    }
}

/// Upserts payments by reference, settles the bills they cover and logs
/// each new payment on the employer's open case. `source` says where they
/// came from (`import`, `api`, `callback`).
///
/// A reference is one payment of one employer for ever: one that belongs
/// to another employer refuses the whole batch ([`LedgerError::ReferenceTaken`]).
/// The same employer's reference with another period, amount or time is a
/// correction, audited as `payment.correct` with before and after and
/// logged as `payment_corrected`. A new payment beyond what its bill still
/// owes is recorded and raised as a payment exception for an officer.
pub async fn record_payments(
    tx: &mut Tx,
    payments: &[NewPayment],
    source: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Counts, LedgerError> {
    Ok(record_payments_flagged(tx, payments, source, actor, at)
        .await?
        .0)
}

/// `record_payments`, also returning how many exceptions it raised.
pub async fn record_payments_flagged(
    tx: &mut Tx,
    payments: &[NewPayment],
    source: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(Counts, usize), LedgerError> {
    let mut counts = Counts::default();
    if payments.is_empty() {
        return Ok((counts, 0));
    }
    let existing = stored_payments(tx, payments).await?;
    let taken = taken_references(payments, &existing);
    if !taken.is_empty() {
        return Err(LedgerError::ReferenceTaken(taken));
    }

    let mut new = Vec::new();
    let mut corrections = Vec::new();
    let mut touched = BTreeSet::new();
    for p in payments {
        let after = json!({"employer_id": p.employer_id, "period": p.period, "amount": p.amount, "paid_at": p.paid_at, "reference": p.reference, "source": source});
        match existing.get(&p.reference) {
            None => {
                new.push(p);
                touched.insert(p.employer_id);
                tx.audit(
                    AuditEntry::new(
                        at,
                        actor,
                        "payment.insert",
                        format!("payment:{}", p.reference),
                    )
                    .after(after),
                );
            }
            Some((_, period, amount, paid_at))
                if (period.as_str(), *amount, *paid_at)
                    == (p.period.to_string().as_str(), p.amount.minor(), p.paid_at) =>
            {
                counts.unchanged += 1;
            }
            Some((_, period, amount, paid_at)) => {
                counts.updated += 1;
                touched.insert(p.employer_id);
                tx.query("UPDATE payments SET period = $1, amount_minor = $2, paid_at = $3 WHERE reference = $4")
                    .bind(p.period.to_string())
                    .bind(p.amount.minor())
                    .bind(p.paid_at)
                    .bind(p.reference.clone())
                    .execute(&mut *tx)
                    .await?;
                let before = json!({"period": period, "amount": Money::from_minor(*amount), "paid_at": paid_at});
                let after = json!({"period": p.period, "amount": p.amount, "paid_at": p.paid_at});
                tx.audit(
                    AuditEntry::new(
                        at,
                        actor,
                        "payment.correct",
                        format!("payment:{}", p.reference),
                    )
                    .before(before.clone())
                    .after(after.clone()),
                );
                corrections.push((p.employer_id, json!({"reference": p.reference, "source": source, "before": before, "after": after})));
            }
        }
    }
    let raised = raise_beyond_owed(tx, &new, actor, at).await?;
    counts.inserted = new.len() as u64;
    tx.execute_chunked(
        "INSERT INTO payments (reference, employer_id, period, amount_minor, paid_at, source, created_at) VALUES {values}",
        7,
        &new,
        |q, p| {
            q.bind(p.reference.clone())
                .bind(p.employer_id)
                .bind(p.period.to_string())
                .bind(p.amount.minor())
                .bind(p.paid_at)
                .bind(source.to_owned())
                .bind(at)
        },
    )
    .await?;

    let employers: Vec<i64> = touched.into_iter().collect();
    settle_bills(tx, &employers, actor, at).await?;
    crate::case::figures::refresh(tx, &employers, at).await?;
    log_on_open_cases(tx, &new, at).await?;
    for (employer_id, data) in corrections {
        if let Some(case_id) = current_case(tx, employer_id).await? {
            case_log::record(
                tx,
                &[NewEvent::new(
                    case_id,
                    at,
                    EventKind::PaymentCorrected,
                    Actor::System,
                    data,
                )],
            )
            .await?;
        }
    }
    // Every payment path resolves the cases it paid off, here, so an import,
    // the API and a gateway callback cannot disagree about a case.
    for employer_id in &employers {
        crate::case::resolve::resolve_if_settled(tx, *employer_id, at).await?;
    }
    Ok((counts, raised))
}

/// What is stored under each of `payments`' references: employer, period,
/// amount (sen) and time paid.
type Stored = HashMap<String, (i64, String, i64, DateTime<Utc>)>;

async fn stored_payments(tx: &mut Tx, payments: &[NewPayment]) -> anyhow::Result<Stored> {
    let mut existing = HashMap::new();
    for chunk in payments.chunks(500) {
        let sql = format!(
            "SELECT reference, employer_id, period, amount_minor, paid_at FROM payments WHERE reference IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = tx.query(&sql);
        for p in chunk {
            q = q.bind(p.reference.clone());
        }
        let rows: Vec<(String, i64, String, i64, DateTime<Utc>)> = q.fetch_all_as(&mut *tx).await?;
        for (reference, employer_id, period, amount, paid_at) in rows {
            existing.insert(reference, (employer_id, period, amount, paid_at));
        }
    }
    Ok(existing)
}

/// The payments whose reference already belongs to another employer.
fn taken_references(payments: &[NewPayment], existing: &Stored) -> Vec<TakenReference> {
    payments
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            existing
                .get(&p.reference)
                .is_some_and(|(emp, ..)| *emp != p.employer_id)
        })
        .map(|(index, p)| TakenReference {
            index,
            reference: p.reference.clone(),
        })
        .collect()
}

/// The payments of a validated batch that [`record_payments`] would refuse
/// because their reference belongs to another employer: an import checks
/// this before it stages anything, so a refusal writes nothing.
pub async fn refused_references(
    tx: &mut Tx,
    payments: &[NewPayment],
) -> anyhow::Result<Vec<TakenReference>> {
    let existing = stored_payments(tx, payments).await?;
    Ok(taken_references(payments, &existing))
}

/// Whether any of `references` is a payment of an employer outside
/// `branch` (the API refuses those with 403 before anything is tried).
pub async fn references_outside_branch(
    db: &crate::store::Db,
    branch: &str,
    references: &[&str],
) -> Result<bool> {
    for chunk in references.chunks(500) {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM payments p JOIN employers e ON e.id = p.employer_id \
             WHERE e.branch <> $1 AND p.reference IN ({})",
            list_placeholders(chunk.len(), 2)
        );
        let mut q = db.query(&sql).bind(branch.to_owned());
        for r in chunk {
            q = q.bind((*r).to_owned());
        }
        if q.fetch_scalar::<i64>(db).await? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A bill's amounts and settlement, as stored.
#[derive(sqlx::FromRow)]
struct BillState {
    employer_id: i64,
    period: String,
    amount_minor: i64,
    paid_minor: i64,
    settled_at: Option<DateTime<Utc>>,
}

/// Tolerance for "more than owed": a gateway rounds sen up to the rupiah.
const ROUNDING_MINOR: i64 = 99;

/// Raises a payment exception for each new payment that pays a bill already
/// settled, or more than the bill still owes (after the payments before it
/// in the batch). The payments are still recorded: the money arrived.
async fn raise_beyond_owed(
    tx: &mut Tx,
    new: &[&NewPayment],
    actor: &str,
    at: DateTime<Utc>,
) -> Result<usize> {
    let employer_ids: BTreeSet<i64> = new.iter().map(|p| p.employer_id).collect();
    let ids: Vec<i64> = employer_ids.into_iter().collect();
    // (employer, period) -> (amount, paid so far, settled before this batch)
    let mut bills: HashMap<(i64, String), (i64, i64, bool)> = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT employer_id, period, amount_minor, paid_minor, settled_at FROM bills WHERE employer_id IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = tx.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        let rows: Vec<BillState> = q.fetch_all_as(&mut *tx).await?;
        for b in rows {
            bills.insert(
                (b.employer_id, b.period),
                (b.amount_minor, b.paid_minor, b.settled_at.is_some()),
            );
        }
    }
    let mut raised = 0;
    for p in new {
        let Some((amount, paid, settled)) = bills.get_mut(&(p.employer_id, p.period.to_string()))
        else {
            // No bill yet for the period: SMILE may send it later.
            continue;
        };
        let owed = (*amount - *paid).max(0);
        let reason = if *settled {
            Some("bill_already_settled")
        } else if p.amount.minor() > owed + ROUNDING_MINOR {
            Some("overpaid")
        } else {
            None
        };
        *paid += p.amount.minor();
        if let Some(reason) = reason {
            let case_id = current_case(tx, p.employer_id).await?;
            raise_exception(
                tx,
                &PaymentException {
                    reference: &p.reference,
                    reason,
                    case_id,
                    employer_id: Some(p.employer_id),
                    expected_minor: Some(owed),
                    paid_minor: Some(p.amount.minor()),
                    payload: &json!({"period": p.period, "amount": p.amount, "paid_at": p.paid_at}),
                },
                actor,
                at,
                true,
            )
            .await?;
            raised += 1;
        }
    }
    Ok(raised)
}

/// A payment the bot will not settle by itself.
pub struct PaymentException<'a> {
    pub reference: &'a str,
    /// `unknown_reference`, `amount_mismatch`, `overpaid`,
    /// `bill_already_settled`, `superseded_link`, `expired_link`…
    pub reason: &'a str,
    pub case_id: Option<i64>,
    pub employer_id: Option<i64>,
    pub expected_minor: Option<i64>,
    pub paid_minor: Option<i64>,
    pub payload: &'a serde_json::Value,
}

/// Keeps a payment exception for an officer (the exceptions queue), audited.
/// With `on_case`, the case also gets an `officer_requested` event and, while
/// open, goes to an officer.
pub async fn raise_exception(
    tx: &mut Tx,
    ex: &PaymentException<'_>,
    actor: &str,
    at: DateTime<Utc>,
    on_case: bool,
) -> Result<()> {
    tx.query(
        "INSERT INTO payment_exceptions (reference, reason, case_id, employer_id, expected_minor, paid_minor, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(ex.reference.to_owned())
    .bind(ex.reason.to_owned())
    .bind(ex.case_id)
    .bind(ex.employer_id)
    .bind(ex.expected_minor)
    .bind(ex.paid_minor)
    .bind(ex.payload.to_string())
    .bind(at)
    .execute(&mut *tx)
    .await
    .context("failed to keep the payment exception")?;
    tx.audit(
        AuditEntry::new(
            at,
            actor,
            "payment.exception",
            format!("payment:{}", ex.reference),
        )
        .after(json!({"reason": ex.reason, "case_id": ex.case_id,
                          "expected": ex.expected_minor.map(Money::from_minor),
                          "paid": ex.paid_minor.map(Money::from_minor)})),
    );
    if let (true, Some(case_id)) = (on_case, ex.case_id) {
        case_log::record(
            tx,
            &[NewEvent::new(
                case_id,
                at,
                EventKind::OfficerRequested,
                Actor::System,
                json!({"reason": "payment_exception", "exception": ex.reason,
                       "reference": ex.reference,
                       "expected": ex.expected_minor.map(Money::from_minor),
                       "paid": ex.paid_minor.map(Money::from_minor)}),
            )],
        )
        .await?;
        tx.query(
            "UPDATE cases SET status = CASE WHEN status = 'escalated' THEN status ELSE 'needs_officer' END, \
                    quiet_reason = CASE WHEN status = 'escalated' THEN quiet_reason ELSE 'awaiting_officer' END, \
                    updated_at = $2 \
             WHERE id = $1 AND resolved_at IS NULL",
        )
        .bind(case_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("failed to hand the case to an officer")?;
    }
    Ok(())
}

/// The employer's open case, else its latest one.
async fn current_case(tx: &mut Tx, employer_id: i64) -> Result<Option<i64>> {
    tx.query(
        "SELECT id FROM cases WHERE employer_id = $1 \
             ORDER BY (resolved_at IS NULL) DESC, id DESC LIMIT 1",
    )
    .bind(employer_id)
    .fetch_optional_scalar(&mut *tx)
    .await
    .context("failed to find the employer's case")
}

/// Writes `payment_received` on the open case of each new payment's employer.
async fn log_on_open_cases(tx: &mut Tx, new: &[&NewPayment], at: DateTime<Utc>) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let employer_ids: BTreeSet<i64> = new.iter().map(|p| p.employer_id).collect();
    let mut open_case = HashMap::new();
    let ids: Vec<i64> = employer_ids.into_iter().collect();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, employer_id FROM cases WHERE resolved_at IS NULL AND employer_id IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = tx.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        let rows: Vec<(i64, i64)> = q.fetch_all_as(&mut *tx).await?;
        for (id, employer_id) in rows {
            open_case.insert(employer_id, id);
        }
    }
    let events: Vec<NewEvent> = new
        .iter()
        .filter_map(|p| {
            open_case.get(&p.employer_id).map(|case_id| {
                NewEvent::new(
                    *case_id,
                    at,
                    EventKind::PaymentReceived,
                    Actor::System,
                    json!({"reference": p.reference, "period": p.period, "amount": p.amount, "paid_at": p.paid_at}),
                )
            })
        })
        .collect();
    case_log::record(tx, &events).await
}

/// A bill with the sum of its payments.
#[derive(sqlx::FromRow)]
struct Settlement {
    id: i64,
    employer_id: i64,
    period: String,
    amount_minor: i64,
    paid_minor: i64,
    settled_at: Option<DateTime<Utc>>,
    paid_sum: i64,
    last_paid_at: Option<DateTime<Utc>>,
}

/// Recomputes what has been paid on the bills of these employers from their
/// payments, marking a bill settled once its contribution is covered (at
/// the time of the payment that covered it). Returns the employers whose
/// bills changed.
pub async fn settle_bills(
    tx: &mut Tx,
    employer_ids: &[i64],
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut changed = BTreeSet::new();
    for chunk in employer_ids.chunks(500) {
        let sql = format!(
            "SELECT b.id, b.employer_id, b.period, b.amount_minor, b.paid_minor, b.settled_at, \
                    CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT) AS paid_sum, MAX(p.paid_at) AS last_paid_at \
             FROM bills b LEFT JOIN payments p ON p.employer_id = b.employer_id AND p.period = b.period \
             WHERE b.employer_id IN ({}) \
             GROUP BY b.id, b.employer_id, b.period, b.amount_minor, b.paid_minor, b.settled_at",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = tx.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        let rows: Vec<Settlement> = q.fetch_all_as(&mut *tx).await?;
        for Settlement {
            id,
            employer_id,
            period,
            amount_minor: amount,
            paid_minor: paid,
            settled_at,
            paid_sum,
            last_paid_at,
        } in rows
        {
            let new_settled = if paid_sum >= amount && paid_sum > 0 {
                settled_at.or(last_paid_at)
            } else {
                None
            };
            if paid_sum == paid && new_settled == settled_at {
                continue;
            }
            tx.query(
                "UPDATE bills SET paid_minor = $1, settled_at = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(paid_sum)
            .bind(new_settled)
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.audit(
                AuditEntry::new(
                    at,
                    actor,
                    "bill.settlement",
                    format!("bill:{employer_id}:{period}"),
                )
                .before(json!({"paid": Money::from_minor(paid), "settled_at": settled_at}))
                .after(json!({"paid": Money::from_minor(paid_sum), "settled_at": new_settled})),
            );
            changed.insert(employer_id);
        }
    }
    Ok(changed.into_iter().collect())
}
