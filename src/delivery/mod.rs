//! The delivery worker: drains the outbox into the WhatsApp Cloud API.
//!
//! A pass claims due rows in batches (a lease: `state = 'sending'`,
//! `lease_until`, `attempts + 1`; `FOR UPDATE SKIP LOCKED` on PostgreSQL, one
//! `BEGIN IMMEDIATE` transaction on SQLite), re-reads each row's case and
//! renders it, sends through the rate limiter (the process's own on SQLite,
//! a budget shared by every instance on PostgreSQL) with many requests in
//! flight, and writes the outcomes in batches. Three concurrent loops in
//! one task do that (claim → send → write), so a slow database write never
//! stalls the sends and the other way round.
//!
//! **At least once.** A row is claimed (in the worker's name) before its
//! HTTP call, marked handed over just before the call, and settled after
//! it. An outcome that cannot be written (SQLite busy behind a long import,
//! a PostgreSQL error or lock wait) is kept and written again with back-off,
//! never dropped. Each worker beats in `delivery_workers`; when a worker's
//! heartbeat stops, its claims that never reached HTTP go back to the queue
//! at once. A row whose outcome is unknown — a timeout, or a dead worker's
//! handed-over call — is not resent at once: a status webhook carrying the
//! row's id in `biz_opaque_callback_data` may still arrive and settle it
//! ([`record_status`]). Only after the grace period with no status is the
//! row queued again, counted in `resent_unknown` — and then, if Meta had in
//! fact accepted the lost request and its statuses never came, the employer
//! receives the message twice. We accept that rare duplicate over silently
//! dropping a reminder; the grace period makes it unlikely.
//!
//! Every pass is evaluated at one instant `at` (the scheduler's now, or a
//! test's chosen time): due rows, the sending window, the caps and the
//! times written (`sent_at`, event times) all use it, so tests drain the
//! queue deterministically without sleeping. Only pacing uses the wall
//! clock.

mod context;
mod rate;
mod write;

pub use crate::outbox::{record_status, record_status_in, MessageStatus, StatusUpdate};
pub use context::{load_many as load_contexts, load_one as load_context, ContextSource};
pub use rate::RateLimiter;

