//! The outbox as the delivery worker sees it: claims (a lease in a
//! worker's name), the hand-over to HTTP, each attempt's outcome, and the
//! reconciliation of claims whose worker is gone. Every outcome write is
//! guarded by `state = 'sending'` (a status webhook that settled the row
//! meanwhile wins) and all but `sent` by the worker's claim (a peer may
//! have taken the worker for dead and released the row).

use super::{window_start, OutboxState};
use crate::domain::Stage;
use crate::store::{
    list_placeholders, rows_per_statement, values_placeholders, Backend, Db, Query, Tx,
};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::str::FromStr;

/// A claimed row.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub case_id: Option<i64>,
    pub employer_id: i64,
    pub key: String,
    pub message: String,
    pub kind: String,
    pub wa_id: Option<String>,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    case_id: Option<i64>,
    employer_id: i64,
    idempotency_key: String,
    message: String,
    kind: String,
    wa_id: Option<String>,
    body: String,
    attempts: i64,
}

impl From<ClaimedRow> for Claimed {
    fn from(r: ClaimedRow) -> Self {
        Claimed {
            id: r.id,
            case_id: r.case_id,
            employer_id: r.employer_id,
            key: r.idempotency_key,
            message: r.message,
            kind: r.kind,
            wa_id: r.wa_id,
            body: r.body,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        }
    }
}

impl Claimed {
    /// An automated stage reminder (as the scan queues them), as opposed to
    /// a reply or confirmation.
    pub fn is_reminder(&self) -> bool {
        self.key.starts_with("case:") && self.key.contains(":stage:")
    }

    /// The stage a reminder was queued for (`case:42:stage:reminder_2`, or
    /// its template fallback `…:reminder_2:template`).
    pub fn stage(&self) -> Option<Stage> {
        let rest = self.key.split_once(":stage:")?.1;
        Stage::from_str(rest.split(':').next()?).ok()
    }
}

