//! Background exports for the UI and the API: start → job id → progress →
//! file. Jobs are rows of `export_jobs`, so they are listed after a restart,
//! and every process serves every job's file.
//!
//! ```ignore
//! let jobs = ExportJobs::new(db.clone(), dir);
//! let id = jobs.start(request).await?;        // POST: returns at once
//! let s = jobs.status(id).await?;             // GET: rows written, state
//! // when s.state == Finished: serve s.file_path (and s.manifest)
//! ```
//!
//! A job runs on a blocking thread (`spawn_blocking` driving the export
//! future), so encoding a million rows never occupies the async workers that
//! answer requests. The rows are streamed from one read query and no
//! transaction is held open; progress is written every [`TICK`] in a
//! one-statement update that also serves as the job's heartbeat. A running
//! job whose heartbeat is older than [`STALE_AFTER`] belonged to a process
//! that died: it is marked failed when jobs are read, and may be started
//! again ([`ExportJobs::restart`]).

use super::{export_to_file, ExportFormat, ExportKind, ExportRequest, Filters, Manifest};
use crate::store::{Db, TextColumn};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a running job writes its progress (and heartbeat).
pub const TICK: Duration = Duration::from_secs(1);
/// A running job whose heartbeat is older than this is dead.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Finished,
    Failed,
}

impl JobState {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
        }
    }
}

impl TextColumn for JobState {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(JobState::Running),
            "finished" => Ok(JobState::Finished),
            "failed" => Ok(JobState::Failed),
            other => Err(format!("unknown export job state `{other}`")),
        }
    }
}

crate::store_column!(text: JobState);

/// One job as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct JobRow {
    id: i64,
    kind: ExportKind,
    format: ExportFormat,
    from_date: NaiveDate,
    to_date: NaiveDate,
    branch: Option<String>,
    actor: String,
    state: JobState,
    rows_written: i64,
    rows_expected: Option<i64>,
    file_path: Option<String>,
    manifest: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str =
    "id, kind, format, from_date, to_date, branch, actor, state, rows_written, rows_expected, \
     file_path, manifest, error, created_at, finished_at";

