//! The overdue scan: turns unpaid bills into cases, moves cases through the
//! escalation stages and queues each stage's message once, in the outbox.
//!
//! The scan works through employers in id ranges, one write transaction per
//! range: it reads the range's aggregates with a few set-based queries,
//! decides in Rust and writes with multi-row statements. Every write is
//! conditional (unique keys, `WHERE stage = old`), and events are written
//! only for rows that actually changed, so a second run — or a concurrent
//! one — changes nothing. On PostgreSQL one scan at a time holds an advisory
//! lock; on SQLite each range's `BEGIN IMMEDIATE` serialises writers.

use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::config::{parse_zone, Config};
use crate::domain::{Calendar, CaseStatus, Money, Policy, QuietReason, Stage};
use crate::store::{
    list_placeholders, rows_per_statement, values_placeholders, Db, Query, Row, Tx,
};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

/// Employer ids per transaction: large enough for few round trips, small
/// enough that a range's rows and its write locks stay modest.
const CHUNK_IDS: i64 = 2_000;
/// First key of the scan's PostgreSQL advisory lock; the second is the hash
/// of the current schema, so scans of different schemas never block.
const PG_LOCK_CLASS: i32 = 0x5CA4;
/// Outbox states that never reach the employer: they do not count towards
/// the one-reminder-a-day cap.
const DEAD_STATES: [&str; 3] = ["cancelled", "skipped", "failed"];

/// What the scan needs from configuration.
#[derive(Debug, Clone)]
pub struct ScanContext {
    pub policy: Policy,
    pub calendar: Calendar,
    /// Used when an employer's stored zone cannot be read.
    pub default_tz: Tz,
}

impl ScanContext {
    /// Fails only on a default zone that `Config` validation would reject.
    pub fn from_config(config: &Config) -> Result<ScanContext> {
        Ok(ScanContext {
            policy: config.policy(),
            calendar: config.calendar(),
            default_tz: config.timezone(),
        })
    }
}

/// What one scan did (`wa-smile scan --json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanSummary {
    pub cases_opened: u64,
    /// Open cases whose stage, status or quiet reason changed.
    pub cases_updated: u64,
    pub cases_resolved: u64,
    pub messages_queued: u64,
}

/// One overdue scan evaluated at `at`.
pub async fn run(db: &Db, ctx: &ScanContext, at: DateTime<Utc>) -> Result<ScanSummary> {
    let at = crate::time::truncate(at);
    let started = std::time::Instant::now();
    let summary = match db.pg_pool() {
        Some(pool) => {
            let mut lock_conn = pool
                .acquire()
                .await
                .context("failed to get a connection for the scan lock")?;
            // Closing the session releases the lock even if this future is
            // dropped half-way, so a cancelled scan can never wedge the next.
            lock_conn.close_on_drop();
            sqlx::query("SELECT pg_advisory_lock($1, hashtext(current_schema()))")
                .bind(PG_LOCK_CLASS)
                .execute(&mut *lock_conn)
                .await
                .context("failed to take the scan lock")?;
            let result = scan_all(db, ctx, at).await;
            let _ = sqlx::query("SELECT pg_advisory_unlock($1, hashtext(current_schema()))")
                .bind(PG_LOCK_CLASS)
                .execute(&mut *lock_conn)
                .await;
            result?
        }
        None => scan_all(db, ctx, at).await?,
    };
    crate::metrics::scan_finished(started.elapsed());
    tracing::info!(
        cases_opened = summary.cases_opened,
        cases_updated = summary.cases_updated,
        cases_resolved = summary.cases_resolved,
        messages_queued = summary.messages_queued,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "overdue scan finished"
    );
    Ok(summary)
}

async fn scan_all(db: &Db, ctx: &ScanContext, at: DateTime<Utc>) -> Result<ScanSummary> {
    let bounds = db
        .query("SELECT MIN(id) AS lo, MAX(id) AS hi FROM employers")
        .fetch_one(db)
        .await
        .context("failed to read the employer id range")?;
    let (Some(lo), Some(hi)) = (
        bounds.get::<Option<i64>>("lo")?,
        bounds.get::<Option<i64>>("hi")?,
    ) else {
        return Ok(ScanSummary::default());
    };
    let mut summary = ScanSummary::default();
    let mut zones = Zones::new(ctx.default_tz);
    let mut start = lo;
    while start <= hi {
        let end = start.saturating_add(CHUNK_IDS);
        let mut tx = db.begin().await?;
        scan_chunk(&mut tx, ctx, at, start, end, &mut zones, &mut summary)
            .await
            .with_context(|| format!("scan failed for employers {start}..{end}"))?;
        tx.commit().await?;
        start = end;
    }
    Ok(summary)
}