/// Claims up to `limit` due rows with a lease until `lease_until`, in
/// `worker`'s name (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
/// writer). Ordered by id.
pub async fn claim(
    db: &Db,
    worker: &str,
    at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Claimed>> {
    let sql = match db.backend() {
        Backend::Postgres => {
            "UPDATE outbox SET state = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2, \
                    claimed_by = $4, handed_at = NULL, unknown_since = NULL \
             WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND due_at <= $2 \
                          ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, case_id, employer_id, idempotency_key, message, kind, wa_id, body, attempts"
        }
        Backend::Sqlite => {
            "UPDATE outbox SET state = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2, \
                    claimed_by = $4, handed_at = NULL, unknown_since = NULL \
             WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND due_at <= $2 \
                          ORDER BY due_at, id LIMIT $3) \
             RETURNING id, case_id, employer_id, idempotency_key, message, kind, wa_id, body, attempts"
        }
    };
    let mut tx = db.begin().await?;
    let rows: Vec<ClaimedRow> = tx
        .query(sql)
        .bind(lease_until)
        .bind(at)
        .bind(limit as i64)
        .bind(worker.to_owned())
        .fetch_all_as(&mut tx)
        .await
        .context("failed to claim outbox rows")?;
    tx.commit().await?;
    let mut claimed: Vec<Claimed> = rows.into_iter().map(Claimed::from).collect();
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Marks claimed rows as handed to HTTP; returns those still `worker`'s.
pub async fn mark_handed(
    db: &Db,
    worker: &str,
    at: DateTime<Utc>,
    ids: &[i64],
) -> Result<HashSet<i64>> {
    let mut mine = HashSet::new();
    let mut tx = db.begin().await?;
    for chunk in ids.chunks(rows_per_statement(tx.backend(), 1)) {
        let sql = format!(
            "UPDATE outbox SET handed_at = $1 WHERE state = 'sending' AND claimed_by = $2 AND id IN ({}) \
             RETURNING id",
            list_placeholders(chunk.len(), 3)
        );
        let mut q = tx.query(&sql).bind(at).bind(worker.to_owned());
        for id in chunk {
            q = q.bind(*id);
        }
        let ids: Vec<i64> = q
            .fetch_all_as::<(i64,)>(&mut tx)
            .await
            .context("failed to mark claims as sending")?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        mine.extend(ids);
    }
    tx.commit().await?;
    Ok(mine)
}

/// Claims whose worker left no heartbeat (it is not in `delivery_workers`).
const ORPHAN: &str = "state = 'sending' AND unknown_since IS NULL AND claimed_by IS NOT NULL \
                      AND claimed_by NOT IN (SELECT id FROM delivery_workers)";

/// Back to the queue, unattempted: dead workers' claims that never reached
/// HTTP, and live workers' claims whose lease expired before it.
pub async fn release_orphaned_claims(tx: &mut Tx, at: DateTime<Utc>) -> Result<u64> {
    tx.query(&format!(
        "UPDATE outbox SET state = 'queued', lease_until = NULL, claimed_by = NULL, \
                attempts = attempts - 1, updated_at = $1 \
         WHERE handed_at IS NULL AND (({ORPHAN}) OR (state = 'sending' AND unknown_since IS NULL \
               AND claimed_by IS NOT NULL AND lease_until < $1))"
    ))
    .bind(at)
    .execute(&mut *tx)
    .await
    .context("failed to release dead workers' claims")
}

/// Dead workers' claims that may have reached HTTP become unknown outcomes:
/// they wait for their status webhooks.
pub async fn hold_orphaned_sends(tx: &mut Tx, at: DateTime<Utc>) -> Result<u64> {
    tx.query(&format!(
        "UPDATE outbox SET unknown_since = handed_at, claimed_by = NULL, lease_until = NULL, \
                last_error = 'worker_died', updated_at = $1 \
         WHERE handed_at IS NOT NULL AND {ORPHAN}"
    ))
    .bind(at)
    .execute(&mut *tx)
    .await
    .context("failed to hold dead workers' sends for their statuses")
}

/// A row queued again after its outcome stayed unknown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Requeued {
    pub id: i64,
    /// Why it was unknown: `timeout`, `worker_died`, else a lease that expired.
    pub last_error: Option<String>,
}

/// Unknown outcomes with no status since before `cutoff` go back to the
/// queue (`resent_unknown + 1`).
pub async fn requeue_unknown(
    tx: &mut Tx,
    at: DateTime<Utc>,
    cutoff: DateTime<Utc>,
) -> Result<Vec<Requeued>> {
    tx.query(
        "UPDATE outbox SET state = 'queued', lease_until = NULL, claimed_by = NULL, handed_at = NULL, \
                unknown_since = NULL, resent_unknown = resent_unknown + 1, updated_at = $1 \
         WHERE state = 'sending' AND (unknown_since < $2 OR (unknown_since IS NULL AND lease_until < $2)) \
         RETURNING id, last_error",
    )
    .bind(at)
    .bind(cutoff)
    .fetch_all_as(&mut *tx)
    .await
    .context("failed to reconcile unknown outcomes")
}

/// A recipient of business-initiated messages since some instant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Initiated {
    pub wa_id: String,
    /// The first such send in the period.
    pub first: DateTime<Utc>,
}

/// Recipients of business-initiated messages sent after `since` (the tier).
pub async fn recent_initiated(db: &Db, since: DateTime<Utc>) -> Result<Vec<Initiated>> {
    db.query(
        "SELECT wa_id, MIN(sent_at) AS first FROM outbox \
         WHERE initiated = TRUE AND sent_at > $1 AND wa_id IS NOT NULL GROUP BY wa_id",
    )
    .bind(since)
    .fetch_all_as(db)
    .await
    .context("failed to count today's recipients")
}

/// A due row to a recipient whose 24-hour window is closed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueRecipient {
    pub id: i64,
    pub wa_id: String,
    pub case_id: Option<i64>,
    pub employer_id: i64,
}

/// Rows due at `at` whose recipient's window is closed: each would be a
/// business-initiated message.
pub async fn due_outside_window(db: &Db, at: DateTime<Utc>) -> Result<Vec<DueRecipient>> {
    db.query(
        "SELECT o.id, o.wa_id, o.case_id, o.employer_id FROM outbox o LEFT JOIN cases c ON c.id = o.case_id \
         WHERE o.state = 'queued' AND o.due_at <= $1 AND o.wa_id IS NOT NULL \
           AND (c.last_inbound_at IS NULL OR c.last_inbound_at <= $2)",
    )
    .bind(at)
    .bind(window_start(at))
    .fetch_all_as(db)
    .await
    .context("failed to read due recipients")
}

