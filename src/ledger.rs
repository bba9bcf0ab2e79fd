//! Payments and the bills they settle — the one path every payment takes,
//! whether it arrives by CSV import, the JSON API or a gateway callback.

use crate::audit::AuditEntry;
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::domain::{Money, Period};
use crate::import::Counts;
use crate::store::{list_placeholders, rows_per_statement, values_placeholders, Tx};
use anyhow::Result;
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

/// Upserts payments by reference, settles the bills they cover and logs
/// each new payment on the employer's open case. `source` says where they
/// came from (`import`, `api`, `callback`).
pub async fn record_payments(
    tx: &mut Tx,
    payments: &[NewPayment],
    source: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Counts> {
    let mut counts = Counts::default();
    if payments.is_empty() {
        return Ok(counts);
    }
    let sql = format!(
        "SELECT reference, employer_id, period, amount_minor, paid_at FROM payments WHERE reference IN ({})",
        list_placeholders(payments.len(), 1)
    );
    let mut q = tx.query(&sql);
    for p in payments {
        q = q.bind(p.reference.clone());
    }
    let mut existing = HashMap::new();
    for r in q.fetch_all(&mut *tx).await? {
        let period: String = r.get("period")?;
        existing.insert(
            r.get::<String>("reference")?,
            (
                r.get::<i64>("employer_id")?,
                period,
                r.get::<i64>("amount_minor")?,
                r.get::<DateTime<Utc>>("paid_at")?,
            ),
        );
    }

    let mut new = Vec::new();
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
            Some((emp, period, amount, paid_at))
                if (*emp, period.as_str(), *amount, *paid_at)
                    == (
                        p.employer_id,
                        p.period.to_string().as_str(),
                        p.amount.minor(),
                        p.paid_at,
                    ) =>
            {
                counts.unchanged += 1;
            }
            Some((emp, period, amount, paid_at)) => {
                counts.updated += 1;
                touched.insert(*emp);
                touched.insert(p.employer_id);
                tx.query("UPDATE payments SET employer_id = $1, period = $2, amount_minor = $3, paid_at = $4 WHERE reference = $5")
                    .bind(p.employer_id)
                    .bind(p.period.to_string())
                    .bind(p.amount.minor())
                    .bind(p.paid_at)
                    .bind(p.reference.clone())
                    .execute(&mut *tx)
                    .await?;
                let before = json!({"employer_id": emp, "period": period, "amount": Money::from_minor(*amount), "paid_at": paid_at});
                tx.audit(
                    AuditEntry::new(
                        at,
                        actor,
                        "payment.update",
                        format!("payment:{}", p.reference),
                    )
                    .before(before)
                    .after(after),
                );
            }
        }
    }
    counts.inserted = new.len() as u64;
    for chunk in new.chunks(rows_per_statement(tx.backend(), 7)) {
        let sql = format!(
            "INSERT INTO payments (reference, employer_id, period, amount_minor, paid_at, source, created_at) VALUES {}",
            values_placeholders(chunk.len(), 7, 1)
        );
        let mut q = tx.query(&sql);
        for p in chunk {
            q = q
                .bind(p.reference.clone())
                .bind(p.employer_id)
                .bind(p.period.to_string())
                .bind(p.amount.minor())
                .bind(p.paid_at)
                .bind(source.to_owned())
                .bind(at);
        }
        q.execute(&mut *tx).await?;
    }

    let employers: Vec<i64> = touched.into_iter().collect();
    settle_bills(tx, &employers, actor, at).await?;
    log_on_open_cases(tx, &new, at).await?;
    // Every payment path resolves the cases it paid off, here, so an import,
    // the API and a gateway callback cannot disagree about a case.
    for employer_id in &employers {
        crate::scan::resolve_if_settled(tx, *employer_id, at).await?;
    }
    Ok(counts)
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
        for r in q.fetch_all(&mut *tx).await? {
            open_case.insert(r.get::<i64>("employer_id")?, r.get::<i64>("id")?);
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
        for r in q.fetch_all(&mut *tx).await? {
            let amount: i64 = r.get("amount_minor")?;
            let paid: i64 = r.get("paid_minor")?;
            let settled_at: Option<DateTime<Utc>> = r.get("settled_at")?;
            let paid_sum: i64 = r.get("paid_sum")?;
            let last_paid_at: Option<DateTime<Utc>> = r.get("last_paid_at")?;
            let new_settled = if paid_sum >= amount && paid_sum > 0 {
                settled_at.or(last_paid_at)
            } else {
                None
            };
            if paid_sum == paid && new_settled == settled_at {
                continue;
            }
            let id: i64 = r.get("id")?;
            let employer_id: i64 = r.get("employer_id")?;
            let period: String = r.get("period")?;
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
