//! Writing a batch of send outcomes: each row's new state through the
//! outbox, then what the outcomes mean for cases and employers (the case
//! log, officer flags, unreachable contacts, halts), all in one
//! transaction so a failed write can be tried again as it is.

use super::{mark_quiet, set_flag, DeliverSummary, Deliverer, Outcome};
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::metrics as m;
use crate::outbox::{self, Claimed, SentRow};
use crate::store::{list_placeholders, rows_per_statement, Backend, Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::HashSet;

/// What a batch's outcomes add up to, gathered before the case-level
/// writes.
#[derive(Default)]
struct Written<'a> {
    events: Vec<NewEvent>,
    sent: Vec<(&'a Claimed, SentRow<'a>, &'static str)>,
    officer_cases: Vec<i64>,
    unreachable: Vec<i64>,
    halts: Vec<(&'static str, &'a str)>,
    summary: DeliverSummary,
    counters: Vec<(&'static str, &'static str, String)>,
}

/// Writes a batch of outcomes in one transaction (all or nothing, so a
/// failed write can be tried again as it is). Every row update is guarded
/// by `state = 'sending'`: a status webhook that settled the row meanwhile
/// wins; and all but `sent` by this worker's claim, since a peer may have
/// taken this worker for dead and released the row.
pub(super) async fn write_outcomes(
    db: &Db,
    d: &Deliverer,
    at: DateTime<Utc>,
    outcomes: &[Outcome],
    summary: &mut DeliverSummary,
) -> Result<()> {
    let me = d.worker_id.as_str();
    let mut tx = db.begin().await?;
    bound_lock_wait(&mut tx, d).await?;
    let mut w = Written::default();
    for o in outcomes {
        write_one(&mut tx, me, at, o, &mut w).await?;
    }
    write_sent(&mut tx, at, &mut w).await?;
    case_log::record(&mut tx, &w.events).await?;
    flag_for_officer(&mut tx, &w.officer_cases, at).await?;
    mark_unreachable(&mut tx, &w.unreachable, at).await?;
    let raised = raise_halts(&mut tx, &mut w, at).await?;
    tx.commit().await?;
    publish(raised, w, summary);
    Ok(())
}

/// On PostgreSQL, a bounded wait for locks, then the retry with back-off,
/// logged: not an unbounded wait behind another transaction's locks.
async fn bound_lock_wait(tx: &mut Tx, d: &Deliverer) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        let sql = format!(
            "SET LOCAL lock_timeout = '{}ms'",
            d.options.write_wait.as_millis().max(1)
        );
        tx.query(&sql)
            .execute(&mut *tx)
            .await
            .context("failed to bound the outcome write's lock wait")?;
    }
    Ok(())
}

/// One outcome's row update (sends are gathered and written together).
async fn write_one<'a>(
    tx: &mut Tx,
    me: &str,
    at: DateTime<Utc>,
    o: &'a Outcome,
    w: &mut Written<'a>,
) -> Result<()> {
    match o {
        Outcome::Sent {
            row,
            wamid,
            initiated,
            kind,
            text,
        } => w.sent.push((
            row,
            SentRow {
                id: row.id,
                wamid,
                initiated: *initiated,
                text: text.as_deref(),
            },
            *kind,
        )),
        Outcome::Retry {
            row,
            until,
            reason,
            code,
        } => {
            if outbox::retry_later(tx, me, row.id, *until, reason, *code, at).await? {
                w.summary.retried += 1;
                w.counters
                    .push((m::MESSAGES_RETRIED, "reason", reason.clone()));
            }
        }
        Outcome::Unknown { row, reason } => {
            if outbox::await_status(tx, me, row.id, reason, at).await? {
                w.summary.retried += 1;
                w.counters.push((
                    m::MESSAGES_RETRIED,
                    "reason",
                    format!("{reason}_awaiting_status"),
                ));
            }
        }
        Outcome::Fallback { row } => {
            if outbox::requeue_as_template(tx, me, row.id, at).await? {
                w.summary.retried += 1;
                w.counters
                    .push((m::MESSAGES_RETRIED, "reason", "template_fallback".into()));
            }
        }
        Outcome::Failed {
            row,
            reason,
            code,
            title,
            unreachable,
        } => {
            if outbox::fail(tx, me, row.id, reason, *code, title, at).await? {
                failed(row, reason, *code, title, *unreachable, at, w);
            }
        }
        Outcome::Skipped { row, reason } => {
            if outbox::skip(tx, me, row.id, reason, at).await? {
                w.summary.skipped += 1;
                w.counters
                    .push((m::MESSAGES_SKIPPED, "reason", (*reason).to_owned()));
                if let Some(case_id) = row.case_id {
                    w.events.push(NewEvent::new(
                        case_id,
                        at,
                        EventKind::MessageSkipped,
                        Actor::System,
                        json!({"outbox_id": row.id, "message": row.message, "reason": reason}),
                    ));
                }
            }
        }
        Outcome::Deferred { row, until, reason } => {
            let until = crate::time::truncate(*until);
            if outbox::defer(tx, me, row.id, until, at).await? {
                let label = reason.map_or("pair_rate", |r| r.as_str());
                w.counters
                    .push((m::MESSAGES_DEFERRED, "reason", label.into()));
                if let (Some(case_id), Some(reason), true) =
                    (row.case_id, reason, row.is_reminder())
                {
                    mark_quiet(tx, &[case_id], *reason, until, at).await?;
                }
            }
        }
        Outcome::Release { row } => outbox::release(tx, me, row.id, at).await?,
        Outcome::Halt { row, flag, reason } => {
            outbox::release(tx, me, row.id, at).await?;
            w.halts.push((*flag, reason.as_str()));
        }
    }
    Ok(())
}