/// Moves queued rows' due time to `until` (over the tier: they wait).
pub async fn postpone_queued(
    tx: &mut Tx,
    ids: &[i64],
    until: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<()> {
    for chunk in ids.chunks(rows_per_statement(tx.backend(), 1)) {
        let sql = format!(
            "UPDATE outbox SET due_at = $1, updated_at = $2 WHERE state = 'queued' AND id IN ({})",
            list_placeholders(chunk.len(), 3)
        );
        let mut q = tx.query(&sql).bind(until).bind(at);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx)
            .await
            .context("failed to defer messages over the tier")?;
    }
    Ok(())
}

/// A stage reminder that went out, with its employer's zone.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReminderSent {
    pub employer_id: i64,
    pub sent_at: DateTime<Utc>,
    /// The employer's zone as stored (the caller decides the fallback).
    pub timezone: String,
}

/// Stage reminders sent to these employers in `[since, until]`.
pub async fn reminders_sent_since(
    db: &Db,
    employers: &[i64],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<ReminderSent>> {
    let mut out = Vec::new();
    for chunk in employers.chunks(rows_per_statement(db.backend(), 1)) {
        let sql = format!(
            "SELECT o.employer_id, o.sent_at, e.timezone FROM outbox o JOIN employers e ON e.id = o.employer_id \
             WHERE o.employer_id IN ({}) AND o.sent_at >= ${} AND o.sent_at <= ${} \
               AND o.idempotency_key LIKE 'case:%:stage:%' AND o.state IN ('sent', 'delivered', 'read')",
            list_placeholders(chunk.len(), 1),
            chunk.len() + 1,
            chunk.len() + 2
        );
        let mut q = db.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(
            q.bind(since)
                .bind(until)
                .fetch_all_as::<ReminderSent>(db)
                .await
                .context("failed to read today's reminders")?,
        );
    }
    Ok(out)
}

/// Settles a claim of `worker` on row `id` with `set` (whose values are
/// `$3…`, bound by `bind`); false when the row was no longer this
/// worker's claim. Every outcome of a send goes through here, so the claim
/// test is written once.
async fn settle_claim(
    tx: &mut Tx,
    worker: &str,
    id: i64,
    set: &str,
    bind: impl for<'q> FnOnce(Query<'q>) -> Query<'q>,
    what: &'static str,
) -> Result<bool> {
    let sql = format!(
        "UPDATE outbox SET {set}, lease_until = NULL \
         WHERE id = $1 AND state = 'sending' AND claimed_by = $2"
    );
    let q = tx.query(&sql).bind(id).bind(worker.to_owned());
    let n = bind(q).execute(&mut *tx).await.context(what)?;
    Ok(n > 0)
}

/// A retryable error: back to the queue, due at `until`. Returns whether
/// the row was still this worker's claim.
#[allow(clippy::too_many_arguments)]
pub async fn retry_later(
    tx: &mut Tx,
    worker: &str,
    id: i64,
    until: DateTime<Utc>,
    reason: &str,
    code: Option<i64>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let (until, reason) = (crate::time::truncate(until), reason.to_owned());
    settle_claim(
        tx,
        worker,
        id,
        "state = 'queued', due_at = $3, last_error = $4, error_code = $5, updated_at = $6, \
         claimed_by = NULL",
        move |q| q.bind(until).bind(reason).bind(code).bind(at),
        "failed to schedule a retry",
    )
    .await
}

/// No answer (a timeout): the row stays `sending`, unclaimed, and waits for
/// its status webhook (see [`requeue_unknown`]).
pub async fn await_status(
    tx: &mut Tx,
    worker: &str,
    id: i64,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let reason = reason.to_owned();
    settle_claim(
        tx,
        worker,
        id,
        "unknown_since = $3, claimed_by = NULL, last_error = $4, updated_at = $3",
        move |q| q.bind(at).bind(reason),
        "failed to record an unknown outcome",
    )
    .await
}

/// A free-form message outside the window (131047): queued again at once
/// as its template.
pub async fn requeue_as_template(
    tx: &mut Tx,
    worker: &str,
    id: i64,
    at: DateTime<Utc>,
) -> Result<bool> {
    settle_claim(
        tx,
        worker,
        id,
        "state = 'queued', kind = 'template', due_at = $3, last_error = 'meta_131047', \
         error_code = 131047, updated_at = $3, claimed_by = NULL",
        move |q| q.bind(at),
        "failed to queue the template form",
    )
    .await
}

