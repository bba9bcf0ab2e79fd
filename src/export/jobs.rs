//! Background exports for the UI: start → job id → progress → file.
//!
//! ```ignore
//! let jobs = ExportJobs::new(dir);            // once, in the app state
//! let id = jobs.start(db.clone(), request);    // POST: returns at once
//! let s = jobs.status(id);                     // GET: rows written, state
//! // when s.state == Finished: serve s.path (and s.manifest)
//! ```
//! Jobs live in this process's memory; the files stay in `dir` until
//! [`ExportJobs::remove`] (or the operator) deletes them.

use super::{export_to_file, ExportFormat, ExportRequest, Manifest};
use crate::store::Db;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Finished,
    Failed,
}

/// What the UI shows of a job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobStatus {
    pub id: u64,
    pub state: JobState,
    pub kind: super::ExportKind,
    pub format: ExportFormat,
    /// The branch scope the job was started with (the HTTP layer checks it
    /// against the caller before serving the file).
    pub branch: Option<String>,
    pub actor: String,
    pub rows_written: u64,
    /// The finished file (and, for CSV, `FILE.manifest.json` beside it).
    pub path: Option<PathBuf>,
    pub manifest: Option<Manifest>,
    pub error: Option<String>,
}

struct Job {
    status: JobStatus,
    progress: Arc<AtomicU64>,
}

/// The registry of background exports; cheap to clone into the app state.
#[derive(Clone)]
pub struct ExportJobs {
    dir: PathBuf,
    next: Arc<AtomicU64>,
    jobs: Arc<Mutex<HashMap<u64, Job>>>,
}

impl ExportJobs {
    /// Jobs write their files into `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            next: Arc::new(AtomicU64::new(1)),
            jobs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Starts an export in the background and returns its id at once.
    pub fn start(&self, db: Db, req: ExportRequest) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let progress = Arc::new(AtomicU64::new(0));
        let format = if req.format == ExportFormat::Json {
            ExportFormat::Csv
        } else {
            req.format
        };
        let path = self.dir.join(format!(
            "export-{id}-{}-{}-{}.{}",
            req.kind.as_str(),
            req.from,
            req.to,
            format.as_str()
        ));
        self.jobs.lock().expect("jobs lock").insert(
            id,
            Job {
                status: JobStatus {
                    id,
                    state: JobState::Running,
                    kind: req.kind,
                    format,
                    branch: req.branch.clone(),
                    actor: req.actor.clone(),
                    rows_written: 0,
                    path: None,
                    manifest: None,
                    error: None,
                },
                progress: progress.clone(),
            },
        );
        let this = self.clone();
        let mut req = req;
        req.format = format;
        tokio::spawn(async move {
            let result = async {
                tokio::fs::create_dir_all(&this.dir).await?;
                export_to_file(&db, &req, &path, Some(progress)).await
            }
            .await;
            let mut jobs = this.jobs.lock().expect("jobs lock");
            if let Some(job) = jobs.get_mut(&id) {
                match result {
                    Ok(m) => {
                        job.status.state = JobState::Finished;
                        job.status.rows_written = m.row_count;
                        job.status.path = Some(path);
                        job.status.manifest = Some(m);
                    }
                    Err(e) => {
                        tracing::error!(job = id, error = %format!("{e:#}"), "background export failed");
                        job.status.state = JobState::Failed;
                        job.status.error = Some(format!("{e:#}"));
                    }
                }
            }
        });
        id
    }

    /// The job's state and progress, or None for an unknown id.
    pub fn status(&self, id: u64) -> Option<JobStatus> {
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.get(&id).map(|j| {
            let mut s = j.status.clone();
            if s.state == JobState::Running {
                s.rows_written = j.progress.load(Ordering::Relaxed);
            }
            s
        })
    }

    /// All jobs, newest first.
    pub fn list(&self) -> Vec<JobStatus> {
        let ids: Vec<u64> = self
            .jobs
            .lock()
            .expect("jobs lock")
            .keys()
            .copied()
            .collect();
        let mut v: Vec<JobStatus> = ids.into_iter().filter_map(|id| self.status(id)).collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.id));
        v
    }

    /// Forgets a finished or failed job and deletes its files.
    pub fn remove(&self, id: u64) -> bool {
        let job = {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            match jobs.get(&id) {
                Some(j) if j.status.state != JobState::Running => jobs.remove(&id),
                _ => None,
            }
        };
        if let Some(path) = job.and_then(|j| j.status.path) {
            let _ = std::fs::remove_file(super::sidecar_path(&path));
            let _ = std::fs::remove_file(path);
            return true;
        }
        false
    }
}
