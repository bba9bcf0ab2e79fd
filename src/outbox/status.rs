//! Status settlement: what Meta's status webhooks say about our messages.
//! Statuses arrive at least once and in any order, so each (message,
//! status) is recorded once and the row's state only moves forward:
//! sent < delivered < read, and failed is terminal.

use super::{MessageStatus, NewMessage, OutboxState};
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::metrics as m;
use crate::store::{Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

/// A status to settle on its outbox row: one entry of a webhook's
/// `statuses[]`, as stored and read back.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub wamid: String,
    pub status: MessageStatus,
    pub timestamp: DateTime<Utc>,
    /// `recipient_id` (never logged unmasked).
    pub recipient: Option<String>,
    /// `biz_opaque_callback_data`: the outbox id we sent.
    pub callback_data: Option<i64>,
    /// Meta's first error (`code`, `title`) on a failed status.
    pub error: Option<(i64, String)>,
}

/// Records a status. Matched by wamid or, when the process died before
/// writing the wamid, by the callback data (the outbox id). Returns whether
/// anything was recorded: false for a redelivery, an unknown message, or a
/// status already seen.
pub async fn record_status(db: &Db, update: StatusUpdate) -> Result<bool> {
    let mut tx = db.begin().await?;
    let changed = record_status_in(&mut tx, update).await?;
    // Nothing was written when nothing changed, so committing is harmless.
    tx.commit().await?;
    Ok(changed)
}

/// `record_status` inside the caller's transaction, so many statuses can
/// share one commit (the webhook settles them in pages).
pub async fn record_status_in(tx: &mut Tx, update: StatusUpdate) -> Result<bool> {
    let at = crate::time::truncate(update.timestamp);
    let Some(row) = find(tx, &update).await? else {
        return Ok(false);
    };
    let id = row.id;
    let seen = tx
        .query(
            "INSERT INTO outbox_statuses (outbox_id, status, at) VALUES ($1, $2, $3) \
             ON CONFLICT (outbox_id, status) DO NOTHING",
        )
        .bind(id)
        .bind(update.status.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("failed to record a status")?;
    if seen == 0 {
        return Ok(false);
    }
    let state = row.state;
    // A message delivered or read reached the employer: a `failed` after
    // that (Meta sends them, out of order or for a later delivery attempt
    // to another device) is recorded above, but neither undoes the delivery
    // nor makes the contact unreachable.
    if update.status == MessageStatus::Failed && state.reached() {
        tracing::warn!(
            outbox_id = id,
            state = %state,
            code = ?update.error.as_ref().map(|e| e.0),
            "a failed status after the message was delivered; kept as recorded, not applied"
        );
        metrics::counter!(m::MESSAGE_STATUSES, "status" => "failed_after_delivery").increment(1);
        return Ok(true);
    }
    let (code, title) = update
        .error
        .clone()
        .map_or((None, None), |(c, t)| (Some(c), Some(t)));
    if state.advanced_by(update.status) {
        tx.query(
            "UPDATE outbox SET state = $2, wamid = COALESCE(wamid, $3), status_at = $4, \
                    sent_at = CASE WHEN $5 THEN COALESCE(sent_at, $4) ELSE sent_at END, \
                    lease_until = NULL, error_code = COALESCE($6, error_code), \
                    error_title = COALESCE($7, error_title), updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(update.status.state())
        .bind(Some(update.wamid.clone()).filter(|w| !w.trim().is_empty()))
        .bind(at)
        .bind(update.status != MessageStatus::Failed)
        .bind(code)
        .bind(title.clone())
        .execute(&mut *tx)
        .await
        .context("failed to settle a message status")?;
    }
    let events = status_events(&row, &update, at, (code, title.as_deref()));
    if update.status == MessageStatus::Failed && state != OutboxState::Failed {
        on_failure(tx, &row, code, at).await?;
    }
    case_log::record(tx, &events).await?;
    metrics::counter!(m::MESSAGE_STATUSES, "status" => update.status.as_str()).increment(1);
    Ok(true)
}

/// The case log's record of a status (and of the send, when the worker died
/// before writing it).
fn status_events(
    row: &StatusRow,
    update: &StatusUpdate,
    at: DateTime<Utc>,
    (code, title): (Option<i64>, Option<&str>),
) -> Vec<NewEvent> {
    let id = row.id;
    let message = &row.message;
    let unsent = row.state.is_unsent();
    let mut events = Vec::new();
    if let Some(case_id) = row.case_id {
        let wamid = &update.wamid;
        // The worker died before writing `sent`: this is the record of it.
        if unsent && update.status != MessageStatus::Failed {
            events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageSent,
                Actor::System,
                json!({"outbox_id": id, "template": message, "wamid": wamid, "via": "status"}),
            ));
        }
        match update.status {
            MessageStatus::Sent => {}
            MessageStatus::Delivered => events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageDelivered,
                Actor::System,
                json!({"outbox_id": id, "wamid": wamid}),
            )),
            MessageStatus::Read => events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageRead,
                Actor::System,
                json!({"outbox_id": id, "wamid": wamid}),
            )),
            MessageStatus::Failed => events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageFailed,
                Actor::System,
                json!({"outbox_id": id, "message": message, "wamid": wamid, "code": code, "title": title}),
            )),
        }
    }
    events
}

