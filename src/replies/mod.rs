//! What the WhatsApp webhook records, and what each employer reply does.
//!
//! Statuses are stored once per (message, status) and settled on their
//! outbox rows after Meta has its answer ([`apply_pending_statuses`]); inbound messages are stored once per wamid and, in the
//! same transaction, matched to their employer and case, classified, and
//! acted on (`effects`). A message from a number no employer has is kept
//! (`unmatched_inbound`) for officers.

pub mod corrections;
mod effects;
pub mod outgoing;

use crate::config::Config;
use crate::conversation::{self, Intent};
use crate::domain::WaId;
use crate::payments::{self, Provider};
use crate::store::{values_placeholders, Db, Zone};
use crate::webhook::{InboundMessage, MessageKind, StatusEvent, WebhookEvent};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use std::collections::HashSet;

/// What one webhook call recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub messages: u64,
    pub duplicate_messages: u64,
    pub unmatched: u64,
    pub statuses: u64,
    pub duplicate_statuses: u64,
    pub other: u64,
}

/// Records every event of one verified webhook body (`body_digest`:
/// [`crate::webhook::body_digest`] of it).
pub async fn record_events(
    db: &Db,
    config: &Config,
    events: &[WebhookEvent],
    body_digest: &str,
    now: DateTime<Utc>,
) -> Result<Recorded> {
    let recorded =
        record_events_with(db, config, &StatusQueue::new(), events, body_digest, now).await?;
    // Callers outside the HTTP route expect the statuses settled on return.
    apply_pending_statuses(db).await?;
    Ok(recorded)
}