/// What the UI and the API show of a job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobStatus {
    pub id: i64,
    pub state: JobState,
    pub kind: ExportKind,
    pub format: ExportFormat,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The branch scope the job was started with (the HTTP layer checks it
    /// against the caller before serving the file).
    pub branch: Option<String>,
    /// Who started it: `officer:<username>` or `api:token:<name>`.
    pub actor: String,
    pub rows_written: u64,
    /// About how many rows the export will hold (counted at the start).
    pub rows_expected: Option<u64>,
    /// The finished file (and, for CSV, `FILE.manifest.json` beside it).
    #[serde(skip)]
    pub path: Option<PathBuf>,
    pub manifest: Option<Manifest>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobStatus {
    /// Percent done, for the progress bar (None while nothing is known).
    pub fn percent(&self) -> Option<u64> {
        match (self.state, self.rows_expected) {
            (JobState::Finished, _) => Some(100),
            (_, Some(0)) => None,
            (_, Some(n)) => Some((self.rows_written * 100 / n).min(99)),
            _ => None,
        }
    }

    /// The download name of the file: `wa-smile-audit-2026-03-01-2026-03-31.xlsx`.
    pub fn file_name(&self) -> String {
        format!(
            "wa-smile-{}-{}-{}{}.{}",
            self.kind.as_str(),
            self.from,
            self.to,
            self.branch
                .as_deref()
                .map(|b| format!(
                    "-{}",
                    b.to_lowercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
                ))
                .unwrap_or_default(),
            self.format.as_str()
        )
    }
}

impl TryFrom<JobRow> for JobStatus {
    type Error = anyhow::Error;
    fn try_from(r: JobRow) -> Result<Self> {
        let manifest = match &r.manifest {
            Some(m) => Some(
                serde_json::from_str(m)
                    .with_context(|| format!("export job {} has an unreadable manifest", r.id))?,
            ),
            None => None,
        };
        Ok(JobStatus {
            id: r.id,
            state: r.state,
            kind: r.kind,
            format: r.format,
            from: r.from_date,
            to: r.to_date,
            branch: r.branch,
            actor: r.actor,
            rows_written: r.rows_written.max(0) as u64,
            rows_expected: r.rows_expected.map(|n| n.max(0) as u64),
            path: r.file_path.map(PathBuf::from),
            manifest,
            error: r.error,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
    }
}

/// The registry of background exports; cheap to clone into the app state.
#[derive(Clone)]
pub struct ExportJobs {
    db: Db,
    dir: PathBuf,
}

impl ExportJobs {
    /// Jobs write their files into `dir` (created if missing).
    pub fn new(db: Db, dir: impl Into<PathBuf>) -> Self {
        Self {
            db,
            dir: dir.into(),
        }
    }

    /// Records the job and starts it in the background; returns its id at
    /// once. JSON is for the streamed API only: a job writes CSV instead.
    pub async fn start(&self, req: ExportRequest) -> Result<i64> {
        req.validate().map_err(anyhow::Error::msg)?;
        let mut req = req;
        if req.format == ExportFormat::Json {
            req.format = ExportFormat::Csv;
        }
        let now = crate::time::now();
        let id: i64 = self
            .db
            .query(
                "INSERT INTO export_jobs (kind, format, from_date, to_date, branch, actor, state, created_at, heartbeat_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $7) RETURNING id",
            )
            .bind(req.kind)
            .bind(req.format)
            .bind(req.from)
            .bind(req.to)
            .bind(req.branch.clone())
            .bind(req.actor.clone())
            .bind(now)
            .fetch_scalar(&self.db)
            .await
            .context("failed to record the export job")?;
        self.spawn(id, req);
        Ok(id)
    }

    /// Starts a failed job again with its own filters and actor (a new run:
    /// the rows are fixed anew at the time it starts).
    pub async fn restart(&self, id: i64) -> Result<()> {
        self.reap().await?;
        let Some(job) = self.status(id).await? else {
            bail!("no export job {id}");
        };
        if job.state != JobState::Failed {
            bail!("export job {id} is {}, not failed", job.state.as_str());
        }
        let changed = self
            .db
            .query(
                "UPDATE export_jobs SET state = 'running', rows_written = 0, rows_expected = NULL, error = NULL, \
                 finished_at = NULL, heartbeat_at = $2 WHERE id = $1 AND state = 'failed'",
            )
            .bind(id)
            .bind(crate::time::now())
            .execute(&self.db)
            .await?;
        if changed == 0 {
            bail!("export job {id} was started again by someone else");
        }
        let req = ExportRequest::new(job.kind, job.format, job.from, job.to, job.actor)
            .branch(job.branch);
        self.spawn(id, req);
        Ok(())
    }

    fn spawn(&self, id: i64, req: ExportRequest) {
        let this = self.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || handle.block_on(this.run(id, req)));
    }

    async fn run(self, id: i64, req: ExportRequest) {
        let path = self.dir.join(format!(
            "export-{id}-{}-{}-{}.{}",
            req.kind.as_str(),
            req.from,
            req.to,
            req.format.as_str()
        ));
        let progress = Arc::new(AtomicU64::new(0));
        let done = Arc::new(tokio::sync::Notify::new());
        let ticker = {
            let (db, progress, done) = (self.db.clone(), progress.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = done.notified() => break,
                        _ = tokio::time::sleep(TICK) => {}
                    }
                    let _ = db
                        .query("UPDATE export_jobs SET rows_written = $2, heartbeat_at = $3 WHERE id = $1 AND state = 'running'")
                        .bind(id)
                        .bind(progress.load(Ordering::Relaxed) as i64)
                        .bind(crate::time::now())
                        .execute(&db)
                        .await;
                }
            })
        };
        let result = async {
            tokio::fs::create_dir_all(&self.dir)
                .await
                .with_context(|| format!("cannot create {}", self.dir.display()))?;
            let expected = estimate(&self.db, &req).await?;
            self.db
                .query("UPDATE export_jobs SET rows_expected = $2 WHERE id = $1")
                .bind(id)
                .bind(expected as i64)
                .execute(&self.db)
                .await?;
            export_to_file(&self.db, &req, &path, Some(progress.clone())).await
        }
        .await;
        done.notify_one();
        let _ = ticker.await;
        let now = crate::time::now();
        let outcome = match result {
            Ok(m) => {
                self.db
                    .query(
                        "UPDATE export_jobs SET state = 'finished', rows_written = $2, file_path = $3, manifest = $4, \
                         finished_at = $5, heartbeat_at = $5 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(m.row_count as i64)
                    .bind(path.to_string_lossy().into_owned())
                    .bind(serde_json::to_string(&m).expect("manifests serialise"))
                    .bind(now)
                    .execute(&self.db)
                    .await
            }
            Err(e) => {
                tracing::error!(job = id, error = %format!("{e:#}"), "background export failed");
                self.db
                    .query(
                        "UPDATE export_jobs SET state = 'failed', error = $2, finished_at = $3, heartbeat_at = $3 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(format!("{e:#}"))
                    .bind(now)
                    .execute(&self.db)
                    .await
            }
        };
        if let Err(e) = outcome {
            tracing::error!(job = id, error = %e, "could not record the export job's outcome");
        }
    }

    /// Marks the running jobs of dead processes failed (their heartbeat
    /// stopped), so they show as such and can be started again.
    pub async fn reap(&self) -> Result<u64> {
        let now = crate::time::now();
        Ok(self
            .db
            .query(
                "UPDATE export_jobs SET state = 'failed', finished_at = $1, \
                 error = 'the server stopped while the export was running' \
                 WHERE state = 'running' AND heartbeat_at < $2",
            )
            .bind(now)
            .bind(now - STALE_AFTER)
            .execute(&self.db)
            .await?)
    }

    /// The job's state and progress, or None for an unknown id.
    pub async fn status(&self, id: i64) -> Result<Option<JobStatus>> {
        self.reap().await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = $1");
        self.db
            .query(&sql)
            .bind(id)
            .fetch_optional_as::<JobRow>(&self.db)
            .await?
            .map(JobStatus::try_from)
            .transpose()
    }

    /// The newest `limit` jobs, of one branch when `scope` is Some (a
    /// branch-scoped supervisor sees only its branch's exports).
    pub async fn list(&self, scope: Option<&str>, limit: i64) -> Result<Vec<JobStatus>> {
        self.reap().await?;
        let rows: Vec<JobRow> = match scope {
            Some(b) => {
                let sql = format!(
                    "SELECT {JOB_COLUMNS} FROM export_jobs WHERE branch = $1 ORDER BY id DESC LIMIT $2"
                );
                self.db
                    .query(&sql)
                    .bind(b.to_owned())
                    .bind(limit)
                    .fetch_all_as(&self.db)
                    .await?
            }
            None => {
                let sql =
                    format!("SELECT {JOB_COLUMNS} FROM export_jobs ORDER BY id DESC LIMIT $1");
                self.db
                    .query(&sql)
                    .bind(limit)
                    .fetch_all_as(&self.db)
                    .await?
            }
        };
        rows.into_iter().map(JobStatus::try_from).collect()
    }
}

impl ExportJobs {
    /// Forgets a finished or failed job and deletes its files. False for
    /// an unknown or running job.
    pub async fn remove(&self, id: i64) -> Result<bool> {
        let Some(job) = self.status(id).await? else {
            return Ok(false);
        };
        if job.state == JobState::Running {
            return Ok(false);
        }
        let gone = self
            .db
            .query("DELETE FROM export_jobs WHERE id = $1 AND state <> 'running'")
            .bind(id)
            .execute(&self.db)
            .await?;
        if let Some(path) = job.path {
            let _ = std::fs::remove_file(super::sidecar_path(&path));
            let _ = std::fs::remove_file(path);
        }
        Ok(gone > 0)
    }
}

/// About how many rows `req` will export, counted before it starts.
async fn estimate(db: &Db, req: &ExportRequest) -> Result<u64> {
    let filters = Filters::resolve(db, req, crate::time::now()).await?;
    super::rows::count(db, &filters).await
}