/// Employers' zone names parsed once per scan.
struct Zones {
    default: Tz,
    parsed: HashMap<String, Tz>,
}

impl Zones {
    fn new(default: Tz) -> Self {
        Self {
            default,
            parsed: HashMap::new(),
        }
    }

    fn get(&mut self, name: &str) -> Tz {
        if let Some(tz) = self.parsed.get(name) {
            return *tz;
        }
        let tz = parse_zone(name).unwrap_or_else(|_| {
            tracing::warn!(
                zone = name,
                "unreadable employer time zone; using the default"
            );
            self.default
        });
        self.parsed.insert(name.to_owned(), tz);
        tz
    }
}

struct Employer {
    tz: Tz,
    wa_id: Option<String>,
    opted_out: bool,
    contact_invalid: bool,
}

#[derive(Clone)]
struct OpenCase {
    id: i64,
    status: String,
    stage: String,
    paused_until: Option<DateTime<Utc>>,
    promised_date: Option<NaiveDate>,
    quiet_reason: Option<String>,
    next_action_at: Option<DateTime<Utc>>,
    /// Set while an "already paid" claim awaits its payment record.
    payment_claimed_at: Option<DateTime<Utc>>,
    /// Set while the employer's reply waits for an officer.
    officer_hold: Option<String>,
}

