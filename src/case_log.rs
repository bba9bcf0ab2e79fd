//! The case log: every state change of a case as an event, written in the
//! same transaction as the change and mirrored in the audit chain.

use crate::audit::AuditEntry;
use crate::store::{Conn, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

macro_rules! event_kinds {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// Kinds of case event, as CONTRACT names them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind { $($variant),+ }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $(EventKind::$variant => $name),+ }
            }
        }
    };
}

event_kinds! {
    CaseOpened => "case_opened",
    StageChanged => "stage_changed",
    MessageQueued => "message_queued",
    MessageSent => "message_sent",
    MessageDelivered => "message_delivered",
    MessageRead => "message_read",
    MessageFailed => "message_failed",
    MessageSkipped => "message_skipped",
    ReplyReceived => "reply_received",
    PromiseToPay => "promise_to_pay",
    PromiseKept => "promise_kept",
    PromiseBroken => "promise_broken",
    PaymentClaimed => "payment_claimed",
    PaymentLinkSent => "payment_link_sent",
    PaymentReceived => "payment_received",
    PaymentCorrected => "payment_corrected",
    OfficerRequested => "officer_requested",
    InstallmentRequested => "installment_requested",
    DisputeRaised => "dispute_raised",
    OptedOut => "opted_out",
    WrongNumber => "wrong_number",
    NoteAdded => "note_added",
    Assigned => "assigned",
    Paused => "paused",
    Resumed => "resumed",
    CaseResolved => "case_resolved",
    CaseReopened => "case_reopened",
    LabelAdded => "label_added",
    LabelRemoved => "label_removed",
    ContactUpdated => "contact_updated",
    IntentCorrected => "intent_corrected",
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind `{s}`"))
    }
}

/// Who caused an event: `system`, `employer` or `officer:<username>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    System,
    Employer,
    Officer(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Employer => f.write_str("employer"),
            Actor::Officer(u) => write!(f, "officer:{u}"),
        }
    }
}

/// An event about to be written.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub case_id: i64,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub actor: Actor,
    pub data: Value,
}

impl NewEvent {
    pub fn new(
        case_id: i64,
        at: DateTime<Utc>,
        kind: EventKind,
        actor: Actor,
        data: Value,
    ) -> Self {
        Self {
            case_id,
            at: crate::time::truncate(at),
            kind,
            actor,
            data,
        }
    }
}

/// A stored event, as the API and exports show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: i64,
    pub case_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor: String,
    pub data: Value,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    case_id: i64,
    at: DateTime<Utc>,
    kind: String,
    actor: String,
    data: String,
}

/// Writes events (and their audit entries) in `tx`, many rows a statement.
pub async fn record(tx: &mut Tx, events: &[NewEvent]) -> Result<()> {
    tx.execute_chunked(
        "INSERT INTO case_events (case_id, at, kind, actor, data, outbox_id) VALUES {values}",
        6,
        events,
        |q, e| {
            q.bind(e.case_id)
                .bind(e.at)
                .bind(e.kind.as_str())
                .bind(e.actor.to_string())
                .bind(e.data.to_string())
                // The message an event is about, as a column: the timeline
                // pages on it (one bubble per message).
                .bind(e.data.get("outbox_id").and_then(Value::as_i64))
        },
    )
    .await
    .context("failed to write case events")?;
    // The case list sorts on each case's latest event.
    let mut latest: std::collections::BTreeMap<i64, DateTime<Utc>> = Default::default();
    for e in events {
        let t = latest.entry(e.case_id).or_insert(e.at);
        *t = (*t).max(e.at);
    }
    let latest: Vec<(i64, DateTime<Utc>)> = latest.into_iter().collect();
    crate::case::figures::touch(tx, &latest).await?;
    crate::case::figures::conversation(tx, events).await?;
    for e in events {
        tx.audit(
            AuditEntry::new(
                e.at,
                e.actor.to_string(),
                format!("case.{}", e.kind),
                format!("case:{}", e.case_id),
            )
            .after(e.data.clone()),
        );
    }
    Ok(())
}

/// One page of a case's conversation, newest first: the events older than
/// the event `before` (all when `None`) that start a line of the timeline — every
/// event but a message's later ones (its ticks come from the outbox row).
/// Ordered by the event's instant, then id; at most `limit` events.
pub async fn page(
    db: &crate::store::Db,
    case_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Event>> {
    let rows: Vec<EventRow> = db
        .query(
            "SELECT e.id, e.case_id, e.at, e.kind, e.actor, e.data FROM case_events e \
             WHERE e.case_id = $1 \
               AND (e.outbox_id IS NULL OR e.id = (SELECT MIN(f.id) FROM case_events f \
                    WHERE f.case_id = e.case_id AND f.outbox_id = e.outbox_id)) \
               AND ($2 IS NULL OR EXISTS (SELECT 1 FROM case_events b WHERE b.id = $2 \
                    AND b.case_id = e.case_id AND (e.at < b.at OR (e.at = b.at AND e.id < b.id)))) \
             ORDER BY e.at DESC, e.id DESC LIMIT $3",
        )
        .bind(case_id)
        .bind(before)
        .bind(limit)
        .fetch_all_as(db)
        .await?;
    rows.into_iter().map(event_of).collect()
}

/// The newest event id of a case: what changes when anything on its page
/// does (a reply, a tick, an officer's action). One index lookup.
pub async fn version(db: &crate::store::Db, case_id: i64) -> Result<i64> {
    Ok(db
        .query("SELECT COALESCE(MAX(id), 0) FROM case_events WHERE case_id = $1")
        .bind(case_id)
        .fetch_scalar(db)
        .await?)
}

/// The newest event id of any case `branch` (every branch when `None`)
/// may see: the case list polls it to know whether to reload.
pub async fn version_for_branch(db: &crate::store::Db, branch: Option<&str>) -> Result<i64> {
    let v: Option<i64> = match branch {
        None => {
            db.query("SELECT MAX(id) FROM case_events")
                .fetch_scalar(db)
                .await?
        }
        // Walks the events newest first until one of the branch's: cheap
        // while the branch is active, and bounded by the index otherwise.
        Some(b) => {
            db.query(
                "SELECT e.id FROM case_events e JOIN cases c ON c.id = e.case_id \
                 WHERE c.branch = $1 \
                 ORDER BY e.id DESC LIMIT 1",
            )
            .bind(b.to_owned())
            .fetch_optional_scalar(db)
            .await?
        }
    };
    Ok(v.unwrap_or(0))
}

fn event_of(r: EventRow) -> Result<Event> {
    Ok(Event {
        id: r.id,
        case_id: r.case_id,
        at: r.at,
        kind: r.kind,
        actor: r.actor,
        data: serde_json::from_str(&r.data).context("case event data is not JSON")?,
    })
}

/// The case log of one case, oldest first.
pub async fn for_case<'c>(conn: impl Into<Conn<'c>>, case_id: i64) -> Result<Vec<Event>> {
    let conn = conn.into();
    let q = match &conn {
        Conn::Db(db) => db.query("SELECT id, case_id, at, kind, actor, data FROM case_events WHERE case_id = $1 ORDER BY id"),
        Conn::Tx(tx) => tx.query("SELECT id, case_id, at, kind, actor, data FROM case_events WHERE case_id = $1 ORDER BY id"),
    };
    let rows: Vec<EventRow> = q.bind(case_id).fetch_all_as(conn).await?;
    rows.into_iter().map(event_of).collect()
}
