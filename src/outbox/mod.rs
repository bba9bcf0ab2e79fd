//! The outbox: one row per message to an employer, from the moment it is
//! queued to the last status Meta reports for it. This module owns the
//! `outbox` and `outbox_statuses` tables; every other module queues,
//! cancels, claims and settles messages through the functions here.
//!
//! A row's life: `queued` (or `skipped`/`cancelled` with a reason) →
//! `sending` (a worker's claim, with a lease) → `sent` → `delivered` →
//! `read`, or `failed`. Status only moves forward ([`OutboxState::advanced_by`]):
//! statuses arrive at least once and in any order.

mod status;
mod worker;

pub use status::{record_status, record_status_in, StatusUpdate};
pub use worker::{
    await_status, claim, defer, depth, due_outside_window, fail, hold_orphaned_sends, mark_handed,
    mark_sent, postpone_queued, recent_initiated, release, release_orphaned_claims,
    reminders_sent_since, requeue_as_template, requeue_unknown, retry_later, skip, Claimed,
    DueRecipient, Initiated, ReminderSent, Requeued, SentRow,
};

use crate::messages::{fill_body, Catalog};
use crate::store::{list_placeholders, rows_per_statement, Conn, Db, StoreError, TextColumn, Tx};
use crate::whatsapp::MessageContent;
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};

/// Where a row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxState {
    /// Waiting for its due time and the sending window.
    Queued,
    /// Claimed by a worker (a lease), possibly handed to HTTP.
    Sending,
    /// Meta accepted it (a wamid).
    Sent,
    Delivered,
    Read,
    /// Meta or the worker gave up on it; terminal.
    Failed,
    /// Not sent, with a reason (the case changed, a reply withheld).
    Skipped,
    /// Withdrawn before it was claimed (the case moved on or closed).
    Cancelled,
}

impl OutboxState {
    pub const ALL: [OutboxState; 8] = [
        OutboxState::Queued,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Delivered,
        OutboxState::Read,
        OutboxState::Failed,
        OutboxState::Skipped,
        OutboxState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Not yet accepted by Meta.
    pub fn is_unsent(self) -> bool {
        matches!(self, Self::Queued | Self::Sending)
    }

    /// Reached the employer's phone.
    pub fn reached(self) -> bool {
        matches!(self, Self::Delivered | Self::Read)
    }

    /// The row's place on the status scale (0: not sent).
    fn status_rank(self) -> u8 {
        match self {
            Self::Sent => MessageStatus::Sent.rank(),
            Self::Delivered => MessageStatus::Delivered.rank(),
            Self::Read => MessageStatus::Read.rank(),
            Self::Failed => MessageStatus::Failed.rank(),
            _ => 0,
        }
    }

    /// Whether `status` moves a row in this state forward: sent < delivered
    /// < read, failed ranks last, and nothing leaves `failed`. A late `sent`
    /// never overwrites `read`.
    pub fn advanced_by(self, status: MessageStatus) -> bool {
        self != Self::Failed && status.rank() > self.status_rank()
    }
}

impl std::fmt::Display for OutboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TextColumn for OutboxState {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("`{s}` is not an outbox state"))
    }
}

crate::store_column!(text: OutboxState);

/// A message's status as Meta reports it in a status webhook — the one
/// representation used by the webhook, the stored statuses and settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl MessageStatus {
    /// Meta's status name (any case); `played` (voice) counts as `read`.
    /// Names this code does not know are None: kept for officers, settled
    /// on nothing.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" | "played" => Self::Read,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }

    /// The row state this status settles a message in.
    pub fn state(self) -> OutboxState {
        match self {
            Self::Sent => OutboxState::Sent,
            Self::Delivered => OutboxState::Delivered,
            Self::Read => OutboxState::Read,
            Self::Failed => OutboxState::Failed,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }
}

/// How long after the employer's last message free-form messages may be
/// sent (WhatsApp's customer-service window).
pub fn service_window() -> Duration {
    Duration::hours(24)
}

/// The 24-hour rule: a window opened by the employer's last message at `t`
/// is open at `at` when `t <= at < t + 24 h`. Outside it only approved
/// templates may go.
pub fn window_open(last_inbound_at: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    last_inbound_at.is_some_and(|t| t > window_start(at) && t <= at)
}