struct OutboxRow {
    id: i64,
    case_id: Option<i64>,
    stage: Option<Stage>,
    state: String,
    due_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

/// What the scan wants a case to look like, and the message to queue.
struct Decision {
    status: CaseStatus,
    stage: Stage,
    quiet: Option<QuietReason>,
    next_action_at: Option<DateTime<Utc>>,
    queue: Option<(Stage, DateTime<Utc>)>,
    /// Queued outbox rows of the case to cancel, with the reason.
    cancel: Vec<(i64, &'static str)>,
}

/// A stage message to queue for a case.
struct NewMessage {
    case_id: i64,
    employer_id: i64,
    wa_id: Option<String>,
    stage: Stage,
    due_at: DateTime<Utc>,
}

struct Plan {
    employer_id: i64,
    wa_id: Option<String>,
    decision: Decision,
    summary: serde_json::Value,
}

async fn scan_chunk(
    tx: &mut Tx,
    ctx: &ScanContext,
    at: DateTime<Utc>,
    lo: i64,
    hi: i64,
    zones: &mut Zones,
    summary: &mut ScanSummary,
) -> Result<()> {
    // Which bills are overdue depends on each employer's local date. The
    // range's zones are few, so each zone's date is bound into a CASE and
    // SQL aggregates per employer with the exact cut: one row per overdue
    // employer, whatever its number of bills.
    let zone_dates: Vec<(String, NaiveDate)> = tx
        .query("SELECT DISTINCT timezone FROM employers WHERE id >= $1 AND id < $2")
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *tx)
        .await
        .context("failed to read employer time zones")?
        .iter()
        .map(|r| {
            let name: String = r.get("timezone")?;
            let tz = zones.get(&name);
            Ok((name, at.with_timezone(&tz).date_naive()))
        })
        .collect::<Result<_>>()?;
    if zone_dates.is_empty() {
        return Ok(());
    }
    let mut cut = String::from("CASE e.timezone");
    for i in 0..zone_dates.len() {
        cut.push_str(&format!(" WHEN ${} THEN ${}", 3 + 2 * i, 4 + 2 * i));
    }
    // An employer added since the zones were read (PostgreSQL, read
    // committed) falls back to the default zone rather than to NULL, which
    // would make its bills look paid.
    cut.push_str(&format!(" ELSE ${} END", 3 + 2 * zone_dates.len()));
    let default_date = at.with_timezone(&ctx.default_tz).date_naive();
    fn bind_cut<'q>(
        q: Query<'q>,
        lo: i64,
        hi: i64,
        zone_dates: &[(String, NaiveDate)],
        default_date: NaiveDate,
    ) -> Query<'q> {
        let mut q = q.bind(lo).bind(hi);
        for (name, date) in zone_dates {
            q = q.bind(name.clone()).bind(*date);
        }
        q.bind(default_date)
    }

    // The id range is repeated on every table: planners do not carry it
    // across the joins on their own, and a missed range is a full scan.
    let overdue_sql = format!(
        "SELECT e.id, e.timezone, e.wa_id, e.opted_out_at, e.contact_invalid_at, \
                a.n, a.owed, a.oldest, \
                c.id AS case_id, c.status, c.stage, c.paused_until, c.promised_date, c.officer_hold, \
                c.quiet_reason, c.next_action_at, c.payment_claimed_at, \
                o.id AS cur_id, o.state AS cur_state, o.due_at AS cur_due_at \
         FROM (SELECT b.employer_id, COUNT(*) AS n, \
                      CAST(SUM(b.amount_minor - b.paid_minor) AS BIGINT) AS owed, \
                      MIN(b.due_date) AS oldest \
               FROM bills b JOIN employers e ON e.id = b.employer_id \
               WHERE b.settled_at IS NULL AND b.employer_id >= $1 AND b.employer_id < $2 \
                 AND e.id >= $1 AND e.id < $2 AND b.due_date < {cut} \
               GROUP BY b.employer_id) a \
         JOIN employers e ON e.id = a.employer_id AND e.id >= $1 AND e.id < $2 \
         LEFT JOIN cases c ON c.employer_id = e.id AND c.resolved_at IS NULL \
                          AND c.employer_id >= $1 AND c.employer_id < $2 \
         LEFT JOIN outbox o ON o.idempotency_key = 'case:' || c.id || ':stage:' || c.stage \
         ORDER BY e.id"
    );
    let overdue = bind_cut(tx.query(&overdue_sql), lo, hi, &zone_dates, default_date)
        .fetch_all(&mut *tx)
        .await
        .context("failed to read overdue employers")?;

    let settled_sql = format!(
        "SELECT c.id, c.status FROM cases c JOIN employers e ON e.id = c.employer_id \
         WHERE c.resolved_at IS NULL AND c.employer_id >= $1 AND c.employer_id < $2 \
           AND e.id >= $1 AND e.id < $2 \
           AND NOT EXISTS (SELECT 1 FROM bills b \
                           WHERE b.employer_id = c.employer_id AND b.settled_at IS NULL \
                             AND b.due_date < {cut}) \
         ORDER BY c.id"
    );
    let mut to_resolve: Vec<(i64, String)> = Vec::new();
    for r in bind_cut(tx.query(&settled_sql), lo, hi, &zone_dates, default_date)
        .fetch_all(&mut *tx)
        .await
        .context("failed to read settled cases")?
    {
        to_resolve.push((r.get("id")?, r.get("status")?));
    }
    if overdue.is_empty() && to_resolve.is_empty() {
        return Ok(());
    }

    // Queued and recent automated reminders: what to cancel when a case
    // moves on, and what counts towards the daily cap.
    let recent = at - Duration::days(3);
    let mut outbox: HashMap<i64, Vec<OutboxRow>> = HashMap::new();
    for r in tx
        .query(
            "SELECT id, employer_id, case_id, message, state, due_at, sent_at FROM outbox \
             WHERE employer_id >= $1 AND employer_id < $2 AND idempotency_key LIKE 'case:%:stage:%' \
               AND (state = 'queued' OR due_at >= $3 OR sent_at >= $3)",
        )
        .bind(lo)
        .bind(hi)
        .bind(recent)
        .fetch_all(&mut *tx)
        .await
        .context("failed to read queued messages")?
    {
        let message: String = r.get("message")?;
        outbox
            .entry(r.get("employer_id")?)
            .or_default()
            .push(OutboxRow {
                id: r.get("id")?,
                case_id: r.get("case_id")?,
                stage: Stage::from_str(&message).ok(),
                state: r.get("state")?,
                due_at: r.get("due_at")?,
                sent_at: r.get("sent_at")?,
            });
    }

    let no_rows: Vec<OutboxRow> = Vec::new();
    let mut to_open: Vec<Plan> = Vec::new();
    let mut to_update: Vec<(OpenCase, Plan)> = Vec::new();
    for r in &overdue {
        let employer_id: i64 = r.get("id")?;
        let zone: String = r.get("timezone")?;
        let employer = Employer {
            tz: zones.get(&zone),
            wa_id: r
                .get::<Option<String>>("wa_id")?
                .filter(|w| !w.trim().is_empty()),
            opted_out: r.get::<Option<DateTime<Utc>>>("opted_out_at")?.is_some(),
            contact_invalid: r
                .get::<Option<DateTime<Utc>>>("contact_invalid_at")?
                .is_some(),
        };
        let local_today = at.with_timezone(&employer.tz).date_naive();
        let oldest: NaiveDate = r.get("oldest")?;
        let days = (local_today - oldest).num_days();
        let target = ctx.policy.stage_for(days);
        let rows = outbox.get(&employer_id).unwrap_or(&no_rows);
        let bills_summary = json!({
            "bills": r.get::<i64>("n")?,
            "arrears": Money::from_minor(r.get("owed")?).to_string(),
            "oldest_due_date": oldest.to_string(),
            "days_overdue": days,
        });
        match r.get::<Option<i64>>("case_id")? {
            None => {
                let Some(stage) = target else { continue };
                let decision = decide(ctx, at, &employer, None, None, stage, rows);
                to_open.push(Plan {
                    employer_id,
                    wa_id: employer.wa_id.clone(),
                    decision,
                    summary: bills_summary,
                });
            }
            Some(case_id) => {
                let c = OpenCase {
                    id: case_id,
                    status: r.get("status")?,
                    stage: r.get("stage")?,
                    paused_until: r.get("paused_until")?,
                    officer_hold: r.get("officer_hold")?,
                    promised_date: r.get("promised_date")?,
                    quiet_reason: r.get("quiet_reason")?,
                    next_action_at: r.get("next_action_at")?,
                    payment_claimed_at: r.get("payment_claimed_at")?,
                };
                let current = Stage::from_str(&c.stage).map_err(anyhow::Error::msg)?;
                let current_row = match r.get::<Option<i64>>("cur_id")? {
                    Some(id) => Some(OutboxRow {
                        id,
                        case_id: Some(case_id),
                        stage: Some(current),
                        state: r.get("cur_state")?,
                        due_at: r.get("cur_due_at")?,
                        sent_at: None,
                    }),
                    None => None,
                };
                // Stages only move forward: paying the oldest bill does not
                // send an earlier reminder again.
                let stage = target.map_or(current, |t| t.max(current));
                let decision = decide(
                    ctx,
                    at,
                    &employer,
                    Some(&c),
                    current_row.as_ref(),
                    stage,
                    rows,
                );
                to_update.push((
                    c,
                    Plan {
                        employer_id,
                        wa_id: employer.wa_id.clone(),
                        decision,
                        summary: bills_summary,
                    },
                ));
            }
        }
    }

    let mut events: Vec<NewEvent> = Vec::new();
    let mut messages: Vec<NewMessage> = Vec::new();
    let mut cancels: Vec<(i64, i64, &'static str)> = Vec::new();

    // New cases. A concurrent scan that opened one first wins the unique
    // index, and this one leaves that employer alone.
    for chunk in to_open.chunks(rows_per_statement(tx.backend(), 7)) {
        let sql = format!(
            "INSERT INTO cases (employer_id, status, stage, opened_at, quiet_reason, next_action_at, updated_at) \
             VALUES {} ON CONFLICT (employer_id) WHERE resolved_at IS NULL DO NOTHING \
             RETURNING id, employer_id",
            values_placeholders(chunk.len(), 7, 1)
        );
        let mut q = tx.query(&sql);
        for p in chunk {
            let d = &p.decision;
            q = q
                .bind(p.employer_id)
                .bind(d.status.as_str())
                .bind(d.stage.as_str())
                .bind(at)
                .bind(d.quiet.map(|r| r.as_str()))
                .bind(d.next_action_at)
                .bind(at);
        }
        let opened: HashMap<i64, i64> = q
            .fetch_all(&mut *tx)
            .await
            .context("failed to open cases")?
            .iter()
            .map(|r| Ok((r.get::<i64>("employer_id")?, r.get::<i64>("id")?)))
            .collect::<Result<_>>()?;
        for p in chunk {
            let Some(&case_id) = opened.get(&p.employer_id) else {
                continue;
            };
            summary.cases_opened += 1;
            let d = &p.decision;
            let mut data = p.summary.clone();
            data["stage"] = json!(d.stage.as_str());
            data["status"] = json!(d.status.as_str());
            if let Some(q) = d.quiet {
                data["quiet_reason"] = json!(q.as_str());
            }
            events.push(NewEvent::new(
                case_id,
                at,
                EventKind::CaseOpened,
                Actor::System,
                data,
            ));
            if let Some((stage, due_at)) = d.queue {
                messages.push(NewMessage {
                    case_id,
                    employer_id: p.employer_id,
                    wa_id: p.wa_id.clone(),
                    stage,
                    due_at,
                });
            }
        }
    }

    // Existing cases whose row should change; the old stage and status are
    // conditions, so a concurrent scan or officer action is never overwritten.
    let changed: Vec<&(OpenCase, Plan)> = to_update
        .iter()
        .filter(|(c, p)| {
            let d = &p.decision;
            c.status != d.status.as_str()
                || c.stage != d.stage.as_str()
                || c.quiet_reason.as_deref() != d.quiet.map(|r| r.as_str())
                || c.next_action_at != d.next_action_at
        })
        .collect();
    let mut updated: HashSet<i64> = HashSet::new();
    for chunk in changed.chunks(rows_per_statement(tx.backend(), 7)) {
        let sql = format!(
            "UPDATE cases SET status = v.column2, stage = v.column3, quiet_reason = v.column4, \
                    next_action_at = v.column5, updated_at = ${at_param} \
             FROM (VALUES {values}) AS v \
             WHERE cases.id = v.column1 AND cases.stage = v.column6 AND cases.status = v.column7 \
               AND cases.resolved_at IS NULL \
             RETURNING id",
            values = values_placeholders(chunk.len(), 7, 1),
            at_param = chunk.len() * 7 + 1
        );
        let mut q = tx.query(&sql);
        for (c, p) in chunk {
            let d = &p.decision;
            q = q
                .bind(c.id)
                .bind(d.status.as_str())
                .bind(d.stage.as_str())
                .bind(d.quiet.map(|r| r.as_str()))
                .bind(d.next_action_at)
                .bind(c.stage.clone())
                .bind(c.status.clone());
        }
        for r in q
            .bind(at)
            .fetch_all(&mut *tx)
            .await
            .context("failed to update cases")?
        {
            updated.insert(r.get("id")?);
        }
    }
    summary.cases_updated += updated.len() as u64;
    let changed_ids: HashSet<i64> = changed.iter().map(|(c, _)| c.id).collect();

    for (c, p) in &to_update {
        // A row that should have changed but did not was changed under us
        // (another scan, an officer): leave this case to that writer.
        if changed_ids.contains(&c.id) && !updated.contains(&c.id) {
            continue;
        }
        let d = &p.decision;
        if c.stage != d.stage.as_str() {
            let mut data = json!({"from": c.stage, "to": d.stage.as_str()});
            if c.status != d.status.as_str() {
                data["status"] = json!(d.status.as_str());
            }
            data["days_overdue"] = p.summary["days_overdue"].clone();
            events.push(NewEvent::new(
                c.id,
                at,
                EventKind::StageChanged,
                Actor::System,
                data,
            ));
        }
        let flagged = c.status != d.status.as_str() && d.status == CaseStatus::NeedsOfficer;
        if flagged && c.status == CaseStatus::Promised.as_str() {
            // The promised day has passed unpaid: recorded, an officer
            // follows up, and reminders resume.
            events.push(NewEvent::new(
                c.id,
                at,
                EventKind::PromiseBroken,
                Actor::System,
                json!({"promised_date": c.promised_date.map(|d| d.to_string())}),
            ));
        } else if flagged && c.payment_claimed_at.is_some() {
            events.push(NewEvent::new(
                c.id,
                at,
                EventKind::OfficerRequested,
                Actor::System,
                json!({
                    "reason": "payment_claim_unconfirmed",
                    "claimed_at": c.payment_claimed_at,
                }),
            ));
        } else if flagged && c.stage == d.stage.as_str() {
            events.push(NewEvent::new(
                c.id,
                at,
                EventKind::OfficerRequested,
                Actor::System,
                json!({"reason": d.quiet.map_or("needs_officer", |q| q.as_str())}),
            ));
        }
        for &(outbox_id, reason) in &d.cancel {
            cancels.push((c.id, outbox_id, reason));
        }
        if let Some((stage, due_at)) = d.queue {
            messages.push(NewMessage {
                case_id: c.id,
                employer_id: p.employer_id,
                wa_id: p.wa_id.clone(),
                stage,
                due_at,
            });
        }
    }

    // Reminders the case has moved past, or that escalation silences.
    for chunk in cancels.chunks(rows_per_statement(tx.backend(), 1)) {
        let reasons: HashMap<i64, (i64, &str)> = chunk
            .iter()
            .map(|&(case, id, why)| (id, (case, why)))
            .collect();
        let sql = format!(
            "UPDATE outbox SET state = 'cancelled', updated_at = $1 \
             WHERE state = 'queued' AND id IN ({}) RETURNING id, message",
            list_placeholders(chunk.len(), 2)
        );
        let mut q = tx.query(&sql).bind(at);
        for &(_, id, _) in chunk {
            q = q.bind(id);
        }
        let mut done: Vec<(i64, String)> = q
            .fetch_all(&mut *tx)
            .await
            .context("failed to cancel superseded messages")?
            .iter()
            .map(|r| Ok((r.get::<i64>("id")?, r.get::<String>("message")?)))
            .collect::<Result<_>>()?;
        done.sort();
        for (id, message) in done {
            let (case_id, why) = reasons[&id];
            events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageSkipped,
                Actor::System,
                json!({"outbox_id": id, "message": message, "reason": why}),
            ));
        }
    }

    // The stage messages, once per case and stage by their key.
    for chunk in messages.chunks(rows_per_statement(tx.backend(), 11)) {
        let sql = format!(
            "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, created_at, updated_at) \
             VALUES {} ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, case_id, message, due_at",
            values_placeholders(chunk.len(), 11, 1)
        );
        let mut q = tx.query(&sql);
        for NewMessage {
            case_id,
            employer_id,
            wa_id,
            stage,
            due_at,
        } in chunk
        {
            q = q
                .bind(*case_id)
                .bind(*employer_id)
                .bind(stage_key(*case_id, *stage))
                .bind(stage.as_str())
                .bind("template")
                .bind(wa_id.clone())
                .bind(json!({"stage": stage.as_str(), "case_id": case_id}).to_string())
                .bind("queued")
                .bind(*due_at)
                .bind(at)
                .bind(at);
        }
        let mut queued: Vec<Row> = q
            .fetch_all(&mut *tx)
            .await
            .context("failed to queue messages")?;
        summary.messages_queued += queued.len() as u64;
        for r in queued.drain(..) {
            let due_at: DateTime<Utc> = r.get("due_at")?;
            let message: String = r.get("message")?;
            events.push(NewEvent::new(
                r.get("case_id")?,
                at,
                EventKind::MessageQueued,
                Actor::System,
                json!({
                    "outbox_id": r.get::<i64>("id")?,
                    "message": message,
                    "due_at": due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }),
            ));
        }
    }

    case_log::record(tx, &events).await?;

    for (case_id, status) in to_resolve {
        if resolve_case(tx, case_id, &status, at).await? {
            summary.cases_resolved += 1;
        }
    }
    Ok(())
}