/// `record_events` with a shared [`StatusQueue`] (the HTTP route keeps one
/// so concurrent webhooks share commits).
pub async fn record_events_with(
    db: &Db,
    config: &Config,
    queue: &StatusQueue,
    events: &[WebhookEvent],
    body_digest: &str,
    now: DateTime<Utc>,
) -> Result<Recorded> {
    let now = crate::time::truncate(now);
    let mut other = Vec::new();
    let mut out = Recorded::default();
    let statuses: Vec<StatusEvent> = events
        .iter()
        .filter_map(|e| match e {
            WebhookEvent::Status(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    if !statuses.is_empty() {
        let n = statuses.len();
        let fresh = queue.store(db, statuses, now).await?;
        out.statuses = fresh.len() as u64;
        out.duplicate_statuses = (n - fresh.len()) as u64;
        metrics::counter!("webhooks_received_total", "kind" => "status")
            .increment(fresh.len() as u64);
        if !fresh.is_empty() {
            // Meta is answered once the statuses are stored; settling them
            // on their outbox rows happens after, off the request path.
            queue.settle_in_background(db);
        }
    }
    for (i, e) in events.iter().enumerate() {
        match e {
            WebhookEvent::Status(_) => {}
            WebhookEvent::InboundMessage(m) => {
                metrics::counter!("webhooks_received_total", "kind" => "message").increment(1);
                match record_inbound(db, config, m, now).await? {
                    Inbound::Duplicate => out.duplicate_messages += 1,
                    Inbound::Unmatched => {
                        out.messages += 1;
                        out.unmatched += 1;
                    }
                    Inbound::Handled => out.messages += 1,
                }
            }
            WebhookEvent::Error { error, .. } => {
                metrics::counter!("webhooks_received_total", "kind" => "error").increment(1);
                other.push((
                    i,
                    "error",
                    json!({"code": error.code, "title": error.title}),
                ));
            }
            WebhookEvent::OtherField { field } => {
                metrics::counter!("webhooks_received_total", "kind" => "other").increment(1);
                other.push((i, "other_field", json!({"field": field})));
            }
            WebhookEvent::Invalid { what, reason } => {
                metrics::counter!("webhooks_received_total", "kind" => "invalid").increment(1);
                other.push((i, "invalid", json!({"what": what, "reason": reason})));
            }
        }
    }
    out.other = store_other(db, body_digest, &other, now).await?;
    Ok(out)
}

/// How long the status settler waits after a failed pass before the next.
const SETTLE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Group commit for status webhooks. Each request queues its statuses and
/// waits for the writer lock; whoever holds it writes everything queued so
/// far in one transaction and hands every waiting request its result. So a
/// burst of webhooks costs one commit (one fsync) per batch instead of one
/// per request, and on SQLite writers never spin in the busy handler.
#[derive(Default)]
pub struct StatusQueue {
    pending: std::sync::Mutex<Vec<Waiting>>,
    writer: tokio::sync::Mutex<()>,
    /// Whether a task is already settling stored statuses (one at a time:
    /// on SQLite a second would only wait for the writer).
    settling: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type Waiting = (
    Vec<StatusEvent>,
    tokio::sync::oneshot::Sender<Result<Vec<StatusEvent>, String>>,
);

impl StatusQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Settles every stored, unapplied status in a background task unless
    /// one is already running. A status stored while the task finishes is
    /// picked up by its last look or by the next webhook's task; one left
    /// by a crash waits for the next webhook (`apply_pending_statuses`).
    pub fn settle_in_background(&self, db: &Db) {
        use std::sync::atomic::Ordering;
        if self
            .settling
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let flag = self.settling.clone();
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                // A panic is caught here: left unwound, it would leave the
                // flag set and no status would be settled again.
                let settled =
                    crate::supervise::guard("status settler", apply_pending_statuses(&db)).await;
                if let Err(e) = &settled {
                    tracing::error!(error = %format!("{e:#}"), "settling stored statuses failed");
                }
                flag.store(false, Ordering::Release);
                let more = pending_statuses(&db).await.unwrap_or(false);
                if !more
                    || flag
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                {
                    break;
                }
                // What failed is likely still pending: not in a tight loop.
                if settled.is_err() {
                    tokio::time::sleep(SETTLE_RETRY).await;
                }
            }
        });
    }

    /// Stores `statuses` (once per (wamid, status), durably) and returns
    /// the ones not seen before.
    pub async fn store(
        &self,
        db: &Db,
        statuses: Vec<StatusEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StatusEvent>> {
        use tokio::sync::oneshot::error::TryRecvError;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.lock_pending().push((statuses, tx));
        let _writer = self.writer.lock().await;
        match rx.try_recv() {
            Ok(r) => return r.map_err(anyhow::Error::msg),
            // A writer took our statuses and was cancelled or failed.
            Err(TryRecvError::Closed) => anyhow::bail!("status batch was not written"),
            Err(TryRecvError::Empty) => {}
        }
        let batch = std::mem::take(&mut *self.lock_pending());
        let all: Vec<&StatusEvent> = batch.iter().flat_map(|(s, _)| s.iter()).collect();
        let written = write_statuses(db, &all, now).await;
        for (statuses, reply) in batch {
            let r = match &written {
                Ok(fresh) => Ok(statuses.into_iter().filter(|s| claim(fresh, s)).collect()),
                Err(e) => Err(format!("{e:#}")),
            };
            let _ = reply.send(r);
        }
        rx.try_recv()
            .map_err(|_| anyhow::anyhow!("status batch lost its own result"))?
            .map_err(anyhow::Error::msg)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // The vector stays consistent even if a holder panicked.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The first request of a batch naming a new (wamid, status) gets it.
fn claim(fresh: &std::sync::Mutex<HashSet<(String, String)>>, s: &StatusEvent) -> bool {
    fresh
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(s.wamid.clone(), status_name(s).into_owned()))
}

/// Inserts statuses in one transaction; returns the (wamid, status) pairs
/// that were new.
async fn write_statuses(
    db: &Db,
    statuses: &[&StatusEvent],
    now: DateTime<Utc>,
) -> Result<std::sync::Mutex<HashSet<(String, String)>>> {
    const COLS: usize = 8;
    let mut seen = HashSet::new();
    let unique: Vec<&StatusEvent> = statuses
        .iter()
        .filter(|s| seen.insert((s.wamid.clone(), status_name(s).into_owned())))
        .copied()
        .collect();
    let mut fresh = HashSet::new();
    let mut tx = db.begin().await?;
    for chunk in unique.chunks(crate::store::rows_per_statement(db.backend(), COLS)) {
        let sql = format!(
            "INSERT INTO webhook_statuses (wamid, status, at, recipient, callback_data, error_code, error_title, created_at) \
             VALUES {} ON CONFLICT (wamid, status) DO NOTHING RETURNING wamid, status",
            values_placeholders(chunk.len(), COLS, 1)
        );
        let mut q = tx.query(&sql);
        for s in chunk {
            q = q
                .bind(s.wamid.clone())
                .bind(status_name(s).into_owned())
                .bind(sane_instant(s.timestamp, now))
                .bind(s.recipient.clone())
                .bind(s.callback_data.clone())
                .bind(s.error.as_ref().and_then(|e| e.code))
                .bind(s.error.as_ref().and_then(|e| e.title.clone()))
                .bind(now);
        }
        let new: Vec<(String, String)> = q
            .fetch_all_as(&mut tx)
            .await
            .context("failed to store statuses")?;
        fresh.extend(new);
    }
    tx.commit().await?;
    Ok(std::sync::Mutex::new(fresh))
}

/// A sender-claimed instant within ten years before `now` and no later
/// than `now`: what is stored and acted on. Timestamps are Meta's claim, and
/// values near chrono's limits break date arithmetic (and PostgreSQL's
/// range) while meaning nothing.
fn sane_instant(t: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    crate::time::truncate(t.clamp(now - chrono::Duration::days(3650), now))
}

/// The status as stored: a known name in lower case (`played` stays
/// `played`), else what Meta sent.
fn status_name(s: &StatusEvent) -> std::borrow::Cow<'_, str> {
    match (s.status, s.raw_status.as_deref()) {
        (Some(_), Some(raw)) => raw.trim().to_ascii_lowercase().into(),
        (Some(known), None) => known.as_str().into(),
        (None, raw) => raw.unwrap_or("unknown").into(),
    }
}

/// Whether any stored status still waits to be applied.
async fn pending_statuses(db: &Db) -> Result<bool> {
    // `SELECT 1` is an INT4 on PostgreSQL.
    let row: Option<i32> = db
        .query("SELECT 1 AS one FROM webhook_statuses WHERE sunk_at IS NULL LIMIT 1")
        .fetch_optional_scalar(db)
        .await?;
    Ok(row.is_some())
}

/// Applies stored statuses to their outbox rows through the delivery module
/// (monotonic: a late `sent` never overwrites `read`; `message_delivered` /
/// `message_read` / `message_failed` events) and marks each applied
/// (`webhook_statuses.sunk_at`). A page of statuses shares one transaction —
/// on SQLite every commit competes with the webhook's own for the single
/// writer. If a page fails, its statuses are retried one by one and any that
/// still fail stay unapplied for the next pass. Returns how many were applied.
pub async fn apply_pending_statuses(db: &Db) -> Result<u64> {
    const PAGE: i64 = 200;
    let mut applied = 0u64;
    let mut failed: std::collections::HashSet<(String, String)> = Default::default();
    loop {
        let rows: Vec<Stored> = db
            .query(
                "SELECT wamid, status, at, recipient, callback_data, error_code, error_title \
                 FROM webhook_statuses WHERE sunk_at IS NULL ORDER BY created_at, wamid, status LIMIT $1",
            )
            .bind(PAGE + failed.len() as i64)
            .fetch_all_as(db)
            .await
            .context("failed to read stored statuses")?;
        let n = rows.len() as i64;
        let page: Vec<Stored> = rows
            .into_iter()
            .filter(|s| !failed.contains(&(s.wamid.clone(), s.status.clone())))
            .collect();
        if page.is_empty() {
            return Ok(applied);
        }
        let mut tx = db.begin().await?;
        let mut batch_ok = true;
        for s in &page {
            if let Err(e) = s.apply(&mut tx).await {
                tracing::warn!(error = %format!("{e:#}"), "a page of statuses failed; retrying one by one");
                batch_ok = false;
                break;
            }
        }
        if batch_ok {
            tx.commit().await?;
            applied += page.len() as u64;
        } else {
            tx.rollback().await?;
            for s in &page {
                let mut tx = db.begin().await?;
                match s.apply(&mut tx).await {
                    Ok(()) => {
                        tx.commit().await?;
                        applied += 1;
                    }
                    Err(e) => {
                        tx.rollback().await?;
                        tracing::error!(error = %format!("{e:#}"), "a stored status could not be settled");
                        failed.insert((s.wamid.clone(), s.status.clone()));
                    }
                }
            }
        }
        if n < PAGE {
            return Ok(applied);
        }
    }
}

/// A row of `webhook_statuses`, as `apply_pending_statuses` reads it back.
#[derive(sqlx::FromRow)]
struct Stored {
    wamid: String,
    /// As stored: a known status name, or what Meta sent.
    status: String,
    at: DateTime<Utc>,
    recipient: Option<String>,
    callback_data: Option<String>,
    error_code: Option<i64>,
    error_title: Option<String>,
}

impl Stored {
    /// The status to settle; None for a status this code does not know
    /// (Meta adds some): kept for officers, with nothing to settle.
    fn update(&self) -> Option<crate::outbox::StatusUpdate> {
        Some(crate::outbox::StatusUpdate {
            wamid: self.wamid.clone(),
            status: crate::outbox::MessageStatus::parse(&self.status)?,
            timestamp: self.at,
            recipient: self.recipient.clone(),
            callback_data: self
                .callback_data
                .as_deref()
                .and_then(|c| c.trim().parse().ok()),
            error: self
                .error_code
                .map(|c| (c, self.error_title.clone().unwrap_or_default())),
        })
    }

    /// Settles it on its outbox row and marks it applied, in `tx`.
    async fn apply(&self, tx: &mut crate::store::Tx) -> Result<()> {
        if let Some(update) = self.update() {
            crate::outbox::record_status_in(tx, update).await?;
        }
        tx.query("UPDATE webhook_statuses SET sunk_at = $1 WHERE wamid = $2 AND status = $3")
            .bind(crate::time::now())
            .bind(self.wamid.clone())
            .bind(self.status.clone())
            .execute(&mut *tx)
            .await
            .context("failed to mark a status applied")?;
        Ok(())
    }
}

/// Stores the events kept only for the operator, in one statement per
/// chunk. Each is keyed by its body and its place in it, so a redelivered
/// body adds nothing. Returns how many were new.
async fn store_other(
    db: &Db,
    body_digest: &str,
    events: &[(usize, &str, serde_json::Value)],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut stored = 0;
    for chunk in events.chunks(200) {
        let sql = format!(
            "INSERT INTO webhook_other (digest, kind, detail, created_at) VALUES {} \
             ON CONFLICT (digest) DO NOTHING",
            values_placeholders(chunk.len(), 4, 1)
        );
        let mut q = db.query(&sql);
        for (i, kind, detail) in chunk {
            q = q
                .bind(format!("{body_digest}:{i}"))
                .bind((*kind).to_owned())
                .bind(detail.to_string())
                .bind(now);
        }
        stored += q
            .execute(db)
            .await
            .context("failed to store webhook events")?;
    }
    Ok(stored)
}

enum Inbound {
    Duplicate,
    Unmatched,
    Handled,
}

/// What a reply asks for, before effects.
#[derive(Debug, Clone)]
pub(crate) struct Understood {
    pub intent: Option<Intent>,
    pub promised_date: Option<NaiveDate>,
    /// Came from a button tap rather than typed text.
    pub button: bool,
    /// The classifier's confidence (1 for a tap).
    pub confidence: f64,
    /// Its next-best reading with a different consequence, if any.
    pub runner_up: Option<Intent>,
    /// A second request in its own clause ("sudah bayar september, yg
    /// oktober tgl 30"), acted on after the first.
    pub also: Option<Intent>,
}

/// Classifies an inbound message: a button payload maps straight to its
/// intent; text (or a caption) goes through `conversation::classify`.
fn understand(m: &InboundMessage, tz: chrono_tz::Tz) -> (Understood, Option<i64>) {
    if let Some((intent, case_id)) = m.payload().and_then(conversation::intent_for_button) {
        return (
            Understood {
                intent: Some(intent),
                promised_date: None,
                button: true,
                confidence: 1.0,
                runner_up: None,
                also: None,
            },
            case_id,
        );
    }
    if let Some(text) = m.text().filter(|t| !t.trim().is_empty()) {
        let c = conversation::classify(text, m.timestamp, tz);
        return (
            Understood {
                intent: Some(c.intent),
                promised_date: c.promised_date,
                button: false,
                confidence: c.confidence,
                runner_up: c.runner_up,
                also: c.also,
            },
            None,
        );
    }
    let intent = match &m.kind {
        MessageKind::Reaction { .. } => Some(Intent::Acknowledgement),
        // A photo or file without a caption is often a transfer receipt:
        // a person has to look at it.
        MessageKind::Image(_)
        | MessageKind::Document(_)
        | MessageKind::Audio(_)
        | MessageKind::Video(_) => Some(Intent::Unknown),
        _ => None,
    };
    (
        Understood {
            intent,
            promised_date: None,
            button: false,
            confidence: 1.0,
            runner_up: None,
            also: None,
        },
        None,
    )
}

/// The sender's employer and case: the case a button names when it is the
/// sender's, else the employer's open case (an employer with an open case
/// first when several share the number).
async fn match_sender(
    db: &Db,
    wa_id: &str,
    button_case: Option<i64>,
) -> Result<Option<(i64, Option<i64>)>> {
    if let Some(case_id) = button_case {
        if let Some(r) = db
            .query(
                "SELECT c.employer_id, c.id AS case_id FROM cases c JOIN employers e ON e.id = c.employer_id \
                 WHERE c.id = $1 AND e.wa_id = $2 AND c.resolved_at IS NULL",
            )
            .bind(case_id)
            .bind(wa_id.to_owned())
            .fetch_optional_as::<Sender>(db)
            .await
            .context("failed to match the button's case")?
        {
            return Ok(Some((r.employer_id, r.case_id)));
        }
    }
    let r = db
        .query(
            "SELECT e.id AS employer_id, c.id AS case_id FROM employers e \
             LEFT JOIN cases c ON c.employer_id = e.id AND c.resolved_at IS NULL \
             WHERE e.wa_id = $1 ORDER BY (c.id IS NULL), e.id LIMIT 1",
        )
        .bind(wa_id.to_owned())
        .fetch_optional_as::<Sender>(db)
        .await
        .context("failed to match the sender")?;
    Ok(r.map(|r| (r.employer_id, r.case_id)))
}

/// Whom a reply is from: the employer, and its case when one is open.
#[derive(sqlx::FromRow)]
struct Sender {
    employer_id: i64,
    case_id: Option<i64>,
}

fn kind_name(k: &MessageKind) -> String {
    match k {
        MessageKind::Text { .. } => "text".into(),
        MessageKind::Button { .. } => "button".into(),
        MessageKind::ButtonReply { .. } => "button_reply".into(),
        MessageKind::ListReply { .. } => "list_reply".into(),
        MessageKind::Image(_) => "image".into(),
        MessageKind::Document(_) => "document".into(),
        MessageKind::Audio(_) => "audio".into(),
        MessageKind::Video(_) => "video".into(),
        MessageKind::Sticker(_) => "sticker".into(),
        MessageKind::Location(_) => "location".into(),
        MessageKind::Reaction { .. } => "reaction".into(),
        MessageKind::System(_) => "system".into(),
        MessageKind::Unsupported { .. } => "unsupported".into(),
        MessageKind::Other { type_name } => {
            format!("other:{}", type_name.as_deref().unwrap_or("unknown"))
        }
    }
}

// Dedup, effects and the fallback for a failed effect share one
// transaction and its outcome; read top to bottom they are the order a
// redelivered or failing message is handled in, so they stay together.
async fn record_inbound(
    db: &Db,
    config: &Config,
    m: &InboundMessage,
    now: DateTime<Utc>,
) -> Result<Inbound> {
    // Meta's ids carry no '+'; an id that does not parse is still stored.
    let wa_id = m.from.as_deref().map(|f| {
        WaId::from_meta(f)
            .map(|w| w.as_str().to_owned())
            .unwrap_or_else(|_| f.to_owned())
    });
    let button_case = m
        .payload()
        .and_then(conversation::intent_for_button)
        .and_then(|(_, c)| c);
    let matched = match &wa_id {
        Some(w) => match_sender(db, w, button_case).await?,
        None => None,
    };

    // Only reads happen before the transaction: every effect runs after
    // the message is stored (the atomic dedup below), so a redelivered copy
    // does nothing.
    let mut understood = None;
    if let Some((employer_id, _)) = matched {
        let tz = employer_zone(db, employer_id).await?;
        let mut sane = m.clone();
        sane.timestamp = sane_instant(m.timestamp, now);
        let (u, _) = understand(&sane, tz);
        understood = Some((u, tz));
    }

    let mut tx = db.begin().await?;
    let (intent, promised) = understood
        .as_ref()
        .map_or((None, None), |(u, _)| (u.intent, u.promised_date));
    let inserted: Option<i64> = tx
        .query(
            "INSERT INTO inbound_messages (wamid, wa_id, user_id, employer_id, case_id, kind, body, payload, context_wamid, intent, promised_date, received_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (wamid) DO NOTHING RETURNING id",
        )
        .bind(m.wamid.clone())
        .bind(wa_id.clone())
        .bind(m.user_id.clone())
        .bind(matched.map(|(e, _)| e))
        .bind(matched.and_then(|(_, c)| c))
        .bind(kind_name(&m.kind))
        .bind(m.text().map(str::to_owned))
        .bind(m.payload().map(str::to_owned))
        .bind(m.context_id.clone())
        .bind(intent.map(Intent::as_str))
        .bind(promised)
        .bind(sane_instant(m.timestamp, now))
        .bind(now)
        .fetch_optional_scalar(&mut tx)
        .await
        .context("failed to store an inbound message")?;
    let Some(inbound_id) = inserted else {
        tx.rollback().await?;
        return Ok(Inbound::Duplicate);
    };
    // The file is fetched later (on first view), off the webhook's path.
    crate::media::note(
        &mut tx,
        inbound_id,
        &m.wamid,
        matched.and_then(|(_, c)| c),
        &m.kind,
        now,
    )
    .await?;
    let Some((employer_id, case_id)) = matched else {
        tx.commit().await?;
        let sender = wa_id
            .as_deref()
            .and_then(|w| WaId::from_meta(w).ok())
            .map(|w| w.masked())
            .unwrap_or_default();
        tracing::info!(%sender, "reply from a number with no employer kept for officers");
        return Ok(Inbound::Unmatched);
    };
    let (understood, _tz) = understood.expect("understood for every matched sender");
    // The timestamp is the sender's claim: kept as sent, but acted on only
    // within sane bounds (date arithmetic near chrono's limits panics).
    let received_at = sane_instant(m.timestamp, now);
    let reply = effects::Reply {
        wamid: &m.wamid,
        text: m.text(),
        received_at: crate::time::truncate(received_at),
        understood,
        secondary: false,
    };
    match effects::apply(&mut tx, config, employer_id, case_id, &reply, now).await {
        Ok(after) => {
            tx.commit().await?;
            if let Some(after) = after {
                if let Err(e) = after_commit(db, config, employer_id, &reply, after, now).await {
                    // The message and its effects are stored; only the link
                    // is missing, and the next request makes a new one.
                    tracing::error!(error = %format!("{e:#}"), inbound_id, "could not finish a payment link");
                }
            }
        }
        Err(e) => {
            // Nothing of the effects is kept, but the message is: an officer
            // sees it with the reason, and Meta is not asked to redeliver.
            tx.rollback().await?;
            let reason = format!("{e:#}");
            tracing::error!(error = %reason, inbound_id, "could not act on a reply");
            let failed = Failed {
                wa_id,
                employer_id,
                case_id,
                intent,
                reason,
            };
            keep_failed(db, m, failed, now).await?;
        }
    }
    Ok(Inbound::Handled)
}

/// A matched reply whose effects were rolled back, and why.
struct Failed {
    wa_id: Option<String>,
    employer_id: i64,
    case_id: Option<i64>,
    intent: Option<Intent>,
    reason: String,
}

/// Keeps the reply (with the reason) though its effects were rolled back.
async fn keep_failed(
    db: &Db,
    m: &InboundMessage,
    failed: Failed,
    now: DateTime<Utc>,
) -> Result<()> {
    db.query(
        "INSERT INTO inbound_messages (wamid, wa_id, user_id, employer_id, case_id, kind, body, payload, context_wamid, intent, received_at, created_at, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (wamid) DO NOTHING",
    )
    .bind(m.wamid.clone())
    .bind(failed.wa_id)
    .bind(m.user_id.clone())
    .bind(failed.employer_id)
    .bind(failed.case_id)
    .bind(kind_name(&m.kind))
    .bind(m.text().map(str::to_owned))
    .bind(m.payload().map(str::to_owned))
    .bind(m.context_id.clone())
    .bind(failed.intent.map(Intent::as_str))
    .bind(sane_instant(m.timestamp, now))
    .bind(now)
    .bind(failed.reason)
    .execute(db)
    .await
    .context("failed to keep a reply whose effects failed")?;
    Ok(())
}

async fn employer_zone(db: &Db, employer_id: i64) -> Result<chrono_tz::Tz> {
    let zone: Zone = db
        .query("SELECT timezone FROM employers WHERE id = $1")
        .bind(employer_id)
        .fetch_scalar(db)
        .await
        .context("failed to read the employer's zone")?;
    Ok(zone.0)
}

/// The provider's network calls an inbound message left for after its
/// commit: making a reserved link (then sending it, in a second short
/// transaction) and expiring the links it superseded.
async fn after_commit(
    db: &Db,
    config: &Config,
    employer_id: i64,
    reply: &effects::Reply<'_>,
    after: effects::AfterCommit,
    now: DateTime<Utc>,
) -> Result<()> {
    let provider = Provider::from_config(config)?;
    let superseded = match after {
        effects::AfterCommit::Expire(superseded) => superseded,
        effects::AfterCommit::CreateLink(pending) => {
            let made = payments::create_pending(&provider, &pending).await;
            let mut tx = db.begin().await?;
            let (link, superseded) =
                match payments::finish_link(&mut tx, &pending, made, now).await? {
                    payments::Finished::Link(l) => {
                        let superseded = l.superseded.clone();
                        (Some(Ok(l)), superseded)
                    }
                    payments::Finished::Failed(e) => (Some(Err(e)), Vec::new()),
                    // A newer request's link is sent instead.
                    payments::Finished::Overtaken(own) => (None, vec![own]),
                };
            if let Some(link) = link {
                effects::link_made(
                    &mut tx,
                    config,
                    employer_id,
                    pending.case_id,
                    reply,
                    link,
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            superseded
        }
    };
    payments::expire_superseded(&provider, &superseded).await;
    Ok(())
}

/// Replies from numbers no employer has, newest first, for officers.
pub async fn unmatched(db: &Db, limit: i64) -> Result<Vec<serde_json::Value>> {
    let rows: Vec<UnmatchedRow> = db
        .query(
            "SELECT id, wamid, wa_id, kind, body, payload, received_at FROM unmatched_inbound \
             ORDER BY received_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all_as(db)
        .await
        .context("failed to list unmatched replies")?;
    Ok(rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "wamid": r.wamid,
                "wa_id": r.wa_id,
                "kind": r.kind,
                "text": r.body,
                "payload": r.payload,
                "received_at": r.received_at,
            })
        })
        .collect())
}

