//! `POST /webhooks/payments`: Xendit's invoice callback. A `PAID` callback
//! for one of our links records the payment through the ledger (once,
//! however often it is retried), settles the bills, resolves the case when
//! nothing is owed and thanks the employer. An unknown reference or an
//! amount that differs from the link is kept for an officer, never guessed;
//! a payment through a superseded or expired link, or beyond what is owed,
//! is recorded (the money arrived) and also kept for an officer.

use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::config::Config;
use crate::domain::{Money, Period};
use crate::ledger::{self, NewPayment, PaymentException};
use crate::replies::outgoing::{self, Bills};
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

pub async fn handle_callback(
    db: &Db,
    config: &Config,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<CallbackOutcome, CallbackError> {
    let now = crate::time::truncate(now);
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
    let paid_at = crate::time::truncate(paid_at.unwrap_or(now));

    let mut tx = db.begin().await?;
    let fresh = tx
        .query(
            "INSERT INTO payment_callbacks (reference, status, paid_minor, paid_at, outcome, payload, received_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6) ON CONFLICT (reference, status) DO NOTHING RETURNING id",
        )
        .bind(reference.clone())
        .bind(status.clone())
        .bind(paid.map(|m| m.minor()))
        .bind(paid_at)
        .bind(body.to_string())
        .bind(now)
        .fetch_optional(&mut tx)
        .await
        .context("failed to store the payment callback")?;
    let Some(fresh) = fresh else {
        tx.rollback().await?;
        return Ok(CallbackOutcome::Duplicate);
    };
    let callback_id: i64 = fresh.get("id")?;
    let outcome = apply(
        &mut tx, config, &reference, &status, paid, paid_at, body, now,
    )
    .await?;
    tx.query("UPDATE payment_callbacks SET outcome = $2 WHERE id = $1")
        .bind(callback_id)
        .bind(outcome.as_str())
        .execute(&mut tx)
        .await
        .context("failed to note the callback's outcome")?;
    tx.commit().await?;
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
async fn apply(
    tx: &mut Tx,
    config: &Config,
    reference: &str,
    status: &str,
    paid: Option<Money>,
    paid_at: DateTime<Utc>,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<CallbackOutcome> {
    let link = tx
        .query(
            "SELECT case_id, employer_id, amount_minor, bills, provider, status FROM payment_links WHERE reference = $1",
        )
        .bind(reference.to_owned())
        .fetch_optional(&mut *tx)
        .await
        .context("failed to find the payment link")?;
    let Some(link) = link else {
        if status == "PAID" || status == "SETTLED" {
            exception(
                tx,
                reference,
                "unknown_reference",
                None,
                None,
                None,
                paid,
                body,
                now,
            )
            .await?;
        }
        tracing::warn!(
            reference,
            "payment callback for an unknown reference kept for an officer"
        );
        return Ok(CallbackOutcome::UnknownReference);
    };
    let case_id: i64 = link.get("case_id")?;
    let employer_id: i64 = link.get("employer_id")?;
    let expected: i64 = link.get("amount_minor")?;
    let provider: String = link.get("provider")?;
    if status != "PAID" && status != "SETTLED" {
        tx.query(
            "UPDATE payment_links SET status = $2 WHERE reference = $1 AND status = 'pending'",
        )
        .bind(reference.to_owned())
        .bind(status.to_ascii_lowercase())
        .execute(&mut *tx)
        .await
        .context("failed to note the link's status")?;
        return Ok(CallbackOutcome::NotPaid);
    }
    let link_status: String = link.get("status")?;
    if link_status == "paid" {
        // PAID then SETTLED for the same invoice: one payment.
        return Ok(CallbackOutcome::Duplicate);
    }
    // Xendit invoices are in whole rupiah, rounded up from the sen.
    let expected_paid = if provider == "xendit" {
        (expected + 99) / 100 * 100
    } else {
        expected
    };
    if paid.map(|p| p.minor()) != Some(expected_paid) {
        exception(
            tx,
            reference,
            "amount_mismatch",
            Some(case_id),
            Some(employer_id),
            Some(expected_paid),
            paid,
            body,
            now,
        )
        .await?;
        case_log::record(
            tx,
            &[NewEvent::new(
                case_id,
                now,
                EventKind::OfficerRequested,
                Actor::System,
                json!({"reason": "payment_amount_mismatch", "reference": reference,
                       "expected": Money::from_minor(expected_paid), "paid": paid}),
            )],
        )
        .await?;
        tx.query(
            "UPDATE cases SET status = CASE WHEN status = 'escalated' THEN status ELSE 'needs_officer' END, \
                    quiet_reason = 'awaiting_officer', updated_at = $2 \
             WHERE id = $1 AND resolved_at IS NULL",
        )
        .bind(case_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("failed to hand the case to an officer")?;
        return Ok(CallbackOutcome::AmountMismatch);
    }

    // The amount is the link's: it pays exactly the bills the link listed.
    let bills: Vec<super::LinkBill> =
        serde_json::from_str(&link.get::<String>("bills")?).context("payment link bills")?;
    let mut payments = Vec::with_capacity(bills.len());
    for b in &bills {
        payments.push(NewPayment {
            employer_id,
            period: Period::parse(&b.period).map_err(|e| anyhow::anyhow!("link period: {e}"))?,
            amount: Money::from_minor(b.amount_minor),
            paid_at,
            reference: if bills.len() == 1 {
                reference.to_owned()
            } else {
                format!("{reference}:{}", b.period)
            },
        });
    }
    // Rounding up to the rupiah can add a few sen; they go to the last bill.
    if let Some(last) = payments.last_mut() {
        last.amount = Money::from_minor(last.amount.minor() + expected_paid - expected);
    }
    tx.query("UPDATE payment_links SET status = 'paid', paid_at = $2 WHERE reference = $1")
        .bind(reference.to_owned())
        .bind(paid_at)
        .execute(&mut *tx)
        .await
        .context("failed to mark the link paid")?;
    let was_resolved = case_resolved(tx, case_id).await?;
    let (_, raised) =
        ledger::record_payments_flagged(tx, &payments, "callback", "gateway", now).await?;
    if link_status != "pending" && raised == 0 {
        // Paid through a link that was no longer the one to pay: the
        // money is recorded, and an officer checks what it was for.
        let reason = format!("{link_status}_link");
        ledger::raise_exception(
            tx,
            &PaymentException {
                reference,
                reason: &reason,
                case_id: Some(case_id),
                employer_id: Some(employer_id),
                expected_minor: Some(expected_paid),
                paid_minor: paid.map(|p| p.minor()),
                payload: body,
            },
            "gateway",
            now,
            true,
        )
        .await?;
    }
    let resolved = case_resolved(tx, case_id).await?;
    // Thanked once: only the payment that resolved the case says "lunas".
    if resolved && !was_resolved {
        // Queued after the resolution, which cancels the case's queued rows.
        let party = outgoing::load_party(tx, employer_id, Some(case_id)).await?;
        let ctx =
            outgoing::message_context(tx, config, &party, Bills::SinceCaseOpened, now).await?;
        let window =
            crate::outbox::window_open(party.case.as_ref().and_then(|c| c.last_inbound_at), now);
        outgoing::queue(
            tx,
            config,
            &party,
            &ctx,
            "payment_thanks",
            format!("case:{case_id}:payment_thanks"),
            None,
            window,
            now,
        )
        .await?;
    }
    Ok(CallbackOutcome::Recorded {
        case_resolved: resolved,
    })
}

async fn case_resolved(tx: &mut Tx, case_id: i64) -> Result<bool> {
    Ok(tx
        .query("SELECT resolved_at FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one(&mut *tx)
        .await
        .context("failed to read the case")?
        .get::<Option<DateTime<Utc>>>("resolved_at")?
        .is_some())
}

/// The gateway's exceptions (an unknown reference, a wrong amount), kept
/// through the ledger's one queue for officers.
#[allow(clippy::too_many_arguments)]
async fn exception(
    tx: &mut Tx,
    reference: &str,
    reason: &str,
    case_id: Option<i64>,
    employer_id: Option<i64>,
    expected: Option<i64>,
    paid: Option<Money>,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    ledger::raise_exception(
        tx,
        &PaymentException {
            reference,
            reason,
            case_id,
            employer_id,
            expected_minor: expected,
            paid_minor: paid.map(|p| p.minor()),
            payload: body,
        },
        "gateway",
        now,
        false,
    )
    .await
}