/// The earliest last-inbound time whose window is still open at `at`
/// (exclusive): for queries that filter on `last_inbound_at > …`.
pub fn window_start(at: DateTime<Utc>) -> DateTime<Utc> {
    at - service_window()
}

/// When the window opened by a message at `t` closes.
pub fn window_closes_at(t: DateTime<Utc>) -> DateTime<Utc> {
    t + service_window()
}

/// The exact text the employer sees for `content`: a free-form text or
/// interactive body as is, a template's approved body with its parameters
/// filled in. None for a template the catalog does not know.
pub fn employer_text(catalog: &Catalog, content: &MessageContent) -> Option<String> {
    match content {
        MessageContent::Text { text } => Some(text.body.clone()),
        MessageContent::Interactive { interactive } => Some(interactive.body.text.clone()),
        MessageContent::Template { template } => {
            let def = catalog.by_whatsapp_name(&template.name)?;
            let params: Vec<String> = template
                .body_texts()
                .into_iter()
                .map(str::to_owned)
                .collect();
            Some(fill_body(&def.whatsapp.body, &params))
        }
    }
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub case_id: Option<i64>,
    pub employer_id: i64,
    /// Unique per message: a second enqueue with the same key is a no-op
    /// (`case:42:stage:reminder_2`, `reply:…`, `case:42:manual:…`).
    pub key: String,
    /// The catalog message name (or `free_text`).
    pub message: String,
    /// `template`, `text` or `interactive`.
    pub kind: String,
    pub wa_id: Option<String>,
    /// JSON: what delivery renders from (`content`, `text`, `in_reply_to`, …).
    pub body: String,
    /// The exact text the employer will see, when it is known at queue time
    /// (a reply, an officer's text); a reminder's is written when it is sent.
    pub text: Option<String>,
    pub due_at: DateTime<Utc>,
    /// Kept but not sent, with this reason: the row is `skipped`.
    pub withheld: Option<String>,
    /// What an automated reply said about which case state (replies dedupe on it).
    pub reply_state: Option<String>,
    /// The row this one replaces (a template resent for a free-form one).
    pub fallback_of: Option<i64>,
}

impl NewMessage {
    pub fn new(
        employer_id: i64,
        key: String,
        message: &str,
        kind: &str,
        body: String,
        due_at: DateTime<Utc>,
    ) -> Self {
        Self {
            case_id: None,
            employer_id,
            key,
            message: message.to_owned(),
            kind: kind.to_owned(),
            wa_id: None,
            body,
            text: None,
            due_at,
            withheld: None,
            reply_state: None,
            fallback_of: None,
        }
    }

    pub fn case(mut self, case_id: Option<i64>) -> Self {
        self.case_id = case_id;
        self
    }

    pub fn to(mut self, wa_id: Option<String>) -> Self {
        self.wa_id = wa_id;
        self
    }

    pub fn text(mut self, text: Option<String>) -> Self {
        self.text = text;
        self
    }
}

/// A row `enqueue_many` created.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Queued {
    pub id: i64,
    pub case_id: Option<i64>,
    pub message: String,
    pub due_at: DateTime<Utc>,
}

