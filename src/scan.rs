//! The overdue scan: turns unpaid bills into cases, moves cases through the
//! escalation stages and queues each stage's message once, in the outbox.
//!
//! The scan works through employers in id ranges, one write transaction per
//! range: it reads the range's aggregates with a few set-based queries,
//! decides in Rust and writes with multi-row statements. Every write is
//! conditional (unique keys, `WHERE stage = old`), and events are written
//! only for rows that actually changed, so a second run — or a concurrent
//! one — changes nothing. On PostgreSQL one scan at a time holds an advisory
//! lock; on SQLite each range's `BEGIN IMMEDIATE` serialises writers. A
//! scheduled scan is also recorded per cron tick (`scan_ticks`), so of
//! several `serve` instances exactly one scans each tick ([`run_tick`]).

use crate::case::figures::{self, BillLine, Figures, Stored};
use crate::case::resolve::resolve_case;
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::config::{parse_zone, Config};
use crate::domain::{Calendar, CaseStatus, Money, Policy, QuietReason, Stage};
use crate::outbox::{OutboxState, CURRENT_STAGE_JOIN};
use crate::store::{rows_per_statement, values_placeholders, Backend, Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

/// Resolution is the case's (`crate::case::resolve`); kept here under its
/// former path for callers.
pub use crate::case::resolve::resolve_if_settled;

/// Employer ids per transaction: large enough for few round trips, small
/// enough that a range's rows and its write locks stay modest.
const CHUNK_IDS: i64 = 2_000;
/// First key of the scan's PostgreSQL advisory lock; the second is the hash
/// of the current schema, so scans of different schemas never block.
const PG_LOCK_CLASS: i32 = 0x5CA4;
/// Outbox states that never reach the employer: they do not count towards
/// the one-reminder-a-day cap.
const DEAD_STATES: [OutboxState; 3] = [
    OutboxState::Cancelled,
    OutboxState::Skipped,
    OutboxState::Failed,
];

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
    Ok(run_locked(db, ctx, at, None)
        .await?
        .expect("a scan for no tick always runs"))
}

/// The scheduled scan of the cron tick `tick`, done by exactly one of the
/// instances sharing the database. An instance that finds a peer scanning
/// waits for the scan lock; it then finds the tick done and skips it (None)
/// — or, when the peer died mid-scan and its lock went with its session,
/// scans in its place.
pub async fn run_tick(
    db: &Db,
    ctx: &ScanContext,
    tick: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Option<ScanSummary>> {
    run_locked(db, ctx, at, Some(crate::time::truncate(tick))).await
}

async fn run_locked(
    db: &Db,
    ctx: &ScanContext,
    at: DateTime<Utc>,
    tick: Option<DateTime<Utc>>,
) -> Result<Option<ScanSummary>> {
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
            let result = scan_tick(db, ctx, at, tick).await;
            let _ = sqlx::query("SELECT pg_advisory_unlock($1, hashtext(current_schema()))")
                .bind(PG_LOCK_CLASS)
                .execute(&mut *lock_conn)
                .await;
            result?
        }
        None => scan_tick(db, ctx, at, tick).await?,
    };
    let Some(summary) = summary else {
        tracing::info!(
            tick = %tick.map(|t| t.to_rfc3339()).unwrap_or_default(),
            "overdue scan of this tick already done by another instance; skipped"
        );
        return Ok(None);
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
    Ok(Some(summary))
}

/// How long the record of a done tick is kept.
const TICKS_KEPT_DAYS: i64 = 30;

/// The scan under the lock: skipped (None) when `tick` is already done.
async fn scan_tick(
    db: &Db,
    ctx: &ScanContext,
    at: DateTime<Utc>,
    tick: Option<DateTime<Utc>>,
) -> Result<Option<ScanSummary>> {
    let Some(tick) = tick else {
        return scan_all(db, ctx, at).await.map(Some);
    };
    let done: Option<(DateTime<Utc>,)> = db
        .query("SELECT finished_at FROM scan_ticks WHERE tick_at = $1")
        .bind(tick)
        .fetch_optional_as(db)
        .await
        .context("failed to read the scan ticks done")?;
    if done.is_some() {
        return Ok(None);
    }
    let summary = scan_all(db, ctx, at).await?;
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO scan_ticks (tick_at, finished_at) VALUES ($1, $2) ON CONFLICT (tick_at) DO NOTHING",
    )
    .bind(tick)
    .bind(crate::time::truncate(crate::time::now()))
    .execute(&mut tx)
    .await
    .context("failed to record the scan tick")?;
    tx.query("DELETE FROM scan_ticks WHERE tick_at < $1")
        .bind(tick - Duration::days(TICKS_KEPT_DAYS))
        .execute(&mut tx)
        .await
        .context("failed to forget old scan ticks")?;
    tx.commit().await?;
    Ok(Some(summary))
}