/// A failed row: counted, logged on its case, which goes to an officer.
fn failed(
    row: &Claimed,
    reason: &str,
    code: Option<i64>,
    title: &str,
    unreachable: bool,
    at: DateTime<Utc>,
    w: &mut Written<'_>,
) {
    w.summary.failed += 1;
    w.counters
        .push((m::MESSAGES_FAILED, "reason", reason.to_owned()));
    if let Some(case_id) = row.case_id {
        w.events.push(NewEvent::new(
            case_id,
            at,
            EventKind::MessageFailed,
            Actor::System,
            json!({"outbox_id": row.id, "message": row.message, "reason": reason,
                   "code": code, "title": title, "attempts": row.attempts}),
        ));
        w.officer_cases.push(case_id);
    }
    if unreachable {
        w.unreachable.push(row.employer_id);
    }
}

/// Marks accepted messages sent, many rows a statement, with their events.
async fn write_sent(tx: &mut Tx, at: DateTime<Utc>, w: &mut Written<'_>) -> Result<()> {
    if w.sent.is_empty() {
        return Ok(());
    }
    let rows: Vec<SentRow> = w.sent.iter().map(|(_, s, _)| s.clone()).collect();
    let updated = outbox::mark_sent(tx, &rows, at).await?;
    for (row, s, kind) in &w.sent {
        w.summary.sent += 1;
        // A row a status webhook settled first has its events already.
        if !updated.contains(&row.id) {
            continue;
        }
        w.counters
            .push((m::MESSAGES_SENT, "kind", (*kind).to_owned()));
        if let Some(case_id) = row.case_id {
            w.events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageSent,
                Actor::System,
                json!({"outbox_id": row.id, "template": row.message, "kind": kind, "wamid": s.wamid}),
            ));
        }
    }
    Ok(())
}

/// Cases with a failed message need an officer.
async fn flag_for_officer(tx: &mut Tx, cases: &[i64], at: DateTime<Utc>) -> Result<()> {
    let cases: Vec<i64> = cases
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in cases.chunks(rows_per_statement(tx.backend(), 1)) {
        let sql = format!(
            "UPDATE cases SET status = 'needs_officer', updated_at = $1 \
             WHERE resolved_at IS NULL AND status IN ('open', 'promised') AND id IN ({})",
            list_placeholders(chunk.len(), 2)
        );
        let mut q = tx.query(&sql).bind(at);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx)
            .await
            .context("failed to flag cases for an officer")?;
    }
    Ok(())
}

async fn mark_unreachable(tx: &mut Tx, employers: &[i64], at: DateTime<Utc>) -> Result<()> {
    for employer in employers {
        tx.query("UPDATE employers SET contact_invalid_at = $2, updated_at = $2 WHERE id = $1 AND contact_invalid_at IS NULL")
            .bind(*employer)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context("failed to mark a contact unreachable")?;
    }
    Ok(())
}

/// Many in-flight sends fail with the same 190: one halt, one alert.
/// Returns the flags newly raised.
async fn raise_halts<'a>(
    tx: &mut Tx,
    w: &mut Written<'a>,
    at: DateTime<Utc>,
) -> Result<Vec<(&'static str, &'a str)>> {
    let mut raised = Vec::new();
    for (flag, reason) in &w.halts {
        if set_flag(tx, flag, reason, at).await? {
            raised.push((*flag, *reason));
        }
        w.summary.halted = Some(*flag);
    }
    Ok(raised)
}

/// After the commit: alerts, metrics, and the pass's running summary.
fn publish(raised: Vec<(&'static str, &str)>, w: Written<'_>, summary: &mut DeliverSummary) {
    for (flag, reason) in raised {
        tracing::error!(flag, reason = %reason, "delivery halted: operator action needed (`wa-smile deliver --resume` once fixed)");
        metrics::counter!(m::OPERATOR_ALERTS, "kind" => flag).increment(1);
    }
    for (name, label, value) in w.counters {
        metrics::counter!(name, label => value).increment(1);
    }
    let local = w.summary;
    summary.sent += local.sent;
    summary.failed += local.failed;
    summary.retried += local.retried;
    summary.skipped += local.skipped;
    summary.halted = summary.halted.or(local.halted);
}