/// Queues one message (`queued`, or `skipped` when withheld), once per key.
/// Returns the new row's id; None when the key was already queued.
pub async fn enqueue(tx: &mut Tx, m: &NewMessage, at: DateTime<Utc>) -> Result<Option<i64>> {
    let state = if m.withheld.is_some() {
        OutboxState::Skipped
    } else {
        OutboxState::Queued
    };
    tx.query(
        "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, text, state, \
                             due_at, created_at, updated_at, last_error, reply_state, fallback_of) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(m.case_id)
    .bind(m.employer_id)
    .bind(m.key.clone())
    .bind(m.message.clone())
    .bind(m.kind.clone())
    .bind(m.wa_id.clone())
    .bind(m.body.clone())
    .bind(m.text.clone())
    .bind(state)
    .bind(crate::time::truncate(m.due_at))
    .bind(crate::time::truncate(at))
    .bind(m.withheld.clone())
    .bind(m.reply_state.clone())
    .bind(m.fallback_of)
    .fetch_optional_scalar(&mut *tx)
    .await
    .context("failed to queue a message")
}

/// Queues many messages (the scan's stage reminders), many rows per
/// statement, once per key. Returns the rows created, in no set order.
/// `withheld`, `reply_state` and `fallback_of` are not written here.
pub async fn enqueue_many(
    tx: &mut Tx,
    messages: &[NewMessage],
    at: DateTime<Utc>,
) -> Result<Vec<Queued>> {
    const COLS: usize = 9;
    let mut out = Vec::new();
    for chunk in messages.chunks(crate::store::rows_per_statement(tx.backend(), COLS)) {
        let shared = chunk.len() * COLS + 1;
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                let p: Vec<String> = (1..=COLS).map(|c| format!("${}", r * COLS + c)).collect();
                format!("({}, 'queued', ${shared}, ${shared})", p.join(","))
            })
            .collect();
        let sql = format!(
            "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, text, due_at, \
                                 state, created_at, updated_at) \
             VALUES {} ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, case_id, message, due_at",
            values.join(",")
        );
        let mut q = tx.query(&sql);
        for m in chunk {
            q = q
                .bind(m.case_id)
                .bind(m.employer_id)
                .bind(m.key.clone())
                .bind(m.message.clone())
                .bind(m.kind.clone())
                .bind(m.wa_id.clone())
                .bind(m.body.clone())
                .bind(m.text.clone())
                .bind(m.due_at);
        }
        out.extend(
            q.bind(at)
                .fetch_all_as::<Queued>(&mut *tx)
                .await
                .context("failed to queue messages")?,
        );
    }
    Ok(out)
}

/// A queued row withdrawn.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Cancelled {
    pub id: i64,
    pub case_id: Option<i64>,
    pub message: String,
}

/// Which queued rows of an employer to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    /// Only the scan's stage reminders (`case:…:stage:…` keys).
    Reminders,
}

/// Cancels an employer's queued messages; returns them (for the case log).
pub async fn cancel_for_employer(
    tx: &mut Tx,
    employer_id: i64,
    which: Which,
    at: DateTime<Utc>,
) -> Result<Vec<Cancelled>> {
    let sql = match which {
        Which::Reminders => {
            "UPDATE outbox SET state = 'cancelled', updated_at = $2 \
             WHERE employer_id = $1 AND state = 'queued' AND idempotency_key LIKE 'case:%:stage:%' \
             RETURNING id, case_id, message"
        }
        Which::All => {
            "UPDATE outbox SET state = 'cancelled', updated_at = $2 \
             WHERE employer_id = $1 AND state = 'queued' RETURNING id, case_id, message"
        }
    };
    tx.query(sql)
        .bind(employer_id)
        .bind(at)
        .fetch_all_as(&mut *tx)
        .await
        .context("failed to cancel queued messages")
}

/// The idempotency key of a case's stage reminder: one per case and stage.
pub fn stage_key(case_id: i64, stage: crate::domain::Stage) -> String {
    format!("case:{case_id}:stage:{stage}")
}

/// The scan's join from a case row `c` to its current stage's reminder `o`
/// (by [`stage_key`]), for a query that reads both in one pass. Kept here so
/// the key's shape has one owner.
pub const CURRENT_STAGE_JOIN: &str =
    "LEFT JOIN outbox o ON o.idempotency_key = 'case:' || c.id || ':stage:' || c.stage";

/// The ids of cases with a message that failed after `after` (a
/// placeholder or expression), for the case list's "failed" filter.
pub fn failed_case_ids_sql(after: &str) -> String {
    format!(
        "SELECT o.case_id FROM outbox o WHERE o.state = '{}' AND o.updated_at > {after}",
        OutboxState::Failed.as_str()
    )
}

/// A report's join from a row carrying an outbox id (`message_id`, e.g.
/// `mp.outbox_id`) to the message `o` it names, so `o.employer_id` says
/// whom it went to. Rows without a message keep their place (`LEFT JOIN`).
pub fn message_join_sql(message_id: &str) -> String {
    format!("LEFT JOIN outbox o ON o.id = {message_id}")
}