fn stage_key(case_id: i64, stage: Stage) -> String {
    format!("case:{case_id}:stage:{stage}")
}

/// Decides the state of one case at `at`: its status, why it is silent (if
/// it is) and which message, if any, to queue for when.
fn decide(
    ctx: &ScanContext,
    at: DateTime<Utc>,
    employer: &Employer,
    case: Option<&OpenCase>,
    current_row: Option<&OutboxRow>,
    stage: Stage,
    rows: &[OutboxRow],
) -> Decision {
    let window = &ctx.policy.window;
    let cal = &ctx.calendar;
    let tz = employer.tz;
    let local_today = at.with_timezone(&tz).date_naive();
    let old_status = case
        .and_then(|c| CaseStatus::from_str(&c.status).ok())
        .unwrap_or(CaseStatus::Open);
    let old_stage = case.and_then(|c| Stage::from_str(&c.stage).ok());
    let entered = old_stage != Some(stage);

    let mut status = old_status;
    // A promise whose day has passed is broken; an "already paid" whose
    // pause has run out without a payment record goes to an officer.
    if let Some(c) = case {
        let promise_over = c.promised_date.is_none_or(|d| d < local_today);
        let claim_lapsed = c.payment_claimed_at.is_some() && c.paused_until.is_none_or(|u| u <= at);
        if (status == CaseStatus::Promised && promise_over)
            || (claim_lapsed && matches!(status, CaseStatus::Open | CaseStatus::Promised))
        {
            status = CaseStatus::NeedsOfficer;
        }
    }
    if stage == Stage::Escalated {
        status = CaseStatus::Escalated;
    } else if stage == Stage::Warning && entered && status == CaseStatus::Open {
        // The warning notice still goes out; an officer follows it up.
        status = CaseStatus::NeedsOfficer;
    }
    if employer.wa_id.is_none() && status == CaseStatus::Open {
        status = CaseStatus::NeedsOfficer;
    }

    let case_id = case.map(|c| c.id);
    let own_queued = || {
        rows.iter()
            .filter(move |r| case_id.is_some() && r.case_id == case_id && r.state == "queued")
    };

    let blocked: Option<(QuietReason, Option<DateTime<Utc>>)> =
        if status == CaseStatus::Escalated || stage == Stage::Escalated {
            Some((QuietReason::Escalated, None))
        } else if employer.opted_out {
            Some((QuietReason::OptedOut, None))
        } else if employer.wa_id.is_none() {
            Some((QuietReason::NoWhatsApp, None))
        } else if employer.contact_invalid {
            Some((QuietReason::WrongNumber, None))
        } else if case.is_some_and(|c| c.officer_hold.is_some()) {
            // The employer disputed, complained or asked for a person: the
            // bot waits until an officer resumes, records a promise or
            // takes the case.
            Some((QuietReason::AwaitingOfficer, None))
        } else if let Some(until) = case.and_then(|c| c.paused_until).filter(|u| *u > at) {
            Some((QuietReason::Paused, Some(until)))
        } else {
            case.and_then(|c| c.promised_date)
                .filter(|d| status == CaseStatus::Promised && *d >= local_today)
                .map(|promised| {
                    (
                        QuietReason::Promised,
                        Some(window.opening_after_day(promised, tz, cal)),
                    )
                })
        };

    let mut cancel: Vec<(i64, &'static str)> = Vec::new();
    if blocked.map(|b| b.0) == Some(QuietReason::Escalated) {
        cancel.extend(own_queued().map(|r| (r.id, "escalated")));
    } else {
        cancel.extend(
            own_queued()
                .filter(|r| r.stage.is_some_and(|s| s < stage))
                .map(|r| (r.id, "superseded")),
        );
    }

    if let Some((reason, next)) = blocked {
        return Decision {
            status,
            stage,
            quiet: Some(reason),
            next_action_at: next,
            queue: None,
            cancel,
        };
    }
    let Some(_) = stage.message() else {
        return Decision {
            status,
            stage,
            quiet: None,
            next_action_at: None,
            queue: None,
            cancel,
        };
    };

    // The stored stage's message comes with the case; a new stage's message
    // can only be among the queued and recent rows, if it exists at all.
    let existing = if old_stage == Some(stage) {
        current_row
    } else {
        rows.iter()
            .find(|r| case_id.is_some() && r.case_id == case_id && r.stage == Some(stage))
    };
    let (due_at, queue) = match existing {
        Some(r) if r.state == "queued" => (Some(r.due_at), false),
        // Already sent, or settled one way or another: once per stage.
        Some(_) => (None, false),
        None => {
            let cancelled: HashSet<i64> = cancel.iter().map(|c| c.0).collect();
            let live: Vec<DateTime<Utc>> = rows
                .iter()
                .filter(|r| !DEAD_STATES.contains(&r.state.as_str()) && !cancelled.contains(&r.id))
                .map(|r| r.sent_at.unwrap_or(r.due_at))
                .collect();
            (Some(first_free_slot(ctx, at, tz, &live)), true)
        }
    };
    let (quiet, next_action_at) = match due_at {
        Some(due) if due > at => (wait_reason(ctx, at, due, tz), Some(due)),
        // Due now: the bot acts, nothing to explain.
        Some(_) => (None, None),
        // This stage's message is done; the next step is a person's.
        None if status == CaseStatus::NeedsOfficer => (Some(QuietReason::AwaitingOfficer), None),
        None => (None, None),
    };
    Decision {
        status,
        stage,
        quiet,
        next_action_at,
        queue: if queue {
            due_at.map(|d| (stage, d))
        } else {
            None
        },
        cancel,
    }
}

/// The first window opening at or after `at` on a local day that still has
/// room under the daily reminder cap, given the employer's live reminders.
fn first_free_slot(
    ctx: &ScanContext,
    at: DateTime<Utc>,
    tz: Tz,
    live: &[DateTime<Utc>],
) -> DateTime<Utc> {
    let window = &ctx.policy.window;
    let cap = ctx.policy.reminders_per_day.max(1) as usize;
    let days: BTreeSet<NaiveDate> = live
        .iter()
        .map(|t| t.with_timezone(&tz).date_naive())
        .collect();
    let per_day = |d: NaiveDate| {
        live.iter()
            .filter(|t| t.with_timezone(&tz).date_naive() == d)
            .count()
    };
    let (mut slot, _) = window.next_opening(at, tz, &ctx.calendar);
    // Each step moves past a day that holds a live reminder, so this ends
    // after at most as many steps as there are such days.
    for _ in 0..=days.len() {
        let day = slot.with_timezone(&tz).date_naive();
        if per_day(day) < cap {
            break;
        }
        slot = window.opening_after_day(day, tz, &ctx.calendar);
    }
    slot
}

/// Why a message due at `due` is not going out at `at`. Derived only from
/// the two instants, so every scan at the same `at` gives the same answer.
fn wait_reason(
    ctx: &ScanContext,
    at: DateTime<Utc>,
    due: DateTime<Utc>,
    tz: Tz,
) -> Option<QuietReason> {
    if due <= at {
        return None;
    }
    let (opening, reason) = ctx.policy.window.next_opening(at, tz, &ctx.calendar);
    if due == opening {
        reason
    } else {
        Some(QuietReason::DailyCap)
    }
}

/// Resolves the employer's open case if none of its overdue bills is still
/// unpaid: records `case_resolved` (reason `paid`) and cancels its queued
/// messages. Returns whether it resolved one. The payments import and the
/// scan both resolve through here.
pub async fn resolve_if_settled(tx: &mut Tx, employer_id: i64, at: DateTime<Utc>) -> Result<bool> {
    let at = crate::time::truncate(at);
    let Some(row) = tx
        .query(
            "SELECT c.id, c.status, e.timezone FROM cases c JOIN employers e ON e.id = c.employer_id \
             WHERE c.employer_id = $1 AND c.resolved_at IS NULL",
        )
        .bind(employer_id)
        .fetch_optional(&mut *tx)
        .await
        .context("failed to read the open case")?
    else {
        return Ok(false);
    };
    let case_id: i64 = row.get("id")?;
    let status: String = row.get("status")?;
    let zone: String = row.get("timezone")?;
    let tz = parse_zone(&zone).map_err(anyhow::Error::msg)?;
    let local_today = at.with_timezone(&tz).date_naive();
    let unpaid: i64 = tx
        .query(
            "SELECT COUNT(*) AS n FROM bills \
             WHERE employer_id = $1 AND settled_at IS NULL AND due_date < $2",
        )
        .bind(employer_id)
        .bind(local_today)
        .fetch_one(&mut *tx)
        .await
        .context("failed to count unpaid overdue bills")?
        .get("n")?;
    if unpaid > 0 {
        return Ok(false);
    }
    resolve_case(tx, case_id, &status, at).await
}

async fn resolve_case(tx: &mut Tx, case_id: i64, status: &str, at: DateTime<Utc>) -> Result<bool> {
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
    if status == CaseStatus::Promised.as_str() {
        let row = tx
            .query(
                "SELECT c.promised_date, e.timezone FROM cases c \
                 JOIN employers e ON e.id = c.employer_id WHERE c.id = $1",
            )
            .bind(case_id)
            .fetch_one(&mut *tx)
            .await
            .context("failed to read the case's promise")?;
        let promised: Option<NaiveDate> = row.get("promised_date")?;
        let tz = parse_zone(&row.get::<String>("timezone")?).unwrap_or(chrono_tz::Asia::Jakarta);
        if let Some(d) = promised.filter(|d| *d >= at.with_timezone(&tz).date_naive()) {
            events.push(NewEvent::new(
                case_id,
                at,
                EventKind::PromiseKept,
                Actor::System,
                json!({"promised_date": d.to_string()}),
            ));
        }
    }
    let cancelled = tx
        .query(
            "UPDATE outbox SET state = 'cancelled', updated_at = $2 \
             WHERE case_id = $1 AND state = 'queued' RETURNING id, message",
        )
        .bind(case_id)
        .bind(at)
        .fetch_all(&mut *tx)
        .await
        .context("failed to cancel the resolved case's messages")?;
    events.push(NewEvent::new(
        case_id,
        at,
        EventKind::CaseResolved,
        Actor::System,
        json!({"reason": "paid", "status_before": status}),
    ));
    let mut skipped: Vec<(i64, String)> = cancelled
        .iter()
        .map(|r| Ok((r.get::<i64>("id")?, r.get::<String>("message")?)))
        .collect::<Result<_>>()?;
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