use crate::config::Config;
use crate::domain::{Calendar, CaseStatus, QuietReason, Stage, WaId};
use crate::messages::{Catalog, MessageContext};
use crate::metrics as m;
use crate::outbox::{self, Claimed};
use crate::store::{list_placeholders, rows_per_statement, Db, Tx};
use crate::whatsapp::{
    ErrorClass, MessageContent, OutgoingMessage, RetryAfter, SendError, TextBody, WhatsappClient,
};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use chrono_tz::Tz;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What one pass did (`wa-smile deliver --json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliverSummary {
    pub sent: u64,
    pub failed: u64,
    /// Attempts put back for a later retry (and free-form messages resent
    /// as their template).
    pub retried: u64,
    /// Rows not sent because the case changed since it was queued.
    pub skipped: u64,
    /// The halt flag this pass raised (190, 368/131031): sending stopped
    /// and an operator must act.
    pub halted: Option<&'static str>,
}

/// Tunables; the defaults suit production and the benchmark.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Rows per claim transaction.
    pub batch: usize,
    /// HTTP requests in flight at once. At ~50 ms per request, 1,000/s
    /// needs at least 50.
    pub concurrency: usize,
    /// How long a claim holds a row; longer than the client timeout.
    pub lease: Duration,
    /// After a lease expires, how long to wait for a late status before
    /// sending again (see the module docs).
    pub grace: Duration,
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with ±25% jitter.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Meta's pair rate: about one message per 6 s to the same user.
    pub pair_interval: Duration,
    /// Outcomes written per transaction.
    pub write_batch: usize,
    /// On PostgreSQL, how long one outcome write waits for a lock before it
    /// is retried (SQLite's busy timeout bounds it there).
    pub write_wait: Duration,
    /// How long outcomes that cannot be written are kept and retried before
    /// the pass gives up on them (they stay `sending` for reconciliation).
    pub write_patience: Duration,
    /// A worker whose heartbeat is older than this is dead: its claims are
    /// reconciled at once instead of after the lease.
    pub heartbeat_timeout: Duration,
    /// How often a running pass renews its heartbeat.
    pub beat_every: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            batch: 200,
            concurrency: 256,
            lease: Duration::from_secs(300),
            grace: Duration::from_secs(600),
            max_attempts: 5,
            base_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            pair_interval: Duration::from_secs(6),
            write_batch: 500,
            write_wait: Duration::from_secs(5),
            write_patience: Duration::from_secs(600),
            heartbeat_timeout: Duration::from_secs(60),
            beat_every: Duration::from_secs(10),
        }
    }
}

impl DeliveryOptions {
    /// The defaults with the grace and heartbeat timeout of `whatsapp.*`;
    /// a worker beats six times per timeout.
    pub fn from_config(config: &Config) -> Self {
        let w = &config.whatsapp;
        let heartbeat_timeout = Duration::from_secs(w.worker_heartbeat_timeout_secs.max(1));
        Self {
            grace: Duration::from_secs(w.unknown_outcome_grace_secs),
            heartbeat_timeout,
            beat_every: heartbeat_timeout / 6,
            ..Self::default()
        }
    }
}

/// Everything a delivery pass needs; share one per process (it holds the
/// rate limiter that all passes and worker tasks draw from).
pub struct Deliverer {
    client: WhatsappClient,
    catalog: Arc<Catalog>,
    source: ContextSource,
    calendar: Calendar,
    language: String,
    daily_unique_recipients: u32,
    limiter: RateLimiter,
    /// Last send per recipient (pass time), for the pair rate.
    pair: Mutex<HashMap<String, DateTime<Utc>>>,
    /// This worker's id in `delivery_workers` and on its claims; new per
    /// process, so a restarted instance is a new worker and its previous
    /// life's claims are a dead worker's.
    worker_id: String,
    pub options: DeliveryOptions,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("client", &self.client)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    pub fn from_config(config: &Config, catalog: Arc<Catalog>) -> Result<Self> {
        let client = WhatsappClient::from_config(&config.whatsapp)
            .map_err(|e| anyhow::anyhow!("cannot build the WhatsApp client: {e}"))?;
        Self::new(config, catalog, client)
    }

    pub fn new(config: &Config, catalog: Arc<Catalog>, client: WhatsappClient) -> Result<Self> {
        Ok(Self {
            client,
            catalog,
            source: ContextSource::from_config(config)?,
            calendar: config.calendar(),
            language: config.whatsapp.template_language.clone(),
            daily_unique_recipients: config.whatsapp.daily_unique_recipients,
            limiter: RateLimiter::new(config.whatsapp.messages_per_second),
            pair: Mutex::new(HashMap::new()),
            worker_id: format!("w{}-{:016x}", std::process::id(), rand::random::<u64>()),
            options: DeliveryOptions::from_config(config),
        })
    }

    pub fn with_options(mut self, options: DeliveryOptions) -> Self {
        self.options = options;
        self
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The messages per second the pacer allows now (lower than configured
    /// for a while after a 130429).
    pub fn pace(&self) -> f64 {
        self.limiter.rate()
    }

    fn backoff(&self, attempt: u32, hint: RetryAfter) -> Duration {
        if let Some(d) = hint.delay(attempt) {
            return d;
        }
        let base = self.options.base_backoff.as_secs_f64()
            * 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
        let jitter = rand::random_range(0.75..1.25);
        Duration::from_secs_f64((base * jitter).min(self.options.max_backoff.as_secs_f64()))
    }
}

/// Operator switches that halt all sending.
pub const FLAG_SENDING_PAUSED: &str = "sending_paused";
pub const FLAG_AUTH_EXPIRED: &str = "auth_expired";

/// Active halt flags: `(name, reason)`.
pub async fn halted(db: &Db) -> Result<Vec<(String, String)>> {
    db.query("SELECT name, reason FROM delivery_flags ORDER BY name")
        .fetch_all_as(db)
        .await
        .context("failed to read delivery flags")
}

/// Clears halt flags (all when `name` is None): the operator's "resume".
pub async fn resume(db: &Db, name: Option<&str>) -> Result<u64> {
    let n = match name {
        Some(n) => {
            db.query("DELETE FROM delivery_flags WHERE name = $1")
                .bind(n.to_owned())
                .execute(db)
                .await?
        }
        None => db.query("DELETE FROM delivery_flags").execute(db).await?,
    };
    if n > 0 {
        let mut tx = db.begin().await?;
        tx.audit(
            crate::audit::AuditEntry::new(
                crate::time::now(),
                "operator",
                "delivery.resumed",
                "delivery",
            )
            .after(json!({"flag": name})),
        );
        tx.commit().await?;
    }
    for flag in [FLAG_SENDING_PAUSED, FLAG_AUTH_EXPIRED] {
        if name.is_none_or(|n| n == flag) {
            metrics::gauge!(m::DELIVERY_HALTED, "flag" => flag).set(0.0);
        }
    }
    Ok(n)
}

/// Returns whether the flag was newly set (false: already halted).
async fn set_flag(
    tx: &mut Tx,
    name: &'static str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let n = tx
        .query(
            "INSERT INTO delivery_flags (name, reason, set_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(reason.to_owned())
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("failed to set a delivery flag")?;
    if n > 0 {
        tx.audit(
            crate::audit::AuditEntry::new(at, "system", "delivery.halted", "delivery")
                .after(json!({"flag": name, "reason": reason})),
        );
    }
    metrics::gauge!(m::DELIVERY_HALTED, "flag" => name).set(1.0);
    Ok(n > 0)
}

/// Halts all sending for a restriction Meta announced by webhook, as a
/// 368/131031 does (`crate::account_health`). True when newly halted.
pub async fn halt_for_restriction(db: &Db, reason: &str, at: DateTime<Utc>) -> Result<bool> {
    let mut tx = db.begin().await?;
    let raised = set_flag(&mut tx, FLAG_SENDING_PAUSED, reason, at).await?;
    tx.commit().await?;
    Ok(raised)
}

/// Sends everything due at `at`, and returns once nothing more is due (rows
/// put back for a retry or deferred are due later). Does nothing while a
/// halt flag is set.
pub async fn deliver_due(db: &Db, d: &Deliverer, at: DateTime<Utc>) -> Result<DeliverSummary> {
    let (_tx, rx) = watch::channel(false);
    deliver_until(db, d, at, rx).await
}

/// [`deliver_due`] that stops when `shutdown` turns true (`deliver --once`
/// on SIGTERM): claimed rows not yet sent are released and in-flight sends
/// finish and are recorded, as in `serve`.
pub async fn deliver_until(
    db: &Db,
    d: &Deliverer,
    at: DateTime<Utc>,
    shutdown: watch::Receiver<bool>,
) -> Result<DeliverSummary> {
    let result = run_pass(db, d, at, shutdown, None).await;
    // A one-off pass is a worker only while it runs; its claims are settled.
    if let Err(e) = retire(db, d).await {
        tracing::warn!(error = %format!("{e:#}"), "cannot remove the worker's heartbeat");
    }
    result
}

/// Renews this worker's heartbeat (creating its row on first use).
async fn beat(db: &Db, d: &Deliverer, at: DateTime<Utc>) -> Result<()> {
    db.query(
        "INSERT INTO delivery_workers (id, started_at, beat_at) VALUES ($1, $2, $2) \
         ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
    )
    .bind(d.worker_id.clone())
    .bind(crate::time::truncate(at))
    .execute(db)
    .await
    .context("failed to renew the delivery worker's heartbeat")?;
    Ok(())
}

/// A worker stopping cleanly: it holds no claims any more.
async fn retire(db: &Db, d: &Deliverer) -> Result<()> {
    db.query("DELETE FROM delivery_workers WHERE id = $1")
        .bind(d.worker_id.clone())
        .execute(db)
        .await
        .context("failed to retire the delivery worker")?;
    Ok(())
}

/// The longest a worker pass goes on claiming. A pass evaluates everything
/// at its start instant, so a long backlog (50,000 messages at 80/s is ten
/// minutes) is worked off in passes of this length: the sending window,
/// caps and leases stay current.
const MAX_PASS: Duration = Duration::from_secs(30);

/// The long-running worker for `serve`: a pass every `poll`, until
/// `shutdown` turns true; then claimed rows not yet sent are released and
/// in-flight sends finish before it returns.
pub async fn run_worker(
    db: Db,
    d: Arc<Deliverer>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut warned_halt = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match halted(&db).await {
            Ok(flags) if !flags.is_empty() => {
                if !warned_halt {
                    tracing::error!(
                        ?flags,
                        "delivery is halted until an operator runs `wa-smile deliver --resume`"
                    );
                    warned_halt = true;
                }
            }
            Ok(_) => {
                warned_halt = false;
                let started = std::time::Instant::now();
                let deadline = tokio::time::Instant::now() + MAX_PASS;
                match run_pass(
                    &db,
                    &d,
                    crate::time::now(),
                    shutdown.clone(),
                    Some(deadline),
                )
                .await
                {
                    Ok(s) if s != DeliverSummary::default() => tracing::info!(
                        sent = s.sent,
                        failed = s.failed,
                        retried = s.retried,
                        skipped = s.skipped,
                        "delivery pass"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "delivery pass failed"),
                }
                // A pass cut short by MAX_PASS left work: go on at once.
                if started.elapsed() >= MAX_PASS {
                    continue;
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot read delivery flags"),
        }
        // Idle or halted, the worker is alive: its peers must not take its
        // claims for a dead worker's. (With a heartbeat timeout shorter than
        // the poll, it also looks sooner for a dead peer's rows.)
        if let Err(e) = beat(&db, &d, crate::time::now()).await {
            tracing::warn!(error = %format!("{e:#}"), "heartbeat failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(poll.min(d.options.beat_every)) => {}
            _ = shutdown.changed() => {}
        }
    }
    if let Err(e) = retire(&db, &d).await {
        tracing::warn!(error = %format!("{e:#}"), "cannot remove the worker's heartbeat");
    }
    tracing::info!("delivery worker stopped");
}

/// A row ready to go out.
struct Prepared {
    row: Claimed,
    msg: OutgoingMessage,
    /// Sent outside the recipient's 24-hour window (counts towards the tier).
    initiated: bool,
    kind: &'static str,
    /// The exact text the employer sees.
    text: Option<String>,
}

enum Outcome {
    Sent {
        row: Claimed,
        wamid: String,
        initiated: bool,
        kind: &'static str,
        text: Option<String>,
    },
    Retry {
        row: Claimed,
        until: DateTime<Utc>,
        reason: String,
        code: Option<i64>,
    },
    Failed {
        row: Claimed,
        reason: String,
        code: Option<i64>,
        title: String,
        unreachable: bool,
    },
    /// No answer (a timeout): Meta may have taken it. The row waits for its
    /// status webhook, and is queued again only after the grace period.
    Unknown {
        row: Claimed,
        reason: String,
    },
    /// A free-form message outside the window (131047): resend as the
    /// template, now.
    Fallback {
        row: Claimed,
    },
    Skipped {
        row: Claimed,
        reason: &'static str,
    },
    /// Not now (window, caps, tier, pair rate): due again at `until`; the
    /// reason, if any, is shown on the case.
    Deferred {
        row: Claimed,
        until: DateTime<Utc>,
        reason: Option<QuietReason>,
    },
    /// Not attempted (halt or shutdown): back to the queue as it was.
    Release {
        row: Claimed,
    },
    /// 190 or 368/131031: release, set the flag, stop the pass.
    Halt {
        row: Claimed,
        flag: &'static str,
        reason: String,
    },
}

struct Pass<'a> {
    db: &'a Db,
    d: &'a Deliverer,
    at: DateTime<Utc>,
    /// Set by a halt: no more claims or sends.
    stop: AtomicBool,
    /// No more claims after this (the worker's passes; see [`MAX_PASS`]).
    deadline: Option<tokio::time::Instant>,
    /// Claimed rows whose outcome is not written yet.
    outstanding: AtomicUsize,
    tier: Mutex<Tier>,
}

/// The daily tier as this pass sees it.
struct Tier {
    /// Recipients of business-initiated messages in the last 24 h.
    recent: HashSet<String>,
    remaining: i64,
    /// When the next tier slot frees (the oldest recent send + 24 h).
    frees_at: DateTime<Utc>,
}

async fn run_pass(
    db: &Db,
    d: &Deliverer,
    at: DateTime<Utc>,
    shutdown: watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
) -> Result<DeliverSummary> {
    let at = crate::time::truncate(at);
    if !halted(db).await?.is_empty() {
        return Ok(DeliverSummary::default());
    }
    // Alive before claiming, so no peer takes this pass's claims for a dead
    // worker's.
    beat(db, d, at).await?;
    reconcile(db, d, at).await?;
    let tier = plan_tier(db, d, at).await?;
    let pass = Pass {
        db,
        d,
        at,
        stop: AtomicBool::new(false),
        deadline,
        outstanding: AtomicUsize::new(0),
        tier: Mutex::new(tier),
    };
    let (prep_tx, prep_rx) = mpsc::channel::<Prepared>(d.options.batch * 2);
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Outcome>();
    // The heartbeat goes on for as long as the pass, on the pass's clock.
    let beating = async {
        let started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(d.options.beat_every).await;
            let now = at + ChronoDuration::from_std(started.elapsed()).unwrap_or_default();
            if let Err(e) = beat(db, d, now).await {
                tracing::warn!(error = %format!("{e:#}"), "heartbeat failed");
            }
        }
    };
    let work = async {
        tokio::join!(
            pass.produce(prep_tx, out_tx.clone(), shutdown.clone()),
            pass.send_all(prep_rx, out_tx, shutdown),
            pass.write_all(out_rx),
        )
    };
    let (claimed, sent, written) = tokio::select! {
        r = work => r,
        _ = beating => unreachable!("the heartbeat loop never ends"),
    };
    // Report the first failure; the others are usually its echoes.
    claimed?;
    sent?;
    written
}

impl Pass<'_> {
    fn stopped(&self, shutdown: &watch::Receiver<bool>) -> bool {
        self.stop.load(Ordering::SeqCst) || *shutdown.borrow()
    }

    /// Claims, re-checks and renders due rows until none is left.
    async fn produce(
        &self,
        prep: mpsc::Sender<Prepared>,
        out: mpsc::UnboundedSender<Outcome>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        loop {
            if self.stopped(&shutdown)
                || self
                    .deadline
                    .is_some_and(|d| tokio::time::Instant::now() >= d)
            {
                return Ok(());
            }
            // Outcomes that cannot be written yet are kept: claim no more
            // until they are, so memory stays bounded.
            if self.outstanding.load(Ordering::SeqCst) >= self.max_outstanding() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            // Read before claiming: an outcome counts as written only after
            // its commit, so when nothing was outstanding before this claim,
            // the claim saw every row that came back due now.
            let pending = self.outstanding.load(Ordering::SeqCst);
            let rows = match self.claim_patiently(&shutdown).await {
                Ok(Some(rows)) => rows,
                Ok(None) => return Ok(()),
                Err(e) => {
                    // What is in flight still finishes and is recorded.
                    self.stop.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            if rows.is_empty() {
                // Rows still in flight may come back due now (a template
                // fallback): finish only when nothing is outstanding. (Read
                // after the claim, a fallback written between the claim and
                // the read was missed: the old timing flake.)
                if pending == 0 {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            self.outstanding.fetch_add(rows.len(), Ordering::SeqCst);
            let mut ready = Vec::new();
            for item in self.prepare(rows).await? {
                match item {
                    Ok(p) => ready.push(p),
                    Err(o) => {
                        let _ = out.send(o);
                    }
                }
            }
            for p in self.hand_over(ready, &out).await {
                if prep.send(p).await.is_err() {
                    return Ok(());
                }
            }
        }
    }

    /// Claims the next batch; while the database is busy (a long writer on
    /// SQLite), waits and tries again rather than ending the pass with its
    /// sends still being recorded. None: stopped meanwhile.
    async fn claim_patiently(
        &self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Option<Vec<Claimed>>> {
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            match claim(self.db, self.d, self.at).await {
                Ok(rows) => return Ok(Some(rows)),
                Err(e) if started.elapsed() + wait <= self.d.options.write_patience => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = wait.as_millis() as u64, "cannot claim messages yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                    if self.stopped(shutdown) {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Claimed rows not yet written: the claim batches, the messages waiting
    /// for a slot, those in flight, and a write batch.
    fn max_outstanding(&self) -> usize {
        let o = &self.d.options;
        o.concurrency + 4 * o.batch + o.write_batch
    }

    /// Records that these rows' HTTP calls may start (`handed_at`), and keeps
    /// only the rows still claimed by this worker: a peer that took this
    /// worker for dead may have released some, and those must not be sent.
    /// Until this mark, a dead worker's claim goes back at once; after it,
    /// the row waits for its status webhook.
    async fn hand_over(
        &self,
        ready: Vec<Prepared>,
        out: &mpsc::UnboundedSender<Outcome>,
    ) -> Vec<Prepared> {
        if ready.is_empty() {
            return ready;
        }
        let ids: Vec<i64> = ready.iter().map(|p| p.row.id).collect();
        match outbox::mark_handed(self.db, &self.d.worker_id, self.at, &ids).await {
            Ok(mine) => {
                let (keep, lost): (Vec<_>, Vec<_>) =
                    ready.into_iter().partition(|p| mine.contains(&p.row.id));
                if !lost.is_empty() {
                    tracing::warn!(
                        rows = lost.len(),
                        "claims taken back by a peer (this worker was thought dead); not sending them"
                    );
                    for p in &lost {
                        self.forget_pair(p);
                    }
                    self.outstanding.fetch_sub(lost.len(), Ordering::SeqCst);
                }
                keep
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot mark claims as sending; releasing them");
                for p in ready {
                    self.forget_pair(&p);
                    let _ = out.send(Outcome::Release { row: p.row });
                }
                Vec::new()
            }
        }
    }

    /// Re-reads the claimed rows' cases and decides, per row: send (with
    /// the rendered message), skip, defer or fail.
    // The send-time re-check reads as one list of rules in the order they
    // apply; each rule is a few lines over the same batch state.
    async fn prepare(&self, rows: Vec<Claimed>) -> Result<Vec<Result<Prepared, Outcome>>> {
        let at = self.at;
        let case_ids: Vec<i64> = rows.iter().filter_map(|r| r.case_id).collect();
        let default_tz = self.d.source.default_tz;
        let employer_ids = rows.iter().map(|r| r.employer_id);
        let states = case_states(self.db, &case_ids, employer_ids, default_tz).await?;
        let contexts = context::load_many(self.db, &self.d.source, &case_ids, at).await?;
        let reminded_today = reminded_today(self.db, &rows, at, default_tz).await?;
        let paused_templates = crate::templates_status::blocked(self.db, &self.d.language).await?;
        let policy = &self.d.source.policy;
        let mut out = Vec::with_capacity(rows.len());
        let mut pair = self.d.pair.lock().expect("pair map lock");
        for row in rows {
            let Some(state) = states.get(&row.employer_id) else {
                out.push(Err(Outcome::Skipped {
                    row,
                    reason: "no_employer",
                }));
                continue;
            };
            let case = row.case_id.and_then(|c| state.cases.get(&c));
            let tz = state.tz;
            let wa_id = row
                .wa_id
                .clone()
                .or_else(|| state.wa_id.clone())
                .filter(|w| !w.trim().is_empty())
                .and_then(|w| WaId::from_meta(&w).ok());
            let window_open = outbox::window_open(case.and_then(|c| c.last_inbound_at), at);
            let skip = skip_reason(&row, state, case, wa_id.is_some(), at);
            if let Some(reason) = skip {
                out.push(Err(Outcome::Skipped { row, reason }));
                continue;
            }
            let wa_id = wa_id.expect("checked above");
            // The sending window binds reminders always; a reply may go out
            // while the employer's own 24-hour window is open.
            if row.is_reminder() || !window_open {
                if let Err(reason) = policy.window.check(at, tz, &self.d.calendar) {
                    let (until, _) = policy.window.next_opening(at, tz, &self.d.calendar);
                    out.push(Err(Outcome::Deferred {
                        row,
                        until,
                        reason: Some(reason),
                    }));
                    continue;
                }
            }
            if row.is_reminder() && reminded_today.contains(&row.employer_id) {
                let day = at.with_timezone(&tz).date_naive();
                let until = policy.window.opening_after_day(day, tz, &self.d.calendar);
                out.push(Err(Outcome::Deferred {
                    row,
                    until,
                    reason: Some(QuietReason::DailyCap),
                }));
                continue;
            }
            // Pair rate: one message per recipient per interval.
            let pair_gap = ChronoDuration::from_std(self.d.options.pair_interval)
                .unwrap_or(ChronoDuration::seconds(6));
            if let Some(last) = pair.get(wa_id.as_str()) {
                if at < *last + pair_gap {
                    let until = *last + pair_gap;
                    out.push(Err(Outcome::Deferred {
                        row,
                        until,
                        reason: None,
                    }));
                    continue;
                }
            }
            // Free-form only inside the recipient's window; else the template.
            let as_template = row.kind == "template" || !window_open;
            let initiated = !window_open;
            if initiated {
                if let Err(until) = self.take_tier_slot(&wa_id) {
                    out.push(Err(Outcome::Deferred {
                        row,
                        until,
                        reason: Some(QuietReason::DailyTier),
                    }));
                    continue;
                }
            }
            let ctx = row.case_id.and_then(|c| contexts.get(&c));
            match self.render(&row, ctx, as_template) {
                Ok((content, _)) if crate::templates_status::holds(&content, &paused_templates) => {
                    out.push(Err(Outcome::Deferred {
                        until: at + crate::templates_status::RECHECK,
                        row,
                        reason: Some(QuietReason::TemplatePaused),
                    }));
                }
                Ok((content, kind)) => {
                    pair.insert(wa_id.as_str().to_owned(), at);
                    let text = outbox::employer_text(&self.d.catalog, &content);
                    let mut msg = OutgoingMessage::new(&wa_id, content)
                        .with_callback_data(row.id.to_string());
                    // A reply quotes the employer's message it answers.
                    if let Some(wamid) = serde_json::from_str::<serde_json::Value>(&row.body)
                        .ok()
                        .and_then(|b| b["in_reply_to"].as_str().map(str::to_owned))
                    {
                        msg = msg.in_reply_to(wamid);
                    }
                    out.push(Ok(Prepared {
                        row,
                        msg,
                        initiated,
                        kind,
                        text,
                    }));
                }
                Err(reason) => out.push(Err(Outcome::Failed {
                    row,
                    reason: "render".into(),
                    code: None,
                    title: reason,
                    unreachable: false,
                })),
            }
        }
        Ok(out)
    }

    /// A slot of the daily tier for a business-initiated message to
    /// `wa_id` (free when it already had one today); Err: when one frees.
    fn take_tier_slot(&self, wa_id: &WaId) -> Result<(), DateTime<Utc>> {
        let mut tier = self.tier.lock().expect("tier lock");
        if !tier.recent.contains(wa_id.as_str()) {
            if tier.remaining <= 0 {
                return Err(tier.frees_at);
            }
            tier.remaining -= 1;
            tier.recent.insert(wa_id.as_str().to_owned());
        }
        Ok(())
    }

    fn render(
        &self,
        row: &Claimed,
        ctx: Option<&MessageContext>,
        as_template: bool,
    ) -> Result<(MessageContent, &'static str), String> {
        let body: serde_json::Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
        // A reply queued finished (a confirmation with the promised date, a
        // payment link) is sent exactly as queued — re-rendering it from the
        // case could lose what the reply carried. Once the 24-hour window has
        // closed, only a template may go, so free-form content falls through
        // to the catalog's template form below.
        if let Some(queued) = body
            .get("content")
            .and_then(|c| serde_json::from_value::<MessageContent>(c.clone()).ok())
        {
            if !as_template || matches!(queued, MessageContent::Template { .. }) {
                let kind = queued.kind();
                return Ok((queued, kind));
            }
        }
        // Literal text queued as such (`{"text": …}`), or, for a row with no
        // case to render from, the `content` it was queued with.
        let literal = body.get("text").and_then(|t| t.as_str()).or_else(|| {
            ctx.is_none()
                .then(|| body["content"]["text"]["body"].as_str())
                .flatten()
        });
        if !as_template {
            if let (Some(text), "text") = (literal, row.kind.as_str()) {
                return Ok((
                    MessageContent::Text {
                        text: TextBody::new(text),
                    },
                    "text",
                ));
            }
        }
        let ctx = ctx.ok_or_else(|| format!("message `{}` has no case to render", row.message))?;
        let catalog = &self.d.catalog;
        let rendered = if as_template {
            catalog
                .whatsapp_template(&row.message, ctx, &self.d.language)
                .map(|t| (MessageContent::template(t), "template"))
        } else if row.kind == "interactive" {
            catalog
                .interactive(&row.message, ctx)
                .map(|i| (MessageContent::interactive(i), "interactive"))
        } else {
            catalog
                .render_text(&row.message, ctx)
                .map(|t| (MessageContent::text(t), "text"))
        };
        rendered.map_err(|e| e.to_string())
    }

    /// Sends prepared messages with up to `concurrency` in flight, each
    /// after a slot from the rate limiter.
    async fn send_all(
        &self,
        mut prep: mpsc::Receiver<Prepared>,
        out: mpsc::UnboundedSender<Outcome>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut inflight = FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                next = prep.recv(), if open && inflight.len() < self.d.options.concurrency => {
                    match next {
                        Some(p) if self.stopped(&shutdown) => {
                            self.forget_pair(&p);
                            let _ = out.send(Outcome::Release { row: p.row });
                        }
                        Some(p) => inflight.push(self.send_one(p, shutdown.clone())),
                        None => open = false,
                    }
                }
                Some(outcome) = inflight.next(), if !inflight.is_empty() => {
                    if let Outcome::Halt { .. } = &outcome {
                        self.stop.store(true, Ordering::SeqCst);
                    }
                    let _ = out.send(outcome);
                }
                else => break,
            }
        }
        Ok(())
    }

    /// Nothing reached the employer: the pair rate holds no claim.
    fn forget_pair(&self, p: &Prepared) {
        self.d
            .pair
            .lock()
            .expect("pair map lock")
            .remove(p.msg.to.as_str());
    }

    async fn send_one(&self, p: Prepared, shutdown: watch::Receiver<bool>) -> Outcome {
        // Shutdown does not wait for pacing slots: a message still waiting
        // for one is released at once.
        let mut signal = shutdown.clone();
        let shutting_down = async move {
            while !*signal.borrow_and_update() {
                if signal.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = self.d.limiter.acquire_on(self.db) => {}
            _ = shutting_down => {}
        }
        // A halt or shutdown while this one waited for its slot.
        if self.stopped(&shutdown) {
            self.forget_pair(&p);
            return Outcome::Release { row: p.row };
        }
        let result = self.d.client.send(&p.msg).await;
        if let Err(e) = &result {
            self.forget_pair(&p);
            if e.is_throughput_limit() {
                self.d.limiter.throttled();
            }
        }
        match result {
            Ok(receipt) => Outcome::Sent {
                row: p.row,
                wamid: receipt.message_id,
                initiated: p.initiated,
                kind: p.kind,
                text: p.text,
            },
            Err(e) => self.classify(p, e),
        }
    }

    fn classify(&self, p: Prepared, e: SendError) -> Outcome {
        let row = p.row;
        let reason = e.reason();
        let code = e.meta_code();
        let title = match &e {
            SendError::Api { error, .. } => error.message.clone(),
            other => other.to_string(),
        };
        match e.class() {
            ErrorClass::Retryable { retry_after } => {
                if row.attempts >= self.d.options.max_attempts {
                    return Outcome::Failed {
                        row,
                        reason: format!("{reason}_max_attempts"),
                        code,
                        title,
                        unreachable: false,
                    };
                }
                if e.outcome_unknown() {
                    return Outcome::Unknown { row, reason };
                }
                let wait = self.d.backoff(row.attempts, retry_after);
                Outcome::Retry {
                    row,
                    until: self.at + ChronoDuration::from_std(wait).unwrap_or_default(),
                    reason,
                    code,
                }
            }
            ErrorClass::Permanent if e.is_outside_window() && p.kind != "template" => {
                Outcome::Fallback { row }
            }
            ErrorClass::Permanent => Outcome::Failed {
                unreachable: e.is_undeliverable(),
                row,
                reason,
                code,
                title,
            },
            ErrorClass::AuthExpired => Outcome::Halt {
                row,
                flag: FLAG_AUTH_EXPIRED,
                reason: format!("{reason}: {title}"),
            },
            ErrorClass::AccountRestricted => Outcome::Halt {
                row,
                flag: FLAG_SENDING_PAUSED,
                reason: format!("{reason}: {title}"),
            },
        }
    }

    /// Writes outcomes in batches, as they come. A batch that cannot be
    /// written (SQLite busy behind a long writer, a PostgreSQL error or lock
    /// wait) is kept and written again with back-off: an accepted message
    /// left `sending` would be sent again later.
    async fn write_all(&self, mut rx: mpsc::UnboundedReceiver<Outcome>) -> Result<DeliverSummary> {
        let mut summary = DeliverSummary::default();
        let mut buf = Vec::new();
        let mut first_error: Option<anyhow::Error> = None;
        while let Some(o) = rx.recv().await {
            buf.push(o);
            while buf.len() < self.d.options.write_batch {
                match rx.try_recv() {
                    Ok(o) => buf.push(o),
                    Err(_) => break,
                }
            }
            let n = buf.len();
            // After giving up once, each later batch gets one try.
            let patience = if first_error.is_none() {
                self.d.options.write_patience
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.write_patiently(&buf, &mut summary, patience).await {
                // Stop claiming; the rows stay `sending` and come back
                // through reconciliation (or their status webhooks).
                self.stop.store(true, Ordering::SeqCst);
                first_error.get_or_insert(e);
            }
            buf.clear();
            self.outstanding.fetch_sub(n, Ordering::SeqCst);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }

    async fn write_patiently(
        &self,
        outcomes: &[Outcome],
        summary: &mut DeliverSummary,
        patience: Duration,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut tries = 0u32;
        loop {
            tries += 1;
            match write::write_outcomes(self.db, self.d, self.at, outcomes, summary).await {
                Ok(()) => {
                    if tries > 1 {
                        tracing::info!(
                            outcomes = outcomes.len(),
                            tries,
                            "delivery outcomes written after retrying"
                        );
                    }
                    return Ok(());
                }
                Err(e) if started.elapsed() + wait <= patience => {
                    tracing::warn!(
                        error = %format!("{e:#}"),
                        outcomes = outcomes.len(),
                        tries,
                        retry_in_ms = wait.as_millis() as u64,
                        "cannot write delivery outcomes yet; keeping them and retrying"
                    );
                    metrics::counter!(m::OUTCOME_WRITE_RETRIES).increment(1);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(
                        error = %format!("{e:#}"),
                        outcomes = outcomes.len(),
                        tries,
                        "giving up writing delivery outcomes; the rows wait for their status webhooks"
                    );
                    return Err(e);
                }
            }
        }
    }
}

/// The re-check at send time: why this row must not go out now that the
/// case and employer may have changed since it was queued, if anything.
fn skip_reason(
    row: &Claimed,
    state: &EmployerState,
    case: Option<&CaseState>,
    has_number: bool,
    at: DateTime<Utc>,
) -> Option<&'static str> {
    if !row.is_reminder() {
        return if state.contact_invalid {
            Some("wrong_number")
        } else if !has_number {
            Some("no_whatsapp_number")
        } else {
            None
        };
    }
    let today = at.with_timezone(&state.tz).date_naive();
    match case {
        None => Some("case_missing"),
        Some(c) if c.resolved => Some("case_resolved"),
        Some(c) if c.status == CaseStatus::Escalated => Some("escalated"),
        // The case moved on (a crashed worker's claim came back late): the
        // current stage's message is the one to send.
        Some(c) if row.stage().zip(c.stage).is_some_and(|(m, now)| m < now) => Some("stage_passed"),
        Some(_) if state.opted_out => Some("opted_out"),
        Some(_) if state.contact_invalid => Some("wrong_number"),
        Some(c) if c.paused_until.is_some_and(|u| u > at) => Some("paused"),
        Some(c) if c.officer_hold => Some("awaiting_officer"),
        Some(c)
            if c.status == CaseStatus::Promised && c.promised_date.is_some_and(|p| p >= today) =>
        {
            Some("promised")
        }
        Some(_) if !has_number => Some("no_whatsapp_number"),
        Some(_) => None,
    }
}

/// Claims up to a batch of due rows with a lease, in this worker's name.
async fn claim(db: &Db, d: &Deliverer, at: DateTime<Utc>) -> Result<Vec<Claimed>> {
    let lease_until =
        at + ChronoDuration::from_std(d.options.lease).unwrap_or(ChronoDuration::minutes(5));
    outbox::claim(db, &d.worker_id, at, lease_until, d.options.batch).await
}

struct CaseState {
    status: CaseStatus,
    stage: Option<Stage>,
    resolved: bool,
    paused_until: Option<DateTime<Utc>>,
    promised_date: Option<chrono::NaiveDate>,
    last_inbound_at: Option<DateTime<Utc>>,
    /// The employer's reply waits for an officer (dispute, complaint, …).
    officer_hold: bool,
}

struct EmployerState {
    tz: Tz,
    wa_id: Option<String>,
    opted_out: bool,
    contact_invalid: bool,
    cases: HashMap<i64, CaseState>,
}

#[derive(sqlx::FromRow)]
struct EmployerRow {
    id: i64,
    /// Parsed leniently: an unusable zone falls back to the configured
    /// default, so one bad row cannot stop the batch.
    timezone: String,
    wa_id: Option<String>,
    opted_out_at: Option<DateTime<Utc>>,
    contact_invalid_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct CaseRow {
    id: i64,
    employer_id: i64,
    status: CaseStatus,
    stage: String,
    resolved_at: Option<DateTime<Utc>>,
    paused_until: Option<DateTime<Utc>>,
    promised_date: Option<chrono::NaiveDate>,
    last_inbound_at: Option<DateTime<Utc>>,
    officer_hold: Option<String>,
}

/// `SELECT {cols} FROM {table} WHERE id IN (…)` over `ids`, in chunks.
async fn by_ids<T: crate::store::Record>(db: &Db, select: &str, ids: &[i64]) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(rows_per_statement(db.backend(), 1)) {
        let sql = format!(
            "{select} WHERE id IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = db.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all_as::<T>(db).await?);
    }
    Ok(out)
}

/// The employers and cases of a batch, as they are now.
async fn case_states(
    db: &Db,
    case_ids: &[i64],
    employer_ids: impl Iterator<Item = i64>,
    default_tz: Tz,
) -> Result<HashMap<i64, EmployerState>> {
    let employer_ids: Vec<i64> = employer_ids.collect::<HashSet<_>>().into_iter().collect();
    let employers: Vec<EmployerRow> = by_ids(
        db,
        "SELECT id, timezone, wa_id, opted_out_at, contact_invalid_at FROM employers",
        &employer_ids,
    )
    .await
    .context("failed to re-read employers")?;
    let mut out: HashMap<i64, EmployerState> = employers
        .into_iter()
        .map(|e| {
            let state = EmployerState {
                tz: e.timezone.parse().unwrap_or(default_tz),
                wa_id: e.wa_id,
                opted_out: e.opted_out_at.is_some(),
                contact_invalid: e.contact_invalid_at.is_some(),
                cases: HashMap::new(),
            };
            (e.id, state)
        })
        .collect();
    let cases: Vec<CaseRow> = by_ids(
        db,
        "SELECT id, employer_id, status, stage, resolved_at, paused_until, promised_date, last_inbound_at, \
         officer_hold FROM cases",
        case_ids,
    )
    .await
    .context("failed to re-read cases")?;
    for c in cases {
        if let Some(e) = out.get_mut(&c.employer_id) {
            e.cases.insert(
                c.id,
                CaseState {
                    status: c.status,
                    stage: c.stage.parse().ok(),
                    resolved: c.resolved_at.is_some(),
                    paused_until: c.paused_until,
                    promised_date: c.promised_date,
                    last_inbound_at: c.last_inbound_at,
                    officer_hold: c.officer_hold.is_some(),
                },
            );
        }
    }
    Ok(out)
}

/// Employers of the batch's reminders that already got an automated
/// reminder on their local day of `at` (the one-a-day cap).
async fn reminded_today(
    db: &Db,
    rows: &[Claimed],
    at: DateTime<Utc>,
    default_tz: Tz,
) -> Result<HashSet<i64>> {
    let employers: Vec<i64> = rows
        .iter()
        .filter(|r| r.is_reminder())
        .map(|r| r.employer_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if employers.is_empty() {
        return Ok(HashSet::new());
    }
    // Local days are at most 14 h away from UTC in Indonesia's zones.
    let since = at - ChronoDuration::hours(36);
    let sent = outbox::reminders_sent_since(db, &employers, since, at).await?;
    Ok(sent
        .into_iter()
        .filter(|r| {
            let tz: Tz = r.timezone.parse().unwrap_or(default_tz);
            r.sent_at.with_timezone(&tz).date_naive() == at.with_timezone(&tz).date_naive()
        })
        .map(|r| r.employer_id)
        .collect())
}

/// Claims whose worker is gone, and rows whose outcome is unknown.
///
/// - A worker whose heartbeat stopped (or that left no heartbeat) is dead.
///   Its claims that were never handed to HTTP go back to the queue at
///   once; those whose call may have happened become unknown outcomes.
/// - A live worker's claim whose lease expired before it reached HTTP goes
///   back at once too.
/// - An unknown outcome (a timeout, a dead worker's call, or a lease that
///   expired after the hand-over) waits out the grace period for a status
///   webhook carrying the row's id; only then is it queued again, and that
///   resend is recorded (`resent_unknown`, a metric): it may be a duplicate
///   (see the module docs).
async fn reconcile(db: &Db, d: &Deliverer, at: DateTime<Utc>) -> Result<u64> {
    let grace = ChronoDuration::from_std(d.options.grace).unwrap_or_default();
    let cutoff = at - grace;
    let dead_before =
        at - ChronoDuration::from_std(d.options.heartbeat_timeout).unwrap_or_default();
    let mut tx = db.begin().await?;
    let dead = tx
        .query("DELETE FROM delivery_workers WHERE beat_at < $1 AND id <> $2 RETURNING id")
        .bind(dead_before)
        .bind(d.worker_id.clone())
        .fetch_all(&mut tx)
        .await
        .context("failed to find dead delivery workers")?
        .len();
    let released = outbox::release_orphaned_claims(&mut tx, at).await?;
    let unknown = outbox::hold_orphaned_sends(&mut tx, at).await?;
    let requeued = outbox::requeue_unknown(&mut tx, at, cutoff).await?;
    tx.commit().await?;
    if dead > 0 || released > 0 || unknown > 0 {
        tracing::warn!(
            dead_workers = dead,
            released,
            awaiting_status = unknown,
            "reconciled the claims of delivery workers that stopped"
        );
    }
    if !requeued.is_empty() {
        tracing::warn!(
            rows = requeued.len(),
            "requeued messages whose outcome was unknown (timeout or dead worker) and no status arrived"
        );
        for r in &requeued {
            let reason = match r.last_error.as_deref() {
                Some("timeout") => "timeout",
                Some("worker_died") => "worker_died",
                _ => "lease_expired",
            };
            metrics::counter!(m::MESSAGES_RESENT_UNKNOWN, "reason" => reason).increment(1);
        }
        metrics::counter!(m::MESSAGES_RETRIED, "reason" => "lease_expired")
            .increment(requeued.len() as u64);
    }
    Ok(requeued.len() as u64 + released)
}

/// The daily tier: when more new business-initiated recipients are due than
/// the tier has room for, the largest and oldest arrears go first; the rest
/// wait for a slot, with the reason on the case.
async fn plan_tier(db: &Db, d: &Deliverer, at: DateTime<Utc>) -> Result<Tier> {
    let day_ago = at - ChronoDuration::hours(24);
    let mut recent = HashSet::new();
    let mut oldest: Option<DateTime<Utc>> = None;
    for r in outbox::recent_initiated(db, day_ago).await? {
        recent.insert(r.wa_id);
        oldest = Some(oldest.map_or(r.first, |o| o.min(r.first)));
    }
    let limit = crate::account_health::daily_limit(db, d.daily_unique_recipients).await?;
    let mut remaining = limit - recent.len() as i64;
    // With no recent sends, the slots this pass uses free a day from now.
    let frees_at = oldest.map_or(at + ChronoDuration::hours(24), |o| {
        (o + ChronoDuration::hours(24)).max(at + ChronoDuration::minutes(1))
    });

    // Due rows to recipients who are neither recent nor inside their window.
    let mut by_recipient: HashMap<String, Vec<outbox::DueRecipient>> = HashMap::new();
    for r in outbox::due_outside_window(db, at).await? {
        if !recent.contains(&r.wa_id) {
            by_recipient.entry(r.wa_id.clone()).or_default().push(r);
        }
    }
    if by_recipient.len() as i64 <= remaining.max(0) {
        return Ok(Tier {
            recent,
            remaining,
            frees_at,
        });
    }
    let ranked = rank_by_arrears(db, by_recipient).await?;
    let keep = remaining.max(0) as usize;
    let waiting: Vec<&outbox::DueRecipient> =
        ranked[keep..].iter().flat_map(|(_, rows)| rows).collect();
    postpone_over_tier(db, &waiting, frees_at, at).await?;
    tracing::warn!(
        waiting = ranked.len() - keep,
        tier = limit,
        "daily tier of business-initiated recipients reached; the smallest arrears wait"
    );
    remaining = remaining.max(0);
    Ok(Tier {
        recent,
        remaining,
        frees_at,
    })
}

#[derive(sqlx::FromRow)]
struct Arrears {
    employer_id: i64,
    owed: i64,
    oldest: chrono::NaiveDate,
}

/// Recipients ranked for the tier: by arrears (largest first), then the
/// oldest unpaid due date, then the number.
async fn rank_by_arrears(
    db: &Db,
    by_recipient: HashMap<String, Vec<outbox::DueRecipient>>,
) -> Result<Vec<(String, Vec<outbox::DueRecipient>)>> {
    let employers: Vec<i64> = by_recipient
        .values()
        .flat_map(|v| v.iter().map(|x| x.employer_id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut arrears: HashMap<i64, (i64, chrono::NaiveDate)> = HashMap::new();
    for chunk in employers.chunks(rows_per_statement(db.backend(), 1)) {
        let sql = format!(
            "SELECT employer_id, CAST(SUM(amount_minor - paid_minor) AS BIGINT) AS owed, MIN(due_date) AS oldest \
             FROM bills WHERE settled_at IS NULL AND employer_id IN ({}) GROUP BY employer_id",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = db.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q
            .fetch_all_as::<Arrears>(db)
            .await
            .context("failed to rank arrears")?
        {
            arrears.insert(r.employer_id, (r.owed, r.oldest));
        }
    }
    let far = chrono::NaiveDate::MAX;
    let mut ranked: Vec<(String, Vec<outbox::DueRecipient>)> = by_recipient.into_iter().collect();
    ranked.sort_by(|a, b| {
        let key = |rows: &Vec<outbox::DueRecipient>| {
            let (owed, oldest) = rows
                .iter()
                .filter_map(|r| arrears.get(&r.employer_id))
                .fold((0i64, far), |acc, x| (acc.0.max(x.0), acc.1.min(x.1)));
            (std::cmp::Reverse(owed), oldest)
        };
        key(&a.1).cmp(&key(&b.1)).then_with(|| a.0.cmp(&b.0))
    });
    Ok(ranked)
}

/// The rows over the tier wait until a slot frees, and their cases say why.
async fn postpone_over_tier(
    db: &Db,
    waiting: &[&outbox::DueRecipient],
    frees_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut tx = db.begin().await?;
    for chunk in waiting.chunks(rows_per_statement(tx.backend(), 1)) {
        let ids: Vec<i64> = chunk.iter().map(|w| w.id).collect();
        outbox::postpone_queued(&mut tx, &ids, frees_at, at).await?;
        let cases: Vec<i64> = chunk
            .iter()
            .filter_map(|w| w.case_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !cases.is_empty() {
            mark_quiet(&mut tx, &cases, QuietReason::DailyTier, frees_at, at).await?;
        }
    }
    tx.commit().await?;
    metrics::counter!(m::MESSAGES_DEFERRED, "reason" => "daily_tier")
        .increment(waiting.len() as u64);
    Ok(())
}

/// Records on open cases why the bot is silent and when it acts next.
async fn mark_quiet(
    tx: &mut Tx,
    case_ids: &[i64],
    reason: QuietReason,
    until: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<()> {
    for chunk in case_ids.chunks(rows_per_statement(tx.backend(), 1)) {
        let sql = format!(
            "UPDATE cases SET quiet_reason = $1, next_action_at = $2, updated_at = $3 \
             WHERE resolved_at IS NULL AND id IN ({})",
            list_placeholders(chunk.len(), 4)
        );
        let mut q = tx.query(&sql).bind(reason.as_str()).bind(until).bind(at);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx)
            .await
            .context("failed to record why a case waits")?;
    }
    Ok(())
}
