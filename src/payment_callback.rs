//! `POST /webhooks/payments`: Xendit's invoice callback. A `PAID` callback
//! for one of our links records the payment through the ledger (once,
//! however often it is retried), settles the bills, resolves the case when
//! nothing is owed and thanks the employer. An unknown reference or an
//! amount that differs from the link is kept for an officer, never guessed;
//! a payment through a superseded or expired link, or beyond what is owed,
//! is recorded (the money arrived) and also kept for an officer.
//!
//! It sits above both `payments` (the links) and `replies` (the thank-you),
//! so neither of those depends on the other.

use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::config::Config;
use crate::domain::{Money, Period};
use crate::ledger::{self, NewPayment, PaymentException};
use crate::payments::LinkBill;
use crate::replies::outgoing;
use crate::store::{Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// A callback body the route answers 400 to.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("payment callback: {0}")]
    Invalid(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What a callback did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    Recorded {
        case_resolved: bool,
    },
    Duplicate,
    UnknownReference,
    AmountMismatch,
    /// Not a payment (`EXPIRED`, `PENDING`…): the link's status is noted.
    NotPaid,
}

impl CallbackOutcome {
    fn as_str(&self) -> &'static str {
        match self {
            CallbackOutcome::Recorded { .. } => "recorded",
            CallbackOutcome::Duplicate => "duplicate",
            CallbackOutcome::UnknownReference => "unknown_reference",
            CallbackOutcome::AmountMismatch => "amount_mismatch",
            CallbackOutcome::NotPaid => "not_paid",
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An amount as the gateway writes it (a JSON number or string), in sen.
/// Anything but a plain decimal with at most two places is refused.
fn amount(v: &Value, key: &str) -> Result<Option<Money>, CallbackError> {
    let Some(raw) = text(v, key) else {
        return Ok(None);
    };
    // serde_json prints whole floats as `1500000.0`.
    let raw = raw.strip_suffix(".0").unwrap_or(&raw);
    Money::parse(raw)
        .map(Some)
        .map_err(|e| CallbackError::Invalid(format!("{key}: {e}")))
}

/// What a callback says, checked.
struct Notice {
    reference: String,
    /// Upper case: `PAID`, `SETTLED`, `EXPIRED`…
    status: String,
    paid: Option<Money>,
    paid_at: DateTime<Utc>,
}

impl Notice {
    fn parse(body: &Value, now: DateTime<Utc>) -> Result<Notice, CallbackError> {
        if !body.is_object() {
            return Err(CallbackError::Invalid(
                "the body is not a JSON object".into(),
            ));
        }
        let reference = text(body, "external_id")
            .ok_or_else(|| CallbackError::Invalid("external_id is missing".into()))?;
        let status = text(body, "status")
            .ok_or_else(|| CallbackError::Invalid("status is missing".into()))?
            .to_ascii_uppercase();
        let paid = amount(body, "paid_amount")?.or(amount(body, "amount")?);
        let paid_at = match text(body, "paid_at") {
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|_| CallbackError::Invalid("paid_at is not RFC 3339".into()))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        Ok(Notice {
            reference,
            status,
            paid,
            paid_at: crate::time::truncate(paid_at.unwrap_or(now)),
        })
    }

    fn is_payment(&self) -> bool {
        self.status == "PAID" || self.status == "SETTLED"
    }
}

/// The link a callback names, as the callback reads it.
#[derive(sqlx::FromRow)]
struct LinkRow {
    case_id: i64,
    employer_id: i64,
    amount_minor: Money,
    bills: String,
    provider: String,
    status: String,
}

impl LinkRow {
    /// What the gateway should have taken: Xendit invoices are in whole
    /// rupiah, rounded up from the sen.
    fn expected_paid(&self) -> i64 {
        let expected = self.amount_minor.minor();
        if self.provider == "xendit" {
            (expected + 99) / 100 * 100
        } else {
            expected
        }
    }
}

pub async fn handle(
    db: &Db,
    config: &Config,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<CallbackOutcome, CallbackError> {
    let now = crate::time::truncate(now);
    let notice = Notice::parse(body, now)?;
    let mut tx = db.begin().await?;
    let fresh: Option<i64> = tx
        .query(
            "INSERT INTO payment_callbacks (reference, status, paid_minor, paid_at, outcome, payload, received_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6) ON CONFLICT (reference, status) DO NOTHING RETURNING id",
        )
        .bind(notice.reference.clone())
        .bind(notice.status.clone())
        .bind(notice.paid)
        .bind(notice.paid_at)
        .bind(body.to_string())
        .bind(now)
        .fetch_optional_scalar(&mut tx)
        .await
        .context("failed to store the payment callback")?;
    let Some(callback_id) = fresh else {
        tx.rollback().await?;
        return Ok(CallbackOutcome::Duplicate);
    };
    let outcome = apply(&mut tx, config, &notice, body, now).await?;
    tx.query("UPDATE payment_callbacks SET outcome = $2 WHERE id = $1")
        .bind(callback_id)
        .bind(outcome.as_str())
        .execute(&mut tx)
        .await
        .context("failed to note the callback's outcome")?;
    tx.commit().await?;
    Ok(outcome)
}

async fn apply(
    tx: &mut Tx,
    config: &Config,
    notice: &Notice,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<CallbackOutcome> {
    let reference = notice.reference.as_str();
    let link: Option<LinkRow> = tx
        .query(
            "SELECT case_id, employer_id, amount_minor, bills, provider, status FROM payment_links WHERE reference = $1",
        )
        .bind(reference.to_owned())
        .fetch_optional_as(&mut *tx)
        .await
        .context("failed to find the payment link")?;
    let Some(link) = link else {
        if notice.is_payment() {
            exception(tx, notice, "unknown_reference", None, None, body, now).await?;
        }
        tracing::warn!(
            reference,
            "payment callback for an unknown reference kept for an officer"
        );
        return Ok(CallbackOutcome::UnknownReference);
    };
    if !notice.is_payment() {
        tx.query(
            "UPDATE payment_links SET status = $2 WHERE reference = $1 AND status = 'pending'",
        )
        .bind(reference.to_owned())
        .bind(notice.status.to_ascii_lowercase())
        .execute(&mut *tx)
        .await
        .context("failed to note the link's status")?;
        return Ok(CallbackOutcome::NotPaid);
    }
    if link.status == "paid" {
        // PAID then SETTLED for the same invoice: one payment.
        return Ok(CallbackOutcome::Duplicate);
    }
    if notice.paid.map(|p| p.minor()) != Some(link.expected_paid()) {
        amount_mismatch(tx, notice, &link, body, now).await?;
        return Ok(CallbackOutcome::AmountMismatch);
    }
    record_paid(tx, config, notice, &link, body, now).await
}

/// A payment of another amount than the link's: kept, and the case goes
/// to an officer (nothing is settled on a guess).
async fn amount_mismatch(
    tx: &mut Tx,
    notice: &Notice,
    link: &LinkRow,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let expected_paid = link.expected_paid();
    exception(
        tx,
        notice,
        "amount_mismatch",
        Some(link),
        Some(expected_paid),
        body,
        now,
    )
    .await?;
    case_log::record(
        tx,
        &[NewEvent::new(
            link.case_id,
            now,
            EventKind::OfficerRequested,
            Actor::System,
            json!({"reason": "payment_amount_mismatch", "reference": notice.reference,
                   "expected": Money::from_minor(expected_paid), "paid": notice.paid}),
        )],
    )
    .await?;
    tx.query(
        "UPDATE cases SET status = CASE WHEN status = 'escalated' THEN status ELSE 'needs_officer' END, \
                quiet_reason = 'awaiting_officer', updated_at = $2 \
         WHERE id = $1 AND resolved_at IS NULL",
    )
    .bind(link.case_id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("failed to hand the case to an officer")?;
    Ok(())
}

/// The amount is the link's: it pays exactly the bills the link listed.
async fn record_paid(
    tx: &mut Tx,
    config: &Config,
    notice: &Notice,
    link: &LinkRow,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<CallbackOutcome> {
    let reference = notice.reference.as_str();
    let payments = link_payments(notice, link)?;
    // The link's own row is the gate: of two callbacks for one invoice
    // (PAID and SETTLED) racing past the check above, the second waits for
    // the first's row lock here, then finds it paid and changes nothing.
    let marked = tx
        .query(
            "UPDATE payment_links SET status = 'paid', paid_at = $2 \
             WHERE reference = $1 AND status <> 'paid'",
        )
        .bind(reference.to_owned())
        .bind(notice.paid_at)
        .execute(&mut *tx)
        .await
        .context("failed to mark the link paid")?;
    if marked == 0 {
        return Ok(CallbackOutcome::Duplicate);
    }
    let was_resolved = case_resolved(tx, link.case_id).await?;
    let (_, raised) =
        ledger::record_payments_flagged(tx, &payments, "callback", "gateway", now).await?;
    if link.status != "pending" && raised == 0 {
        // Paid through a link that was no longer the one to pay: the
        // money is recorded, and an officer checks what it was for.
        let reason = format!("{}_link", link.status);
        ledger::raise_exception(
            tx,
            &PaymentException {
                reference,
                reason: &reason,
                case_id: Some(link.case_id),
                employer_id: Some(link.employer_id),
                expected_minor: Some(link.expected_paid()),
                paid_minor: notice.paid.map(|p| p.minor()),
                payload: body,
            },
            "gateway",
            now,
            true,
        )
        .await?;
    }
    let resolved = case_resolved(tx, link.case_id).await?;
    // Thanked once: only the payment that resolved the case says "lunas".
    if resolved && !was_resolved {
        outgoing::thank_for_payment(tx, config, link.employer_id, link.case_id, now).await?;
    }
    Ok(CallbackOutcome::Recorded {
        case_resolved: resolved,
    })
}

/// One ledger payment per bill the link listed; rounding up to the rupiah
/// can add a few sen, and they go to the last bill.
fn link_payments(notice: &Notice, link: &LinkRow) -> Result<Vec<NewPayment>> {
    let reference = notice.reference.as_str();
    let bills: Vec<LinkBill> = serde_json::from_str(&link.bills).context("payment link bills")?;
    let mut payments = Vec::with_capacity(bills.len());
    for b in &bills {
        payments.push(NewPayment {
            employer_id: link.employer_id,
            period: Period::parse(&b.period).map_err(|e| anyhow::anyhow!("link period: {e}"))?,
            amount: Money::from_minor(b.amount_minor),
            paid_at: notice.paid_at,
            reference: if bills.len() == 1 {
                reference.to_owned()
            } else {
                format!("{reference}:{}", b.period)
            },
        });
    }
    if let Some(last) = payments.last_mut() {
        last.amount = Money::from_minor(
            last.amount.minor() + link.expected_paid() - link.amount_minor.minor(),
        );
    }
    Ok(payments)
}

async fn case_resolved(tx: &mut Tx, case_id: i64) -> Result<bool> {
    let resolved_at: Option<DateTime<Utc>> = tx
        .query("SELECT resolved_at FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_scalar(&mut *tx)
        .await
        .context("failed to read the case")?;
    Ok(resolved_at.is_some())
}

/// The gateway's exceptions (an unknown reference, a wrong amount), kept
/// through the ledger's one queue for officers.
async fn exception(
    tx: &mut Tx,
    notice: &Notice,
    reason: &str,
    link: Option<&LinkRow>,
    expected: Option<i64>,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    ledger::raise_exception(
        tx,
        &PaymentException {
            reference: &notice.reference,
            reason,
            case_id: link.map(|l| l.case_id),
            employer_id: link.map(|l| l.employer_id),
            expected_minor: expected,
            paid_minor: notice.paid.map(|p| p.minor()),
            payload: body,
        },
        "gateway",
        now,
        false,
    )
    .await
}
