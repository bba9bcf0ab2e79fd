//! How a validated import is written without one long lock: its rows are
//! staged under an `import_runs` row in short transactions, then applied in
//! short transactions, each of which also records how far the run got.
//!
//! All or nothing, with a crash at any point:
//! - while `staging`, nothing is visible; an interrupted run is discarded;
//! - once `applying` (every row staged, and all of them validated), the run
//!   is committed to: whoever finds it interrupted — a re-run of an import,
//!   `serve` — applies the rest from the staged rows, and the counts of the
//!   batches already applied were recorded with them.
//!
//! No transaction holds SQLite's writer or the audit chain's head for more
//! than one batch, and on SQLite the run pauses between batches so a writer
//! from another process (delivery outcomes, status webhooks) gets its turn.

use super::{Batch, Counts, Kind};
use crate::store::{Backend, Db, Tx};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Rows per staged record, which is also what one apply transaction
/// writes: a few tens of milliseconds. On PostgreSQL the audit chain's
/// head is held while the batch's audit rows are hashed and inserted, so
/// a larger batch there makes every other audited write wait longer (5,000
/// rows let a short write wait 3 s in the test suite's debug build).
pub(super) fn chunk_rows(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 2_000,
        Backend::Postgres => 1_000,
    }
}

/// Rows read, checked and staged per staging transaction.
pub(super) fn stage_rows(backend: Backend) -> usize {
    chunk_rows(backend) * 5
}

/// Rows a dry run writes (and rolls back) per transaction.
pub(super) const DRY_RUN_BATCH: usize = 1000;
/// The pause between two batches on SQLite. Writers waiting for the lock
/// poll every few milliseconds (`Db::begin`), so this is enough for them.
const SQLITE_YIELD: Duration = Duration::from_millis(5);
/// A run whose heartbeat is this old is dead: it beats once per batch.
const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// CONTRACT's payment sources: the JSON API's actors are `api:…`.
pub(super) fn payment_source(actor: &str) -> &'static str {
    if actor.starts_with("api:") {
        "api"
    } else {
        "import"
    }
}

/// A run's row in `import_runs`, as `finish_interrupted` reads it.
#[derive(sqlx::FromRow)]
struct OpenRun {
    id: i64,
    kind: Kind,
    actor: String,
    payment_source: String,
    state: String,
    applied_through: i64,
    owner: String,
    heartbeat_at: DateTime<Utc>,
    beats: i64,
}

/// One staged record: a chunk of rows (`row_count` of them, as a JSON
/// array), or a single row staged before chunks (`row_count` 0).
#[derive(sqlx::FromRow)]
struct StagedChunk {
    seq: i64,
    row: String,
    row_count: i64,
}

#[derive(sqlx::FromRow)]
struct RunCounts {
    inserted: i64,
    updated: i64,
    unchanged: i64,
}

/// One import run that this process owns.
pub(super) struct Run {
    id: i64,
    kind: Kind,
    actor: String,
    payment_source: String,
    owner: String,
    beats: i64,
    applied_through: i64,
    /// Records staged so far (each record's `seq`).
    records: i64,
    /// Rows staged so far.
    staged: i64,
}

impl Run {
    /// Starts a run in `staging`.
    pub(super) async fn start(db: &Db, kind: Kind, actor: &str) -> Result<Run> {
        let payment_source = payment_source(actor);
        let owner = owner_id();
        let now = crate::time::now();
        let mut tx = db.begin().await?;
        let id: i64 = tx
            .query(
                "INSERT INTO import_runs (kind, actor, payment_source, state, owner, heartbeat_at, started_at) \
                 VALUES ($1, $2, $3, 'staging', $4, $5, $5) RETURNING id",
            )
            .bind(kind)
            .bind(actor.to_owned())
            .bind(payment_source)
            .bind(owner.clone())
            .bind(now)
            .fetch_scalar(&mut tx)
            .await
            .context("failed to start an import run")?;
        tx.commit().await?;
        Ok(Run {
            id,
            kind,
            actor: actor.to_owned(),
            payment_source: payment_source.to_owned(),
            owner,
            beats: 0,
            applied_through: 0,
            records: 0,
            staged: 0,
        })
    }