async fn scan_all(db: &Db, ctx: &ScanContext, at: DateTime<Utc>) -> Result<ScanSummary> {
    let bounds: (Option<i64>, Option<i64>) = db
        .query("SELECT MIN(id) AS lo, MAX(id) AS hi FROM employers")
        .fetch_one_as(db)
        .await
        .context("failed to read the employer id range")?;
    let (Some(lo), Some(hi)) = bounds else {
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
    status: CaseStatus,
    stage: Stage,
    paused_until: Option<DateTime<Utc>>,
    promised_date: Option<NaiveDate>,
    quiet_reason: Option<QuietReason>,
    next_action_at: Option<DateTime<Utc>>,
    /// Set while an "already paid" claim awaits its payment record.
    payment_claimed_at: Option<DateTime<Utc>>,
    /// Set while the employer's reply waits for an officer.
    officer_hold: Option<String>,
    /// The list's stored figures, rewritten when they changed.
    stored: Stored,
}

struct OutboxRow {
    id: i64,
    case_id: Option<i64>,
    stage: Option<Stage>,
    state: OutboxState,
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
    branch: String,
    wa_id: Option<String>,
    decision: Decision,
    figures: Figures,
    summary: serde_json::Value,
}

/// An employer of the range with its open case (if any) and the outbox row
/// of that case's current stage (if any), as read.
#[derive(sqlx::FromRow)]
struct EmployerCaseRow {
    id: i64,
    branch: String,
    timezone: String,
    wa_id: Option<String>,
    opted_out_at: Option<DateTime<Utc>>,
    contact_invalid_at: Option<DateTime<Utc>>,
    case_id: Option<i64>,
    status: Option<CaseStatus>,
    stage: Option<Stage>,
    paused_until: Option<DateTime<Utc>>,
    promised_date: Option<NaiveDate>,
    officer_hold: Option<String>,
    quiet_reason: Option<QuietReason>,
    next_action_at: Option<DateTime<Utc>>,
    payment_claimed_at: Option<DateTime<Utc>>,
    arrears_minor: Option<Money>,
    oldest_due_date: Option<NaiveDate>,
    cur_id: Option<i64>,
    cur_state: Option<OutboxState>,
    cur_due_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct EmployerBill {
    employer_id: i64,
    #[sqlx(flatten)]
    bill: BillLine,
}

/// One employer of the range as the scan sees it at `at`.
struct Scanned {
    employer_id: i64,
    branch: String,
    employer: Employer,
    case: Option<(OpenCase, Option<OutboxRow>)>,
    figures: Figures,
}

/// What a range's scan will write.
#[derive(Default)]
struct Plans {
    to_open: Vec<Plan>,
    to_update: Vec<(OpenCase, Plan)>,
    /// Open cases with no overdue bill left, in id order.
    to_resolve: Vec<(i64, CaseStatus)>,
    /// Open cases whose stored list figures changed.
    figures: Vec<(i64, Stored)>,
}

/// The rows a range's writes produce besides the cases themselves.
#[derive(Default)]
struct Writes {
    events: Vec<NewEvent>,
    messages: Vec<NewMessage>,
    /// (case, outbox row, reason)
    cancels: Vec<(i64, i64, &'static str)>,
}

/// One range of employers, in one transaction: read, decide, write.
async fn scan_chunk(
    tx: &mut Tx,
    ctx: &ScanContext,
    at: DateTime<Utc>,
    lo: i64,
    hi: i64,
    zones: &mut Zones,
    summary: &mut ScanSummary,
) -> Result<()> {
    let scanned = read_range(tx, at, lo, hi, zones).await?;
    let acts = scanned
        .iter()
        .any(|s| s.case.is_some() || s.figures.overdue_bills > 0);
    if !acts {
        return Ok(());
    }
    let outbox = read_outbox(tx, at, lo, hi).await?;
    let plans = plan(ctx, at, scanned, &outbox);
    let mut writes = Writes::default();
    summary.cases_opened += open_cases(tx, at, &plans.to_open, &mut writes).await?;
    let updated = update_cases(tx, at, &plans.to_update).await?;
    summary.cases_updated += updated.len() as u64;
    follow_updates(at, &plans.to_update, &updated, &mut writes);
    figures::write(tx, &plans.figures).await?;
    cancel_messages(tx, at, &writes.cancels, &mut writes.events).await?;
    summary.messages_queued += queue_messages(tx, at, &writes.messages, &mut writes.events).await?;
    case_log::record(tx, &writes.events).await?;
    for (case_id, status) in plans.to_resolve {
        if resolve_case(tx, case_id, status, at).await? {
            summary.cases_resolved += 1;
        }
    }
    Ok(())
}

/// The range's employers that have unpaid bills or an open case, each with
/// its figures at `at` in its own zone. Employers are read whole (a range
/// is a few thousand rows) and their unsettled bills folded in Rust, so the
/// figures — what is overdue, arrears, the oldest due date — come from the
/// same function as the case page's and the list's.
async fn read_range(
    tx: &mut Tx,
    at: DateTime<Utc>,
    lo: i64,
    hi: i64,
    zones: &mut Zones,
) -> Result<Vec<Scanned>> {
    // The id range is repeated on every table: planners do not carry it
    // across the joins on their own, and a missed range is a full scan.
    let sql = format!(
        "SELECT e.id, e.branch, e.timezone, e.wa_id, e.opted_out_at, e.contact_invalid_at, \
                c.id AS case_id, c.status, c.stage, c.paused_until, c.promised_date, c.officer_hold, \
                c.quiet_reason, c.next_action_at, c.payment_claimed_at, c.arrears_minor, c.oldest_due_date, \
                o.id AS cur_id, o.state AS cur_state, o.due_at AS cur_due_at \
         FROM employers e \
         LEFT JOIN cases c ON c.employer_id = e.id AND c.resolved_at IS NULL \
                          AND c.employer_id >= $1 AND c.employer_id < $2 \
         {CURRENT_STAGE_JOIN} \
         WHERE e.id >= $1 AND e.id < $2 \
         ORDER BY e.id"
    );
    let rows: Vec<EmployerCaseRow> = tx
        .query(&sql)
        .bind(lo)
        .bind(hi)
        .fetch_all_as(&mut *tx)
        .await
        .context("failed to read the employers and their open cases")?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut bills = unpaid_bills(tx, lo, hi).await?;
    let mut out = Vec::new();
    for r in rows {
        let lines = bills.remove(&r.id);
        if lines.is_none() && r.case_id.is_none() {
            continue;
        }
        let tz = zones.get(&r.timezone);
        let (figures, _) = figures::figures(lines.as_deref().unwrap_or(&[]), at, tz, None);
        out.push(scanned(r, tz, figures)?);
    }
    Ok(out)
}

/// The range's unsettled bills, per employer. On SQLite the range comes
/// back as one JSON row: sqlx's SQLite driver hands every row from its
/// worker thread to the task through a channel, and a million rows cost
/// more in those hand-overs than in SQLite itself.
async fn unpaid_bills(tx: &mut Tx, lo: i64, hi: i64) -> Result<HashMap<i64, Vec<BillLine>>> {
    let mut bills: HashMap<i64, Vec<BillLine>> = HashMap::new();
    if tx.backend() == Backend::Sqlite {
        let json: String = tx
            .query(
                "SELECT COALESCE(json_group_array(json_array(employer_id, amount_minor, paid_minor, \
                        due_date, late_fee_minor)), '[]') \
                 FROM bills WHERE settled_at IS NULL AND employer_id >= $1 AND employer_id < $2",
            )
            .bind(lo)
            .bind(hi)
            .fetch_scalar(&mut *tx)
            .await
            .context("failed to read unpaid bills")?;
        let lines: Vec<(i64, i64, i64, NaiveDate, Option<i64>)> =
            serde_json::from_str(&json).context("unpaid bills of the range are unreadable")?;
        for (employer_id, amount, paid, due_date, late_fee) in lines {
            bills.entry(employer_id).or_default().push(BillLine {
                amount: Money::from_minor(amount),
                paid: Money::from_minor(paid),
                due_date,
                settled_at: None,
                late_fee: late_fee.map(Money::from_minor),
            });
        }
        return Ok(bills);
    }
    for b in tx
        .query(
            "SELECT employer_id, amount_minor, paid_minor, due_date, settled_at, late_fee_minor \
             FROM bills WHERE settled_at IS NULL AND employer_id >= $1 AND employer_id < $2",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all_as::<EmployerBill>(&mut *tx)
        .await
        .context("failed to read unpaid bills")?
    {
        bills.entry(b.employer_id).or_default().push(b.bill);
    }
    Ok(bills)
}

fn scanned(r: EmployerCaseRow, tz: Tz, figures: Figures) -> Result<Scanned> {
    let case = match (r.case_id, r.status, r.stage) {
        (Some(id), Some(status), Some(stage)) => {
            let current_row = r.cur_id.zip(r.cur_state).map(|(cur, state)| OutboxRow {
                id: cur,
                case_id: Some(id),
                stage: Some(stage),
                state,
                due_at: r.cur_due_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
                sent_at: None,
            });
            let case = OpenCase {
                id,
                status,
                stage,
                paused_until: r.paused_until,
                promised_date: r.promised_date,
                quiet_reason: r.quiet_reason,
                next_action_at: r.next_action_at,
                payment_claimed_at: r.payment_claimed_at,
                officer_hold: r.officer_hold,
                stored: Stored {
                    arrears: r.arrears_minor.unwrap_or(Money::ZERO),
                    oldest_due_date: r.oldest_due_date,
                },
            };
            Some((case, current_row))
        }
        (None, ..) => None,
        (Some(id), ..) => anyhow::bail!("case {id} has no status or stage"),
    };
    Ok(Scanned {
        employer_id: r.id,
        branch: r.branch,
        employer: Employer {
            tz,
            wa_id: r.wa_id.filter(|w| !w.trim().is_empty()),
            opted_out: r.opted_out_at.is_some(),
            contact_invalid: r.contact_invalid_at.is_some(),
        },
        case,
        figures,
    })
}

/// Queued and recent automated reminders of the range, per employer: what
/// to cancel when a case moves on, and what counts towards the daily cap.
async fn read_outbox(
    tx: &mut Tx,
    at: DateTime<Utc>,
    lo: i64,
    hi: i64,
) -> Result<HashMap<i64, Vec<OutboxRow>>> {
    let recent = at - Duration::days(3);
    let mut outbox: HashMap<i64, Vec<OutboxRow>> = HashMap::new();
    for r in crate::outbox::stage_reminders(tx, lo, hi, recent).await? {
        outbox.entry(r.employer_id).or_default().push(OutboxRow {
            id: r.id,
            case_id: r.case_id,
            stage: Stage::from_str(&r.message).ok(),
            state: r.state,
            due_at: r.due_at,
            sent_at: r.sent_at,
        });
    }
    Ok(outbox)
}

/// Decides, for every employer of the range, whether to open, move or
/// resolve its case, and which list figures to rewrite.
fn plan(
    ctx: &ScanContext,
    at: DateTime<Utc>,
    scanned: Vec<Scanned>,
    outbox: &HashMap<i64, Vec<OutboxRow>>,
) -> Plans {
    let no_rows: Vec<OutboxRow> = Vec::new();
    let mut plans = Plans::default();
    for s in scanned {
        let f = s.figures;
        if let Some((c, _)) = &s.case {
            let stored = Stored::from(&f);
            if stored != c.stored {
                plans.figures.push((c.id, stored));
            }
        }
        if f.overdue_bills == 0 {
            if let Some((c, _)) = s.case {
                plans.to_resolve.push((c.id, c.status));
            }
            continue;
        }
        let days = f.days_overdue().unwrap_or(0);
        let target = ctx.policy.stage_for(days);
        let rows = outbox.get(&s.employer_id).unwrap_or(&no_rows);
        let summary = json!({
            "bills": f.overdue_bills,
            "arrears": f.arrears.to_string(),
            "oldest_due_date": f.oldest_due_date.map(|d| d.to_string()),
            "days_overdue": days,
        });
        let decided = |decision| Plan {
            employer_id: s.employer_id,
            branch: s.branch.clone(),
            wa_id: s.employer.wa_id.clone(),
            decision,
            figures: f,
            summary: summary.clone(),
        };
        match &s.case {
            None => {
                let Some(stage) = target else { continue };
                let decision = decide(ctx, at, &s.employer, None, None, stage, rows);
                plans.to_open.push(decided(decision));
            }
            Some((c, current_row)) => {
                // Stages only move forward: paying the oldest bill does not
                // send an earlier reminder again.
                let stage = target.map_or(c.stage, |t| t.max(c.stage));
                let decision = decide(
                    ctx,
                    at,
                    &s.employer,
                    Some(c),
                    current_row.as_ref(),
                    stage,
                    rows,
                );
                plans.to_update.push((c.clone(), decided(decision)));
            }
        }
    }
    plans.to_resolve.sort_by_key(|(id, _)| *id);
    plans
}

#[derive(sqlx::FromRow)]
struct Opened {
    id: i64,
    employer_id: i64,
}

/// Opens the planned cases, with the list's figures, and records what
/// follows (`case_opened`, the first stage message). A concurrent scan that
/// opened one first wins the unique index, and this one leaves that
/// employer alone. Returns how many it opened.
async fn open_cases(
    tx: &mut Tx,
    at: DateTime<Utc>,
    to_open: &[Plan],
    writes: &mut Writes,
) -> Result<u64> {
    const COLS: usize = 11;
    let mut opened_count = 0;
    for chunk in to_open.chunks(rows_per_statement(tx.backend(), COLS)) {
        let sql = format!(
            "INSERT INTO cases (employer_id, status, stage, opened_at, quiet_reason, next_action_at, updated_at, \
                                branch, arrears_minor, oldest_due_date, last_activity_at) \
             VALUES {} ON CONFLICT (employer_id) WHERE resolved_at IS NULL DO NOTHING \
             RETURNING id, employer_id",
            values_placeholders(chunk.len(), COLS, 1)
        );
        let mut q = tx.query(&sql);
        for p in chunk {
            let d = &p.decision;
            q = q
                .bind(p.employer_id)
                .bind(d.status)
                .bind(d.stage)
                .bind(at)
                .bind(d.quiet)
                .bind(d.next_action_at)
                .bind(at)
                .bind(p.branch.clone())
                .bind(p.figures.arrears)
                .bind(p.figures.oldest_due_date)
                .bind(at);
        }
        let opened: HashMap<i64, i64> = q
            .fetch_all_as::<Opened>(&mut *tx)
            .await
            .context("failed to open cases")?
            .into_iter()
            .map(|o| (o.employer_id, o.id))
            .collect();
        for p in chunk {
            let Some(&case_id) = opened.get(&p.employer_id) else {
                continue;
            };
            opened_count += 1;
            let d = &p.decision;
            let mut data = p.summary.clone();
            data["stage"] = json!(d.stage.as_str());
            data["status"] = json!(d.status.as_str());
            if let Some(q) = d.quiet {
                data["quiet_reason"] = json!(q.as_str());
            }
            writes.events.push(NewEvent::new(
                case_id,
                at,
                EventKind::CaseOpened,
                Actor::System,
                data,
            ));
            if let Some((stage, due_at)) = d.queue {
                writes.messages.push(NewMessage {
                    case_id,
                    employer_id: p.employer_id,
                    wa_id: p.wa_id.clone(),
                    stage,
                    due_at,
                });
            }
        }
    }
    Ok(opened_count)
}

/// Whether the scan wants to change the case row.
fn row_changes(c: &OpenCase, d: &Decision) -> bool {
    c.status != d.status
        || c.stage != d.stage
        || c.quiet_reason != d.quiet
        || c.next_action_at != d.next_action_at
}

/// Writes the existing cases whose row should change; the old stage and
/// status are conditions, so a concurrent scan or officer action is never
/// overwritten. Returns the ids it changed.
async fn update_cases(
    tx: &mut Tx,
    at: DateTime<Utc>,
    to_update: &[(OpenCase, Plan)],
) -> Result<HashSet<i64>> {
    const COLS: usize = 7;
    let changed: Vec<&(OpenCase, Plan)> = to_update
        .iter()
        .filter(|(c, p)| row_changes(c, &p.decision))
        .collect();
    let mut updated: HashSet<i64> = HashSet::new();
    for chunk in changed.chunks(rows_per_statement(tx.backend(), COLS)) {
        let sql = format!(
            "UPDATE cases SET status = v.column2, stage = v.column3, quiet_reason = v.column4, \
                    next_action_at = v.column5, updated_at = ${at_param} \
             FROM (VALUES {values}) AS v \
             WHERE cases.id = v.column1 AND cases.stage = v.column6 AND cases.status = v.column7 \
               AND cases.resolved_at IS NULL \
             RETURNING id",
            values = values_placeholders(chunk.len(), COLS, 1),
            at_param = chunk.len() * COLS + 1
        );
        let mut q = tx.query(&sql);
        for (c, p) in chunk {
            let d = &p.decision;
            q = q
                .bind(c.id)
                .bind(d.status)
                .bind(d.stage)
                .bind(d.quiet)
                .bind(d.next_action_at)
                .bind(c.stage)
                .bind(c.status);
        }
        let ids: Vec<(i64,)> = q
            .bind(at)
            .fetch_all_as(&mut *tx)
            .await
            .context("failed to update cases")?;
        updated.extend(ids.into_iter().map(|(id,)| id));
    }
    Ok(updated)
}

/// The events, cancellations and messages that follow the updated cases.
fn follow_updates(
    at: DateTime<Utc>,
    to_update: &[(OpenCase, Plan)],
    updated: &HashSet<i64>,
    writes: &mut Writes,
) {
    for (c, p) in to_update {
        let d = &p.decision;
        // A row that should have changed but did not was changed under us
        // (another scan, an officer): leave this case to that writer.
        if row_changes(c, d) && !updated.contains(&c.id) {
            continue;
        }
        if let Some(event) = change_event(at, c, p) {
            writes.events.push(event);
        }
        if let Some(event) = officer_event(at, c, d) {
            writes.events.push(event);
        }
        for &(outbox_id, reason) in &d.cancel {
            writes.cancels.push((c.id, outbox_id, reason));
        }
        if let Some((stage, due_at)) = d.queue {
            writes.messages.push(NewMessage {
                case_id: c.id,
                employer_id: p.employer_id,
                wa_id: p.wa_id.clone(),
                stage,
                due_at,
            });
        }
    }
}

/// `stage_changed`, when the stage moved.
fn change_event(at: DateTime<Utc>, c: &OpenCase, p: &Plan) -> Option<NewEvent> {
    let d = &p.decision;
    if c.stage == d.stage {
        return None;
    }
    let mut data = json!({"from": c.stage.as_str(), "to": d.stage.as_str()});
    if c.status != d.status {
        data["status"] = json!(d.status.as_str());
    }
    data["days_overdue"] = p.summary["days_overdue"].clone();
    Some(NewEvent::new(
        c.id,
        at,
        EventKind::StageChanged,
        Actor::System,
        data,
    ))
}

/// Why the case went to an officer, when the scan sent it there.
fn officer_event(at: DateTime<Utc>, c: &OpenCase, d: &Decision) -> Option<NewEvent> {
    let flagged = c.status != d.status && d.status == CaseStatus::NeedsOfficer;
    if !flagged {
        return None;
    }
    let (kind, data) = if c.status == CaseStatus::Promised {
        // The promised day has passed unpaid: recorded, an officer
        // follows up, and reminders resume.
        (
            EventKind::PromiseBroken,
            json!({"promised_date": c.promised_date.map(|d| d.to_string())}),
        )
    } else if c.payment_claimed_at.is_some() {
        (
            EventKind::OfficerRequested,
            json!({
                "reason": "payment_claim_unconfirmed",
                "claimed_at": c.payment_claimed_at,
            }),
        )
    } else if c.stage == d.stage {
        (
            EventKind::OfficerRequested,
            json!({"reason": d.quiet.map_or("needs_officer", |q| q.as_str())}),
        )
    } else {
        return None;
    };
    Some(NewEvent::new(c.id, at, kind, Actor::System, data))
}

/// Cancels reminders the case has moved past, or that escalation silences,
/// and records `message_skipped` for each one still queued.
async fn cancel_messages(
    tx: &mut Tx,
    at: DateTime<Utc>,
    cancels: &[(i64, i64, &'static str)],
    events: &mut Vec<NewEvent>,
) -> Result<()> {
    let reasons: HashMap<i64, (i64, &str)> = cancels
        .iter()
        .map(|&(case, id, why)| (id, (case, why)))
        .collect();
    let ids: Vec<i64> = cancels.iter().map(|&(_, id, _)| id).collect();
    let mut done = crate::outbox::cancel_queued(tx, &ids, at).await?;
    done.sort_by_key(|c| c.id);
    for c in done {
        let (case_id, why) = reasons[&c.id];
        events.push(NewEvent::new(
            case_id,
            at,
            EventKind::MessageSkipped,
            Actor::System,
            json!({"outbox_id": c.id, "message": c.message, "reason": why}),
        ));
    }
    Ok(())
}

/// Queues the stage messages, once per case and stage by their key, and
/// records `message_queued` for each new one. Returns how many it queued.
async fn queue_messages(
    tx: &mut Tx,
    at: DateTime<Utc>,
    messages: &[NewMessage],
    events: &mut Vec<NewEvent>,
) -> Result<u64> {
    let new: Vec<crate::outbox::NewMessage> = messages
        .iter()
        .map(|m| {
            let body = json!({"stage": m.stage.as_str(), "case_id": m.case_id}).to_string();
            crate::outbox::NewMessage::new(
                m.employer_id,
                crate::outbox::stage_key(m.case_id, m.stage),
                m.stage.as_str(),
                "template",
                body,
                m.due_at,
            )
            .case(Some(m.case_id))
            .to(m.wa_id.clone())
        })
        .collect();
    let queued = crate::outbox::enqueue_many(tx, &new, at).await?;
    let count = queued.len() as u64;
    for q in queued {
        events.push(NewEvent::new(
            q.case_id.context("a stage message without its case")?,
            at,
            EventKind::MessageQueued,
            Actor::System,
            json!({
                "outbox_id": q.id,
                "message": q.message,
                "due_at": q.due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }),
        ));
    }
    Ok(count)
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
    let tz = employer.tz;
    let old_stage = case.map(|c| c.stage);
    let status = next_status(at, employer, case, stage);
    let case_id = case.map(|c| c.id);
    let own_queued = || {
        rows.iter().filter(move |r| {
            case_id.is_some() && r.case_id == case_id && r.state == OutboxState::Queued
        })
    };
    let blocked = blocked(ctx, at, employer, case, status, stage);

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
        Some(r) if r.state == OutboxState::Queued => (Some(r.due_at), false),
        // Already sent, or settled one way or another: once per stage.
        Some(_) => (None, false),
        None => {
            let cancelled: HashSet<i64> = cancel.iter().map(|c| c.0).collect();
            let live: Vec<DateTime<Utc>> = rows
                .iter()
                .filter(|r| !DEAD_STATES.contains(&r.state) && !cancelled.contains(&r.id))
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

/// The status the case moves to at `at` on entering (or staying at) `stage`.
fn next_status(
    at: DateTime<Utc>,
    employer: &Employer,
    case: Option<&OpenCase>,
    stage: Stage,
) -> CaseStatus {
    let local_today = at.with_timezone(&employer.tz).date_naive();
    let entered = case.map(|c| c.stage) != Some(stage);
    let mut status = case.map_or(CaseStatus::Open, |c| c.status);
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
    status
}

/// Why no message may go out at all right now, and until when, if known.
fn blocked(
    ctx: &ScanContext,
    at: DateTime<Utc>,
    employer: &Employer,
    case: Option<&OpenCase>,
    status: CaseStatus,
    stage: Stage,
) -> Option<(QuietReason, Option<DateTime<Utc>>)> {
    let tz = employer.tz;
    let local_today = at.with_timezone(&tz).date_naive();
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
                    Some(
                        ctx.policy
                            .window
                            .opening_after_day(promised, tz, &ctx.calendar),
                    ),
                )
            })
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