/// A reply from a number no employer has. `wa_id` is Meta's, kept as sent.
#[derive(sqlx::FromRow)]
struct UnmatchedRow {
    id: i64,
    wamid: String,
    wa_id: Option<String>,
    kind: String,
    body: Option<String>,
    payload: Option<String>,
    received_at: DateTime<Utc>,
}

/// An inbound message as the case page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboundShown {
    pub wamid: String,
    /// `text`, `button`, `image`, `document`, `audio`, …, `other:<type>`.
    pub kind: String,
    /// The text, a tapped button's label, or a media caption.
    pub body: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The bot's reading, as stored.
    pub intent: Option<String>,
    pub promised_date: Option<NaiveDate>,
    /// An officer's correction of it, if any (`corrections` > 0).
    pub corrected_intent: Option<String>,
    pub corrected_date: Option<NaiveDate>,
    pub corrected_by: Option<String>,
    pub corrections: i64,
}

/// The inbound messages `wamids`, for a page of the timeline.
pub async fn shown(db: &Db, wamids: &[String]) -> Result<Vec<InboundShown>> {
    if wamids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=wamids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT wamid, kind, body, received_at, intent, promised_date, corrected_intent, corrected_date, \
                corrected_by, corrections FROM inbound_messages WHERE wamid IN ({})",
        marks.join(", ")
    );
    let mut q = db.query(&sql);
    for w in wamids {
        q = q.bind(w.clone());
    }
    q.fetch_all_as(db)
        .await
        .context("failed to read the replies of a timeline page")
}