    /// Beats the heartbeat inside `tx`, failing if another process has
    /// taken the run over (it found this one dead) or moved it on.
    async fn beat(&mut self, tx: &mut Tx, state: &str, set: &str) -> Result<()> {
        let now = crate::time::now();
        let sql = format!(
            "UPDATE import_runs SET heartbeat_at = $1, beats = beats + 1{set} \
             WHERE id = $2 AND owner = $3 AND state = $4 AND beats = $5"
        );
        let n = tx
            .query(&sql)
            .bind(now)
            .bind(self.id)
            .bind(self.owner.clone())
            .bind(state.to_owned())
            .bind(self.beats)
            .execute(&mut *tx)
            .await?;
        if n != 1 {
            bail!(
                "import run {} was taken over by another process (it will finish or discard it)",
                self.id
            );
        }
        self.beats += 1;
        Ok(())
    }

    /// Stages one batch of validated rows, as records of `chunk_rows` rows
    /// each (`chunks`: each record's JSON and its row count).
    pub(super) async fn stage(&mut self, db: &Db, chunks: Vec<(String, usize)>) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut tx = db.begin().await?;
        self.beat(&mut tx, "staging", "").await?;
        for (rows, n) in chunks {
            self.records += 1;
            self.staged += n as i64;
            tx.query(
                "INSERT INTO import_staged (run_id, seq, row, row_count) VALUES ($1, $2, $3, $4)",
            )
            .bind(self.id)
            .bind(self.records)
            .bind(rows)
            .bind(n as i64)
            .execute(&mut tx)
            .await
            .context("failed to stage import rows")?;
        }
        tx.commit().await?;
        pause(db).await;
        Ok(())
    }

    /// The commit point: every row is staged, so the run will be applied
    /// in full, by this process or by whoever finds it interrupted.
    pub(super) async fn seal(&mut self, db: &Db) -> Result<()> {
        let mut tx = db.begin().await?;
        let set = format!(", state = 'applying', rows_total = {}", self.staged);
        self.beat(&mut tx, "staging", &set).await?;
        tx.commit().await
    }

    /// Applies the staged records, one per transaction, and returns the
    /// run's counts. Each transaction also records how far the run got and
    /// deletes the record it applied.
    pub(super) async fn apply(
        &mut self,
        db: &Db,
        thanks: Option<&crate::config::Config>,
    ) -> Result<Counts> {
        loop {
            let mut tx = db.begin().await?;
            let chunk: Option<StagedChunk> = tx
                .query(
                    "SELECT seq, row, row_count FROM import_staged WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT 1",
                )
                .bind(self.id)
                .bind(self.applied_through)
                .fetch_optional_as(&mut tx)
                .await?;
            let Some(chunk) = chunk else {
                self.beat(&mut tx, "applying", ", state = 'done'").await?;
                tx.query("UPDATE import_runs SET finished_at = $1 WHERE id = $2")
                    .bind(crate::time::now())
                    .bind(self.id)
                    .execute(&mut tx)
                    .await?;
                tx.commit().await?;
                return counts(db, self.id).await;
            };
            let mut batch = Batch::default();
            let staged = if chunk.row_count == 0 {
                batch.push_staged(self.kind, &chunk.row)
            } else {
                batch.push_staged_chunk(self.kind, &chunk.row)
            };
            staged
                .with_context(|| format!("import run {}: staged record {}", self.id, chunk.seq))?;
            let c = batch
                .write(&mut tx, &self.actor, &self.payment_source, thanks)
                .await?;
            let set = format!(
                ", applied_through = {}, inserted = inserted + {}, updated = updated + {}, unchanged = unchanged + {}",
                chunk.seq, c.inserted, c.updated, c.unchanged,
            );
            self.beat(&mut tx, "applying", &set).await?;
            tx.query("DELETE FROM import_staged WHERE run_id = $1 AND seq = $2")
                .bind(self.id)
                .bind(chunk.seq)
                .execute(&mut tx)
                .await?;
            tx.commit().await?;
            self.applied_through = chunk.seq;
            pause(db).await;
        }
    }

    /// Gives up a run that is still staging: its staged rows are deleted
    /// in batches and nothing it read was ever visible.
    pub(super) async fn discard(&mut self, db: &Db) -> Result<()> {
        let mut tx = db.begin().await?;
        self.beat(&mut tx, "staging", ", state = 'discarding'")
            .await?;
        tx.commit().await?;
        drop_staged(db, self.id).await
    }
}

/// The counts an import run recorded.
async fn counts(db: &Db, id: i64) -> Result<Counts> {
    let r: RunCounts = db
        .query("SELECT inserted, updated, unchanged FROM import_runs WHERE id = $1")
        .bind(id)
        .fetch_one_as(db)
        .await?;
    Ok(Counts {
        inserted: r.inserted as u64,
        updated: r.updated as u64,
        unchanged: r.unchanged as u64,
    })
}

