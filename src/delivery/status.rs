//! Status settlement: what Meta's status webhooks say about our messages.
//! Statuses arrive at least once and in any order, so each (message,
//! status) is recorded once and the row's state only moves forward:
//! sent < delivered < read, and failed is terminal.

use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::metrics as m;
use crate::store::{Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

/// A message status as Meta reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl MessageStatus {
    /// Meta's status name; `played` (voice) counts as `read`. Unknown names
    /// are None, to be ignored.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" | "played" => Self::Read,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }
}

/// The rank of an outbox state on the same scale (0: not yet sent).
fn state_rank(state: &str) -> u8 {
    MessageStatus::parse(state).map_or(0, |s| s.rank())
}

/// One entry of a webhook's `statuses[]`.
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
    let cols =
        "id, case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, wamid";
    let mut row = None;
    if !update.wamid.trim().is_empty() {
        row = tx
            .query(&format!("SELECT {cols} FROM outbox WHERE wamid = $1"))
            .bind(update.wamid.clone())
            .fetch_optional(&mut *tx)
            .await
            .context("failed to find the message of a status")?;
    }
    if row.is_none() {
        if let Some(id) = update.callback_data {
            row = tx
                .query(&format!(
                    "SELECT {cols} FROM outbox WHERE id = $1 AND (wamid IS NULL OR wamid = $2)"
                ))
                .bind(id)
                .bind(update.wamid.clone())
                .fetch_optional(&mut *tx)
                .await
                .context("failed to find the message of a status")?;
        }
    }
    let Some(row) = row else {
        return Ok(false);
    };
    let id: i64 = row.get("id")?;
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
    let state: String = row.get("state")?;
    let case_id: Option<i64> = row.get("case_id")?;
    let message: String = row.get("message")?;
    let kind: String = row.get("kind")?;
    let unsent = matches!(state.as_str(), "queued" | "sending");
    // A message delivered or read reached the employer: a `failed` after
    // that (Meta sends them, out of order or for a later delivery attempt
    // to another device) is recorded above, but neither undoes the delivery
    // nor makes the contact unreachable.
    let reached = matches!(state.as_str(), "delivered" | "read");
    if update.status == MessageStatus::Failed && reached {
        tracing::warn!(
            outbox_id = id,
            state = %state,
            code = ?update.error.as_ref().map(|e| e.0),
            "a failed status after the message was delivered; kept as recorded, not applied"
        );
        metrics::counter!(m::MESSAGE_STATUSES, "status" => "failed_after_delivery").increment(1);
        return Ok(true);
    }
    let advance = state != "failed" && update.status.rank() > state_rank(&state);
    let (code, title) = update
        .error
        .clone()
        .map_or((None, None), |(c, t)| (Some(c), Some(t)));
    if advance {
        tx.query(
            "UPDATE outbox SET state = $2, wamid = COALESCE(wamid, $3), status_at = $4, \
                    sent_at = CASE WHEN $5 THEN COALESCE(sent_at, $4) ELSE sent_at END, \
                    lease_until = NULL, error_code = COALESCE($6, error_code), \
                    error_title = COALESCE($7, error_title), updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(update.status.as_str())
        .bind(Some(update.wamid.clone()).filter(|w| !w.trim().is_empty()))
        .bind(at)
        .bind(update.status != MessageStatus::Failed)
        .bind(code)
        .bind(title.clone())
        .execute(&mut *tx)
        .await
        .context("failed to settle a message status")?;
    }
    let mut events = Vec::new();
    if let Some(case_id) = case_id {
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
    if update.status == MessageStatus::Failed && state != "failed" {
        let free_form = kind != "template";
        if code == Some(131047) && free_form {
            // Outside the 24-hour window: the template form goes instead.
            let key: String = row.get("idempotency_key")?;
            tx.query(
                "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, \
                                     due_at, fallback_of, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'template', $5, $6, 'queued', $7, $8, $7, $7) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(case_id)
            .bind(row.get::<i64>("employer_id")?)
            .bind(format!("{key}:template"))
            .bind(message.clone())
            .bind(row.get::<Option<String>>("wa_id")?)
            .bind(row.get::<String>("body")?)
            .bind(crate::time::now())
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("failed to queue the template fallback")?;
        } else if let Some(case_id) = case_id {
            if code == Some(131026) {
                tx.query(
                    "UPDATE employers SET contact_invalid_at = $2, updated_at = $2 \
                     WHERE id = $1 AND contact_invalid_at IS NULL",
                )
                .bind(row.get::<i64>("employer_id")?)
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
    }
    case_log::record(tx, &events).await?;
    metrics::counter!(m::MESSAGE_STATUSES, "status" => update.status.as_str()).increment(1);
    Ok(true)
}