/// What a failure means beyond the row: a free-form message outside the
/// window is queued again as its template; otherwise the case goes to an
/// officer (and an undeliverable number is marked so).
async fn on_failure(
    tx: &mut Tx,
    row: &StatusRow,
    code: Option<i64>,
    at: DateTime<Utc>,
) -> Result<()> {
    let free_form = row.kind != "template";
    if code == Some(131047) && free_form {
        // Outside the 24-hour window: the template form goes instead.
        let now = crate::time::now();
        let fallback = NewMessage {
            fallback_of: Some(row.id),
            ..NewMessage::new(
                row.employer_id,
                format!("{}:template", row.idempotency_key),
                &row.message,
                "template",
                row.body.clone(),
                now,
            )
            .case(row.case_id)
            .to(row.wa_id.clone())
        };
        super::enqueue(tx, &fallback, now)
            .await
            .context("failed to queue the template fallback")?;
    } else if let Some(case_id) = row.case_id {
        if code == Some(131026) {
            tx.query(
                "UPDATE employers SET contact_invalid_at = $2, updated_at = $2 \
                 WHERE id = $1 AND contact_invalid_at IS NULL",
            )
            .bind(row.employer_id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context("failed to mark a contact unreachable")?;
        }
        tx.query(
            "UPDATE cases SET status = 'needs_officer', updated_at = $2 \
             WHERE id = $1 AND resolved_at IS NULL AND status IN ('open', 'promised')",
        )
        .bind(case_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("failed to flag the case for an officer")?;
    }
    metrics::counter!(m::MESSAGES_FAILED, "reason" => code.map_or("status_failed".to_owned(), |c| format!("meta_{c}"))).increment(1);
    Ok(())
}

/// The outbox row a status is about.
#[derive(sqlx::FromRow)]
struct StatusRow {
    id: i64,
    case_id: Option<i64>,
    employer_id: i64,
    idempotency_key: String,
    message: String,
    kind: String,
    wa_id: Option<String>,
    body: String,
    state: OutboxState,
}

/// Matched by wamid or, when the process died before writing the wamid, by
/// the callback data (the outbox id).
async fn find(tx: &mut Tx, update: &StatusUpdate) -> Result<Option<StatusRow>> {
    const COLS: &str =
        "id, case_id, employer_id, idempotency_key, message, kind, wa_id, body, state";
    let mut row = None;
    if !update.wamid.trim().is_empty() {
        row = tx
            .query(&format!("SELECT {COLS} FROM outbox WHERE wamid = $1"))
            .bind(update.wamid.clone())
            .fetch_optional_as(&mut *tx)
            .await
            .context("failed to find the message of a status")?;
    }
    if row.is_none() {
        if let Some(id) = update.callback_data {
            row = tx
                .query(&format!(
                    "SELECT {COLS} FROM outbox WHERE id = $1 AND (wamid IS NULL OR wamid = $2)"
                ))
                .bind(id)
                .bind(update.wamid.clone())
                .fetch_optional_as(&mut *tx)
                .await
                .context("failed to find the message of a status")?;
        }
    }
    Ok(row)
}