/// Records of a discarded run deleted per transaction.
const DROP_RECORDS: i64 = 5;

/// Deletes a discarded run's staged records, a few per transaction, then
/// marks it `discarded`.
async fn drop_staged(db: &Db, id: i64) -> Result<()> {
    loop {
        let mut tx = db.begin().await?;
        let n = tx
            .query(
                "DELETE FROM import_staged WHERE run_id = $1 AND seq IN \
                 (SELECT seq FROM import_staged WHERE run_id = $1 ORDER BY seq LIMIT $2)",
            )
            .bind(id)
            .bind(DROP_RECORDS)
            .execute(&mut tx)
            .await?;
        if n == 0 {
            tx.query(
                "UPDATE import_runs SET state = 'discarded', finished_at = $1 WHERE id = $2 AND state = 'discarding'",
            )
            .bind(crate::time::now())
            .bind(id)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        if n == 0 {
            return Ok(());
        }
        pause(db).await;
    }
}

async fn pause(db: &Db) {
    if db.backend() == Backend::Sqlite {
        tokio::time::sleep(SQLITE_YIELD).await;
    }
}

/// What an interrupted run became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// It was applying: the rest was applied; the run's total counts.
    Finished { run: i64, counts: Counts },
    /// It was still staging: nothing of it was visible, and now nothing is kept.
    Discarded { run: i64 },
}

/// Finishes or discards every import run whose process has died (a crash,
/// a SIGKILL, a dropped API request). Runs whose owner is alive are left
/// alone. Called before each import and by `serve`, at start and then
/// periodically.
pub async fn finish_interrupted(db: &Db) -> Result<Vec<Recovered>> {
    let open: Vec<OpenRun> = db
        .query(
            "SELECT id, kind, actor, payment_source, state, applied_through, owner, heartbeat_at, beats \
             FROM import_runs WHERE state IN ('staging', 'applying', 'discarding') ORDER BY id",
        )
        .fetch_all_as(db)
        .await?;
    let now = crate::time::now();
    let mut out = Vec::new();
    for r in open {
        let (id, state, kind, beats) = (r.id, r.state, r.kind, r.beats);
        if state != "discarding" && !owner_is_dead(&r.owner, r.heartbeat_at, now) {
            continue;
        }
        let kind_name = kind.as_str();
        let mut run = Run {
            id,
            kind,
            actor: r.actor,
            payment_source: r.payment_source,
            owner: owner_id(),
            beats: beats + 1,
            applied_through: r.applied_through,
            records: 0,
            staged: 0,
        };
        // Whoever beats first owns the run; a run that beat since it was
        // read is alive after all.
        let claimed = db
            .query(
                "UPDATE import_runs SET owner = $1, heartbeat_at = $2, beats = beats + 1 WHERE id = $3 AND beats = $4",
            )
            .bind(run.owner.clone())
            .bind(now)
            .bind(id)
            .bind(beats)
            .execute(db)
            .await?;
        if claimed != 1 {
            continue;
        }
        match state.as_str() {
            "applying" => {
                tracing::warn!(
                    run = id,
                    kind = kind_name,
                    "finishing an interrupted import"
                );
                let counts = run.apply(db, None).await?;
                tracing::warn!(
                    run = id,
                    inserted = counts.inserted,
                    updated = counts.updated,
                    unchanged = counts.unchanged,
                    "finished the interrupted import"
                );
                out.push(Recovered::Finished { run: id, counts });
            }
            "staging" => {
                tracing::warn!(
                    run = id,
                    kind = kind_name,
                    "discarding an interrupted import"
                );
                run.discard(db).await?;
                out.push(Recovered::Discarded { run: id });
            }
            _ => drop_staged(db, id).await?,
        }
    }
    Ok(out)
}

/// `boot:pid:nonce`: which machine boot and process own a run, and which
/// run of that process (one `serve` may run several API imports at once).
fn owner_id() -> String {
    format!(
        "{}:{}:{:016x}",
        boot_id().unwrap_or_default(),
        std::process::id(),
        rand::random::<u64>()
    )
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A run is dead when its heartbeat is stale, or at once when its process
/// ran on this machine since the same boot and is gone.
fn owner_is_dead(owner: &str, heartbeat: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    if now - heartbeat > STALE_AFTER {
        return true;
    }
    let mut parts = owner.split(':');
    let (Some(boot), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    match boot_id() {
        Some(ours) if !boot.is_empty() && ours == boot => {
            pid != std::process::id().to_string()
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}