/// A stage reminder as the scan reads it back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StageReminder {
    pub id: i64,
    pub employer_id: i64,
    pub case_id: Option<i64>,
    pub message: String,
    pub state: OutboxState,
    pub due_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The stage reminders of employers `lo..hi` that are still queued or were
/// due or sent since `since`: what the scan cancels when a case moves on and
/// counts towards the daily cap.
pub async fn stage_reminders(
    tx: &mut Tx,
    lo: i64,
    hi: i64,
    since: DateTime<Utc>,
) -> Result<Vec<StageReminder>> {
    tx.query(
        "SELECT id, employer_id, case_id, message, state, due_at, sent_at FROM outbox \
         WHERE employer_id >= $1 AND employer_id < $2 AND idempotency_key LIKE 'case:%:stage:%' \
           AND (state = 'queued' OR due_at >= $3 OR sent_at >= $3)",
    )
    .bind(lo)
    .bind(hi)
    .bind(since)
    .fetch_all_as(&mut *tx)
    .await
    .context("failed to read queued messages")
}

/// Cancels the rows of `ids` that are still queued; returns those it
/// cancelled (a row sent meanwhile stays sent).
pub async fn cancel_queued(tx: &mut Tx, ids: &[i64], at: DateTime<Utc>) -> Result<Vec<Cancelled>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(rows_per_statement(tx.backend(), 1)) {
        let sql = format!(
            "UPDATE outbox SET state = 'cancelled', updated_at = $1 \
             WHERE state = 'queued' AND id IN ({}) RETURNING id, case_id, message",
            list_placeholders(chunk.len(), 2)
        );
        let mut q = tx.query(&sql).bind(at);
        for id in chunk {
            q = q.bind(*id);
        }
        let done: Vec<Cancelled> = q
            .fetch_all_as(&mut *tx)
            .await
            .context("failed to cancel superseded messages")?;
        out.extend(done);
    }
    Ok(out)
}

/// Cancels a case's queued messages (the case closed); returns them.
pub async fn cancel_for_case(
    tx: &mut Tx,
    case_id: i64,
    at: DateTime<Utc>,
) -> Result<Vec<Cancelled>> {
    tx.query(
        "UPDATE outbox SET state = 'cancelled', updated_at = $2 \
         WHERE case_id = $1 AND state = 'queued' RETURNING id, case_id, message",
    )
    .bind(case_id)
    .bind(at)
    .fetch_all_as(&mut *tx)
    .await
    .context("failed to cancel the case's queued messages")
}

/// Whether the employer already has this automated reply about this case
/// state, queued or sent (not withdrawn, withheld or failed).
pub async fn has_reply(
    tx: &mut Tx,
    employer_id: i64,
    message: &str,
    reply_state: &str,
) -> Result<bool> {
    // `SELECT 1` is an INT4 on PostgreSQL.
    let found: Option<i32> = tx
        .query(
            "SELECT 1 AS one FROM outbox WHERE employer_id = $1 AND message = $2 AND reply_state = $3 \
               AND state NOT IN ('cancelled', 'skipped', 'failed') LIMIT 1",
        )
        .bind(employer_id)
        .bind(message.to_owned())
        .bind(reply_state.to_owned())
        .fetch_optional_scalar(&mut *tx)
        .await
        .context("failed to look for the same reply")?;
    Ok(found.is_some())
}

/// Automated replies to the employer due after `since` (not withdrawn,
/// withheld or failed): the daily reply cap counts them.
pub async fn replies_since(tx: &mut Tx, employer_id: i64, since: DateTime<Utc>) -> Result<i64> {
    tx.query(
        "SELECT COUNT(*) AS n FROM outbox WHERE employer_id = $1 AND due_at > $2 \
           AND reply_state IS NOT NULL AND state NOT IN ('cancelled', 'skipped', 'failed')",
    )
    .bind(employer_id)
    .bind(since)
    .fetch_scalar(&mut *tx)
    .await
    .context("failed to count today's replies")
}

/// A settled row's personal data, for retention.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Personal {
    pub id: i64,
    pub body: String,
    pub wa_id: Option<String>,
    pub text: Option<String>,
}