/// A permanent failure.
#[allow(clippy::too_many_arguments)]
pub async fn fail(
    tx: &mut Tx,
    worker: &str,
    id: i64,
    reason: &str,
    code: Option<i64>,
    title: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let (reason, title) = (reason.to_owned(), title.to_owned());
    settle_claim(
        tx,
        worker,
        id,
        "state = 'failed', last_error = $3, error_code = $4, error_title = $5, status_at = $6, \
         updated_at = $6",
        move |q| q.bind(reason).bind(code).bind(title).bind(at),
        "failed to fail a message",
    )
    .await
}

/// Not sent (the case changed since it was queued), with the reason.
pub async fn skip(
    tx: &mut Tx,
    worker: &str,
    id: i64,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let reason = reason.to_owned();
    settle_claim(
        tx,
        worker,
        id,
        "state = 'skipped', last_error = $3, updated_at = $4",
        move |q| q.bind(reason).bind(at),
        "failed to skip a message",
    )
    .await
}

/// Not now (window, caps, tier, pair rate): due again at `until`. Waiting
/// is not an attempt.
pub async fn defer(
    tx: &mut Tx,
    worker: &str,
    id: i64,
    until: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<bool> {
    settle_claim(
        tx,
        worker,
        id,
        "state = 'queued', due_at = $3, attempts = attempts - 1, updated_at = $4, claimed_by = NULL",
        move |q| q.bind(until).bind(at),
        "failed to defer a message",
    )
    .await
}

/// Puts a claim of `worker` back, unattempted.
pub async fn release(tx: &mut Tx, worker: &str, id: i64, at: DateTime<Utc>) -> Result<()> {
    settle_claim(
        tx,
        worker,
        id,
        "state = 'queued', attempts = attempts - 1, updated_at = $3, claimed_by = NULL, \
         handed_at = NULL",
        move |q| q.bind(at),
        "failed to release a claim",
    )
    .await?;
    Ok(())
}

/// A message Meta accepted.
#[derive(Debug, Clone)]
pub struct SentRow<'a> {
    pub id: i64,
    pub wamid: &'a str,
    /// Sent outside the recipient's 24-hour window (counts towards the tier).
    pub initiated: bool,
    /// The exact text the employer sees.
    pub text: Option<&'a str>,
}

/// Marks accepted messages `sent`, many rows a statement. Returns the ids
/// so marked; the others had been settled by a status webhook first (it
/// carried the id in the callback data): they keep their state and get
/// what only the sender knows (wamid, initiated, text).
pub async fn mark_sent(
    tx: &mut Tx,
    sent: &[SentRow<'_>],
    at: DateTime<Utc>,
) -> Result<HashSet<i64>> {
    const COLS: usize = 4;
    let mut updated = HashSet::new();
    for chunk in sent.chunks(rows_per_statement(tx.backend(), COLS)) {
        let sql = format!(
            "UPDATE outbox SET state = 'sent', wamid = v.column2, initiated = v.column3, \
                    text = COALESCE(v.column4, outbox.text), sent_at = ${p}, \
                    status_at = ${p}, lease_until = NULL, last_error = NULL, updated_at = ${p} \
             FROM (VALUES {values}) AS v \
             WHERE outbox.id = v.column1 AND outbox.state = 'sending' RETURNING outbox.id",
            values = values_placeholders(chunk.len(), COLS, 1),
            p = chunk.len() * COLS + 1
        );
        let mut q = tx.query(&sql);
        for s in chunk {
            q = q
                .bind(s.id)
                .bind(s.wamid.to_owned())
                .bind(s.initiated)
                .bind(s.text.map(str::to_owned));
        }
        let ids: Vec<(i64,)> = q
            .bind(at)
            .fetch_all_as(&mut *tx)
            .await
            .context("failed to mark messages sent")?;
        updated.extend(ids.into_iter().map(|(id,)| id));
    }
    for s in sent.iter().filter(|s| !updated.contains(&s.id)) {
        tx.query(
            "UPDATE outbox SET wamid = COALESCE(wamid, $2), initiated = $3, text = COALESCE($5, text), \
                    sent_at = COALESCE(sent_at, $4), updated_at = $4 WHERE id = $1",
        )
        .bind(s.id)
        .bind(s.wamid.to_owned())
        .bind(s.initiated)
        .bind(at)
        .bind(s.text.map(str::to_owned))
        .execute(&mut *tx)
        .await
        .context("failed to record a wamid")?;
    }
    Ok(updated)
}

/// Rows by state, for the `wa_smile_outbox_depth` gauge.
pub async fn depth(db: &Db) -> Result<Vec<(OutboxState, i64)>> {
    db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
        .fetch_all_as(db)
        .await
        .context("failed to count the outbox")
}
