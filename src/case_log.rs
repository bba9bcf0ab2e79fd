//! The case log: every state change of a case as an event, written in the
//! same transaction as the change and mirrored in the audit chain.

use crate::audit::AuditEntry;
use crate::store::{rows_per_statement, values_placeholders, Conn, Tx};
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
    const COLS: usize = 5;
    for chunk in events.chunks(rows_per_statement(tx.backend(), COLS)) {
        let sql = format!(
            "INSERT INTO case_events (case_id, at, kind, actor, data) VALUES {}",
            values_placeholders(chunk.len(), COLS, 1)
        );
        let mut q = tx.query(&sql);
        for e in chunk {
            q = q
                .bind(e.case_id)
                .bind(e.at)
                .bind(e.kind.as_str())
                .bind(e.actor.to_string())
                .bind(e.data.to_string());
        }
        q.execute(&mut *tx)
            .await
            .context("failed to write case events")?;
    }
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

/// The case log of one case, oldest first.
pub async fn for_case<'c>(conn: impl Into<Conn<'c>>, case_id: i64) -> Result<Vec<Event>> {
    let conn = conn.into();
    let q = match &conn {
        Conn::Db(db) => db.query("SELECT id, case_id, at, kind, actor, data FROM case_events WHERE case_id = $1 ORDER BY id"),
        Conn::Tx(tx) => tx.query("SELECT id, case_id, at, kind, actor, data FROM case_events WHERE case_id = $1 ORDER BY id"),
    };
    let rows: Vec<EventRow> = q.bind(case_id).fetch_all_as(conn).await?;
    rows.into_iter()
        .map(|r| {
            Ok(Event {
                id: r.id,
                case_id: r.case_id,
                at: r.at,
                kind: r.kind,
                actor: r.actor,
                data: serde_json::from_str(&r.data).context("case event data is not JSON")?,
            })
        })
        .collect()
}