/// Up to `limit` rows created before `cutoff` that are no longer waiting to
/// be sent, after `after_id`, by id.
pub async fn settled_before(
    db: &Db,
    cutoff: DateTime<Utc>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Personal>> {
    db.query(
        "SELECT id, body, wa_id, text FROM outbox \
         WHERE created_at < $1 AND state NOT IN ('queued', 'sending') AND id > $2 \
         ORDER BY id LIMIT $3",
    )
    .bind(cutoff)
    .bind(after_id)
    .bind(limit)
    .fetch_all_as(db)
    .await
    .context("failed to read the outbox")
}

/// Replaces a row's body and text, and forgets its number.
pub async fn redact(
    tx: &mut Tx,
    id: i64,
    body: &str,
    text: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.query("UPDATE outbox SET body = $1, text = $2, wa_id = NULL, updated_at = $3 WHERE id = $4")
        .bind(body.to_owned())
        .bind(text.map(str::to_owned))
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("failed to redact an outbox row")?;
    Ok(())
}

/// A row as an officer or a test reads it back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub case_id: Option<i64>,
    pub employer_id: i64,
    #[sqlx(rename = "idempotency_key")]
    pub key: String,
    pub message: String,
    pub kind: String,
    pub state: OutboxState,
    pub text: Option<String>,
    pub due_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// One row by id.
pub async fn get<'c>(conn: impl Into<Conn<'c>>, id: i64) -> Result<Option<Message>> {
    let conn = conn.into();
    let q = match &conn {
        Conn::Db(db) => db.query(GET_SQL),
        Conn::Tx(tx) => tx.query(GET_SQL),
    };
    match q.bind(id).fetch_one_as(conn).await {
        Ok(m) => Ok(Some(m)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context("failed to read an outbox row")),
    }
}

/// What the case page shows of a message: the words the employer saw, its
/// furthest state and, when it failed, Meta's code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Shown {
    pub id: i64,
    pub message: String,
    pub kind: String,
    pub state: OutboxState,
    pub text: Option<String>,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub status_at: Option<DateTime<Utc>>,
}

/// The rows `ids`, for a page of the timeline (one query for the page).
pub async fn shown(db: &Db, ids: &[i64]) -> Result<Vec<Shown>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, message, kind, state, text, error_code, error_title, last_error, sent_at, \
         status_at FROM outbox WHERE id IN ({})",
        marks.join(", ")
    );
    let mut q = db.query(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    q.fetch_all_as(db)
        .await
        .context("failed to read the messages of a timeline page")
}

const GET_SQL: &str =
    "SELECT id, case_id, employer_id, idempotency_key, message, kind, state, text, \
                              due_at, last_error FROM outbox WHERE id = $1";

#[cfg(test)]
mod tests;

/// The due time of the oldest queued row due by `now` (None: nothing waits),
/// for the `wa_smile_outbox_oldest_due_seconds` gauge.
pub async fn oldest_due(db: &Db, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    db.query("SELECT MIN(due_at) FROM outbox WHERE state = 'queued' AND due_at <= $1")
        .bind(now)
        .fetch_optional_scalar::<Option<DateTime<Utc>>>(db)
        .await
        .map(Option::flatten)
        .context("failed to read the oldest due message")
}

/// Whether the employer was sent, or has queued, a stage reminder (the
/// scan's or an officer's by hand) since `since` — the one-reminder-a-day
/// rule for an officer's manual send.
pub async fn reminder_since(
    tx: &mut Tx,
    employer_id: i64,
    reminders: &[&str],
    since: DateTime<Utc>,
) -> Result<bool> {
    let names: Vec<String> = reminders.iter().map(|r| format!("'{r}'")).collect();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM outbox WHERE employer_id = $1 AND created_at >= $2 \
           AND message IN ({}) AND state NOT IN ('cancelled', 'skipped', 'failed')",
        names.join(",")
    );
    let n: i64 = tx
        .query(&sql)
        .bind(employer_id)
        .bind(since)
        .fetch_scalar(&mut *tx)
        .await
        .context("failed to count today's reminders")?;
    Ok(n > 0)
}
