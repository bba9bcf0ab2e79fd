//! Resolving a case once its overdue bills are paid: the one path the scan
//! and every payment (import, API, gateway callback) take, so they cannot
//! disagree about a case.

use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::domain::CaseStatus;
use crate::store::{Tx, Zone};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

#[derive(sqlx::FromRow)]
struct OpenCase {
    id: i64,
    status: CaseStatus,
    timezone: Zone,
}

/// Resolves the employer's open case if none of its overdue bills is still
/// unpaid: records `case_resolved` (reason `paid`) and cancels its queued
/// messages. Returns whether it resolved one.
pub async fn resolve_if_settled(tx: &mut Tx, employer_id: i64, at: DateTime<Utc>) -> Result<bool> {
    let at = crate::time::truncate(at);
    let Some(case) = tx
        .query(
            "SELECT c.id, c.status, e.timezone FROM cases c JOIN employers e ON e.id = c.employer_id \
             WHERE c.employer_id = $1 AND c.resolved_at IS NULL",
        )
        .bind(employer_id)
        .fetch_optional_as::<OpenCase>(&mut *tx)
        .await
        .context("failed to read the open case")?
    else {
        return Ok(false);
    };
    let tz = case.timezone.0;
    let local_today = at.with_timezone(&tz).date_naive();
    let unpaid: i64 = tx
        .query(
            "SELECT COUNT(*) AS n FROM bills \
             WHERE employer_id = $1 AND settled_at IS NULL AND due_date < $2",
        )
        .bind(employer_id)
        .bind(local_today)
        .fetch_scalar(&mut *tx)
        .await
        .context("failed to count unpaid overdue bills")?;
    if unpaid > 0 {
        return Ok(false);
    }
    resolve_case(tx, case.id, case.status, at).await
}

#[derive(sqlx::FromRow)]
struct Promise {
    promised_date: Option<NaiveDate>,
    timezone: Zone,
}

/// Resolves one open case as paid (`status` is its status before), with
/// `promise_kept` when a running promise was kept. Returns whether it did:
/// a case resolved meanwhile by another writer is left alone.
pub async fn resolve_case(
    tx: &mut Tx,
    case_id: i64,
    status: CaseStatus,
    at: DateTime<Utc>,
) -> Result<bool> {
    let changed = tx
        .query(
            "UPDATE cases SET status = 'resolved', resolved_at = $2, resolution = 'paid', \
                    quiet_reason = NULL, next_action_at = NULL, updated_at = $2 \
             WHERE id = $1 AND resolved_at IS NULL",
        )
        .bind(case_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("failed to resolve the case")?;
    if changed == 0 {
        return Ok(false);
    }
    let mut events = Vec::new();
    if status == CaseStatus::Promised {
        let row: Promise = tx
            .query(
                "SELECT c.promised_date, e.timezone FROM cases c \
                 JOIN employers e ON e.id = c.employer_id WHERE c.id = $1",
            )
            .bind(case_id)
            .fetch_one_as(&mut *tx)
            .await
            .context("failed to read the case's promise")?;
        let tz = row.timezone.0;
        if let Some(d) = row
            .promised_date
            .filter(|d| *d >= at.with_timezone(&tz).date_naive())
        {
            events.push(NewEvent::new(
                case_id,
                at,
                EventKind::PromiseKept,
                Actor::System,
                json!({"promised_date": d.to_string()}),
            ));
        }
    }
    let cancelled: Vec<(i64, String)> = crate::outbox::cancel_for_case(tx, case_id, at)
        .await?
        .into_iter()
        .map(|c| (c.id, c.message))
        .collect();
    events.push(NewEvent::new(
        case_id,
        at,
        EventKind::CaseResolved,
        Actor::System,
        json!({"reason": "paid", "status_before": status.as_str()}),
    ));
    let mut skipped = cancelled;
    skipped.sort();
    for (id, message) in skipped {
        events.push(NewEvent::new(
            case_id,
            at,
            EventKind::MessageSkipped,
            Actor::System,
            json!({"outbox_id": id, "message": message, "reason": "case_resolved"}),
        ));
    }
    case_log::record(tx, &events).await?;
    Ok(true)
}

/// The employers' open cases, as (employer id, case id).
pub async fn open_cases(tx: &mut Tx, employer_ids: &[i64]) -> Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for chunk in employer_ids.chunks(1000) {
        let ids: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let sql = format!(
            "SELECT employer_id, id FROM cases WHERE resolved_at IS NULL AND employer_id IN ({})",
            ids.join(",")
        );
        let rows: Vec<(i64, i64)> = tx.query(&sql).fetch_all_as(&mut *tx).await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Of these cases, the ones now resolved as paid.
pub async fn paid_off(tx: &mut Tx, cases: &[(i64, i64)]) -> Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for chunk in cases.chunks(1000) {
        let ids: Vec<String> = chunk.iter().map(|(_, c)| c.to_string()).collect();
        let sql = format!(
            "SELECT employer_id, id FROM cases WHERE resolution = 'paid' AND id IN ({})",
            ids.join(",")
        );
        let rows: Vec<(i64, i64)> = tx.query(&sql).fetch_all_as(&mut *tx).await?;
        out.extend(rows);
    }
    Ok(out)
}
