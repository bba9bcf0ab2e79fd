//! Supervisors' and auditors' exports: the audit trail, the case log and the
//! case summary, as CSV (UTF-8 with a BOM, RFC 4180) or XLSX (typed
//! columns), each with a manifest that lets an auditor prove offline that no
//! row was added, removed or changed.
//!
//! # Shape
//! * Rows are produced from the database by streaming (`Query::fetch`), one
//!   row at a time, into a [`Consumer`]: the CSV encoder (flushed to the
//!   output every 64 KiB), the XLSX workbook (constant-memory worksheet,
//!   spilled to a temporary file), or the verifier. Memory stays bounded
//!   whatever the number of rows.
//! * Every cell is a typed [`Cell`] with one *canonical text*: text cells
//!   neutralised against formula injection (a leading `= + - @`, tab or CR
//!   gets a `'` in front), integers in decimal, money with exactly two
//!   decimals (`1250000.00`), dates `YYYY-MM-DD`, WIB date-times
//!   `YYYY-MM-DD HH:MM:SS`. The CSV holds the canonical texts; the XLSX holds
//!   the typed values, which read back to the same canonical texts.
//! * The manifest's `data_sha256` is SHA-256 over the canonical rows, header
//!   first, each row written as a JSON array of strings and a `\n`; it is the
//!   same for the CSV and the XLSX of one export. For CSV the manifest also
//!   holds `file_sha256`, so `sha256sum FILE` checks the file with no tool of
//!   ours. The manifest also fixes the filters (dates, branch, `as_of`, the
//!   last audit sequence number and case event id included), so
//!   `wa-smile audit verify --export FILE` can re-derive the very same rows
//!   from the database and compare.
//! * Time ranges: `from` and `to` are calendar days in WIB (Asia/Jakarta),
//!   both included: `[from 00:00 WIB, to + 1 day 00:00 WIB)`.
//!
//! # Branch scoping
//! Case log and summary: the cases of the branch's employers. Audit trail:
//! rows whose entity belongs to one of the branch's employers —
//! `employer:<NPP>`, `case:<id>`, `bill:<NPP>:<period>` (and the ledger's
//! `bill:<employer id>:<period>`), `payment:<reference>`. Entities that belong
//! to no branch (`user:…`, `export:…`, `retention`) appear only in an
//! unscoped export.

mod format;
mod jobs;
mod rows;
mod verify;

pub use format::{read_export, ReadExport};
pub use jobs::{ExportJobs, JobState, JobStatus};
pub use verify::{verify_export, ExportVerification};

use crate::audit::AuditEntry;
use crate::domain::{Money, Policy};
use crate::store::Db;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    /// The hash-chained audit trail.
    Audit,
    /// The case log: one row per case event.
    Cases,
    /// One row per case: amounts, stage, status, promises and messages.
    Summary,
}

impl ExportKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ExportKind::Audit => "audit",
            ExportKind::Cases => "cases",
            ExportKind::Summary => "summary",
        }
    }

    /// The worksheet holding the data in the XLSX.
    pub fn sheet_name(&self) -> &'static str {
        match self {
            ExportKind::Audit => "Audit",
            ExportKind::Cases => "Case log",
            ExportKind::Summary => "Summary",
        }
    }

    pub fn columns(&self) -> &'static [Column] {
        match self {
            ExportKind::Audit => rows::AUDIT_COLUMNS,
            ExportKind::Cases => rows::CASE_COLUMNS,
            ExportKind::Summary => rows::SUMMARY_COLUMNS,
        }
    }
}

impl crate::store::TextColumn for ExportKind {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        match s {
            "audit" => Ok(ExportKind::Audit),
            "cases" => Ok(ExportKind::Cases),
            "summary" => Ok(ExportKind::Summary),
            other => Err(format!("unknown export kind `{other}`")),
        }
    }
}

impl crate::store::TextColumn for ExportFormat {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "xlsx" => Ok(ExportFormat::Xlsx),
            "json" => Ok(ExportFormat::Json),
            other => Err(format!("unknown export format `{other}`")),
        }
    }
}

crate::store_column!(text: ExportKind, ExportFormat);

/// How it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Xlsx,
    /// A JSON array of objects keyed by column name (API only).
    Json,
}

impl ExportFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Json => "json",
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ExportFormat::Json => "application/json",
        }
    }
}

/// One export as the CLI, the API or a background job asks for it. The auth
/// layer sets `branch` to the caller's branch scope and `actor` to who asks
/// (e.g. `user:siti`, `token:audit-bot`); the export is itself audited under
/// that actor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportRequest {
    pub kind: ExportKind,
    pub format: ExportFormat,
    /// First WIB calendar day included.
    pub from: NaiveDate,
    /// Last WIB calendar day included.
    pub to: NaiveDate,
    pub branch: Option<String>,
    pub actor: String,
    /// The late-fee policy for the summary; the built-in one when None.
    #[serde(skip)]
    pub policy: Option<Policy>,
}

impl ExportRequest {
    pub fn new(
        kind: ExportKind,
        format: ExportFormat,
        from: NaiveDate,
        to: NaiveDate,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            format,
            from,
            to,
            branch: None,
            actor: actor.into(),
            policy: None,
        }
    }

    pub fn branch(mut self, branch: Option<String>) -> Self {
        self.branch = branch.filter(|b| !b.trim().is_empty());
        self
    }

    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Checks the request before any work: `from` not after `to`.
    pub fn validate(&self) -> Result<(), String> {
        if self.from > self.to {
            return Err(format!("--from {} is after --to {}", self.from, self.to));
        }
        Ok(())
    }
}

/// The query string of the export routes (`?from=&to=&format=&branch=`),
/// for `axum::extract::Query`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExportQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Default JSON.
    #[serde(default)]
    pub format: Option<ExportFormat>,
    #[serde(default)]
    pub branch: Option<String>,
}

impl ExportQuery {
    /// The request for `kind`, by `actor`. A branch-scoped caller (`scope`
    /// Some) always gets its own branch, whatever the query asks; a national
    /// one gets the branch it asks for, or all.
    pub fn into_request(
        self,
        kind: ExportKind,
        actor: impl Into<String>,
        scope: Option<String>,
    ) -> ExportRequest {
        let branch = scope.or(self.branch);
        ExportRequest::new(
            kind,
            self.format.unwrap_or(ExportFormat::Json),
            self.from,
            self.to,
            actor,
        )
        .branch(branch)
    }
}

/// The filters fixed at export time, so the same rows can be re-derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    pub kind: ExportKind,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub branch: Option<String>,
    /// The instant amounts (arrears, late fees) are evaluated at.
    pub as_of: DateTime<Utc>,
    /// The last audit row included (the chain head at export time).
    pub max_audit_seq: i64,
    /// The last case event included.
    pub max_event_id: i64,
}

impl Filters {
    /// Fixes a request's filters against the database as it is now.
    pub async fn resolve(db: &Db, req: &ExportRequest, as_of: DateTime<Utc>) -> Result<Self> {
        let (seq, _) = crate::audit::head(db).await?;
        let max_event_id: Option<i64> = db
            .query("SELECT MAX(id) AS m FROM case_events")
            .fetch_scalar(db)
            .await?;
        Ok(Filters {
            kind: req.kind,
            from: req.from,
            to: req.to,
            branch: req.branch.clone(),
            as_of: crate::time::truncate(as_of),
            max_audit_seq: seq,
            max_event_id: max_event_id.unwrap_or(0),
        })
    }

    /// `[from 00:00 WIB, to + 1 00:00 WIB)` in UTC.
    pub fn range_utc(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = wib_midnight(self.from);
        let end = wib_midnight(self.to.succ_opt().unwrap_or(self.to));
        (start, end)
    }
}

fn wib_midnight(d: NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    chrono_tz::Asia::Jakarta
        .from_local_datetime(&d.and_time(NaiveTime::MIN))
        .single()
        .expect("WIB has no DST")
        .with_timezone(&Utc)
}

/// The WIB wall-clock time of an instant, to the second.
pub fn wib(at: DateTime<Utc>) -> NaiveDateTime {
    let local = at.with_timezone(&chrono_tz::Asia::Jakarta).naive_local();
    local
        .date()
        .and_hms_opt(
            chrono::Timelike::hour(&local),
            chrono::Timelike::minute(&local),
            chrono::Timelike::second(&local),
        )
        .expect("valid time")
}

/// A column's type, which decides its XLSX cell type and canonical text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColType {
    Text,
    Int,
    /// Rupiah, two decimals; `"Rp"#,##0` in XLSX.
    Money,
    Date,
    /// A WIB wall-clock date-time, to the second.
    DateTime,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
}

/// One cell of an export row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Money(Money),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn opt_text(s: Option<String>) -> Cell {
        s.map(Cell::Text).unwrap_or(Cell::Empty)
    }

    /// The cell's canonical text (what the CSV holds and the hash covers).
    pub fn canonical(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => neutralise(s),
            Cell::Int(i) => i.to_string(),
            Cell::Money(m) => money_text(*m),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
            Cell::DateTime(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }
}

/// Money as exactly two decimals, e.g. `1250000.00`.
pub fn money_text(m: Money) -> String {
    let mut d = m.decimal();
    d.rescale(2);
    d.to_string()
}

/// Neutralises a text cell against formula injection: a cell a spreadsheet
/// would evaluate (leading `=`, `+`, `-`, `@`, tab or carriage return) gets a
/// leading apostrophe, so it is shown as text.
pub fn neutralise(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// One canonical row line: a JSON array of strings and a newline.
pub(crate) fn canonical_line(cells: &[String]) -> Vec<u8> {
    let mut v = serde_json::to_vec(cells).expect("strings serialise");
    v.push(b'\n');
    v
}

pub(crate) fn header_line(kind: ExportKind) -> Vec<String> {
    kind.columns().iter().map(|c| c.name.to_owned()).collect()
}

/// The verifiable description of one export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub kind: ExportKind,
    pub format: ExportFormat,
    pub filters: Filters,
    pub columns: Vec<String>,
    /// Data rows (the header not counted).
    pub row_count: u64,
    /// The audit chain head when the export was taken.
    pub audit_head_seq: i64,
    pub audit_head_hash: String,
    /// SHA-256 over the canonical rows, header included (see the module doc).
    pub data_sha256: String,
    /// SHA-256 of the CSV file's bytes (CSV only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
    pub generated_at: DateTime<Utc>,
    pub generated_by: String,
}

/// Receives the rows of an export, one at a time.
pub(crate) trait Consumer: Send {
    fn push(&mut self, cells: &[Cell]) -> Result<()>;
    /// Bytes ready for the output, when `force` or when enough piled up.
    fn take_output(&mut self, _force: bool) -> Option<Vec<u8>> {
        None
    }
}

/// Hashes canonical rows while passing them on.
pub(crate) struct Hashing<C> {
    pub inner: C,
    hasher: Sha256,
    pub rows: u64,
    progress: Option<Arc<AtomicU64>>,
}

impl<C: Consumer> Hashing<C> {
    pub fn new(inner: C, kind: ExportKind, progress: Option<Arc<AtomicU64>>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(canonical_line(&header_line(kind)));
        Self {
            inner,
            hasher,
            rows: 0,
            progress,
        }
    }

    pub fn digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl<C: Consumer> Consumer for Hashing<C> {
    fn push(&mut self, cells: &[Cell]) -> Result<()> {
        let canon: Vec<String> = cells.iter().map(Cell::canonical).collect();
        self.hasher.update(canonical_line(&canon));
        self.rows += 1;
        if let Some(p) = &self.progress {
            p.store(self.rows, Ordering::Relaxed);
        }
        self.inner.push(cells)
    }

    fn take_output(&mut self, force: bool) -> Option<Vec<u8>> {
        self.inner.take_output(force)
    }
}

/// Streams the rows of `filters` from the database into `consumer`, writing
/// whatever it produces to `out` as it goes.
pub(crate) async fn produce<C: Consumer, W: AsyncWrite + Unpin + Send>(
    db: &Db,
    filters: &Filters,
    policy: &Policy,
    consumer: &mut C,
    out: &mut W,
) -> Result<()> {
    rows::produce(db, filters, policy, consumer, out).await?;
    if let Some(bytes) = consumer.take_output(true) {
        out.write_all(&bytes).await?;
    }
    out.flush().await?;
    Ok(())
}

pub(crate) fn default_policy() -> Policy {
    crate::config::Config::from_sources(None, Vec::<(String, String)>::new())
        .expect("built-in defaults load")
        .policy()
}

/// Writes an export to `out`, streaming, and audits it. Returns the manifest
/// (for CSV it lacks `file_sha256`, which only a file writer can know: the
/// caller's bytes are the file). XLSX is assembled in temporary files and
/// copied to `out` at the end (the format is a zip).
pub async fn write_export<W: AsyncWrite + Unpin + Send>(
    db: &Db,
    req: &ExportRequest,
    out: &mut W,
    progress: Option<Arc<AtomicU64>>,
) -> Result<Manifest> {
    req.validate().map_err(anyhow::Error::msg)?;
    let now = crate::time::now();
    let filters = Filters::resolve(db, req, now).await?;
    let policy = req.policy.clone().unwrap_or_else(default_policy);
    let head = crate::audit::head(db).await?;
    let m = match req.format {
        ExportFormat::Csv => {
            let mut c = Hashing::new(format::CsvOut::new(req.kind)?, req.kind, progress);
            produce(db, &filters, &policy, &mut c, out).await?;
            manifest(req, filters, &head, c.rows, c.digest(), now)
        }
        ExportFormat::Json => {
            let mut c = Hashing::new(format::JsonOut::new(req.kind), req.kind, progress);
            produce(db, &filters, &policy, &mut c, out).await?;
            manifest(req, filters, &head, c.rows, c.digest(), now)
        }
        ExportFormat::Xlsx => {
            let mut c = Hashing::new(format::XlsxOut::new(req.kind)?, req.kind, progress);
            produce(db, &filters, &policy, &mut c, &mut tokio::io::sink()).await?;
            let m = manifest(req, filters, &head, c.rows, c.digest(), now);
            let xlsx = c.inner;
            let embedded = m.clone();
            let file = tokio::task::spawn_blocking(move || xlsx.finish(&embedded))
                .await
                .context("the XLSX writer panicked")??;
            tokio::io::copy(&mut tokio::fs::File::from_std(file), out).await?;
            out.flush().await?;
            m
        }
    };
    audit_export(db, &m).await?;
    Ok(m)
}

fn manifest(
    req: &ExportRequest,
    filters: Filters,
    head: &(i64, String),
    rows: u64,
    digest: String,
    now: DateTime<Utc>,
) -> Manifest {
    Manifest {
        manifest_version: 1,
        kind: req.kind,
        format: req.format,
        filters,
        columns: header_line(req.kind),
        row_count: rows,
        audit_head_seq: head.0,
        audit_head_hash: head.1.clone(),
        data_sha256: digest,
        file_sha256: None,
        generated_at: now,
        generated_by: req.actor.clone(),
    }
}

/// Records the export in the audit chain: who exported what, with the
/// figures an auditor needs to match the file to the entry.
async fn audit_export(db: &Db, m: &Manifest) -> Result<()> {
    let mut tx = db.begin().await?;
    tx.audit(
        AuditEntry::new(
            m.generated_at,
            m.generated_by.clone(),
            format!("export.{}", m.kind.as_str()),
            format!("export:{}", m.kind.as_str()),
        )
        .after(serde_json::json!({
            "format": m.format,
            "filters": m.filters,
            "row_count": m.row_count,
            "data_sha256": m.data_sha256,
            "audit_head_seq": m.audit_head_seq,
            "audit_head_hash": m.audit_head_hash,
        })),
    );
    tx.commit().await
}

/// The sidecar manifest path of a CSV export: `FILE.manifest.json`.
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// Writes an export to a file (and, for CSV, its `FILE.manifest.json`
/// sidecar with `file_sha256`); the XLSX carries its manifest in a
/// `Manifest` sheet. The file is written to a temporary name beside the
/// target and renamed when complete.
pub async fn export_to_file(
    db: &Db,
    req: &ExportRequest,
    path: &Path,
    progress: Option<Arc<AtomicU64>>,
) -> Result<Manifest> {
    if req.format == ExportFormat::Json {
        bail!("JSON exports are for the API; write csv or xlsx to a file");
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let file = tokio::fs::File::from_std(tmp.reopen()?);
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut m = write_export(db, req, &mut out, progress).await?;
    out.shutdown().await?;
    drop(out);
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if req.format == ExportFormat::Csv {
        m.file_sha256 = Some(file_sha256(path)?);
        let side = sidecar_path(path);
        std::fs::write(&side, serde_json::to_vec_pretty(&m)?)
            .with_context(|| format!("cannot write {}", side.display()))?;
    }
    Ok(m)
}

/// SHA-256 of a file's bytes, streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// An export as a byte stream for an HTTP body
/// (`axum::body::Body::from_stream(export::byte_stream(db, req))`): the rows
/// are produced by a background task as the client reads.
pub fn byte_stream(
    db: Db,
    req: ExportRequest,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    let (mut w, r) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Err(e) = write_export(&db, &req, &mut w, None).await {
            tracing::error!(error = %format!("{e:#}"), kind = req.kind.as_str(), "export failed while streaming");
        }
        let _ = w.shutdown().await;
    });
    futures::stream::unfold(r, |mut r| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    })
}

/// Axum-ready: the whole response for `GET /api/v1/audit?from=&to=&format=`
/// (and the case exports), streamed. The auth layer has already set
/// `req.branch` to the caller's scope and `req.actor`.
pub async fn respond(db: Db, req: ExportRequest) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    if let Err(e) = req.validate() {
        return (StatusCode::UNPROCESSABLE_ENTITY, e).into_response();
    }
    let filename = format!(
        "wa-smile-{}-{}-{}.{}",
        req.kind.as_str(),
        req.from,
        req.to,
        req.format.as_str()
    );
    let ct = req.format.content_type();
    let body = axum::body::Body::from_stream(byte_stream(db, req));
    (
        [
            (header::CONTENT_TYPE, ct.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The rows of an export as JSON objects keyed by column name, collected:
/// for the API's `format=json` on modest ranges (large ranges: `respond`,
/// which streams the same JSON). Not audited as an export.
pub async fn json_rows(db: &Db, req: &ExportRequest) -> Result<Vec<serde_json::Value>> {
    req.validate().map_err(anyhow::Error::msg)?;
    let filters = Filters::resolve(db, req, crate::time::now()).await?;
    let policy = req.policy.clone().unwrap_or_else(default_policy);
    let mut c = format::Collect::new(req.kind);
    produce(db, &filters, &policy, &mut c, &mut tokio::io::sink()).await?;
    Ok(c.rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_neutralised() {
        for s in ["=1+1", "+62812", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(s), format!("'{s}"));
        }
        for s in ["PT Maju", "0812", "", "'quoted", "Rp 1.000"] {
            assert_eq!(neutralise(s), s);
        }
    }

    #[test]
    fn canonical_texts() {
        assert_eq!(
            Cell::Money(Money::from_minor(125_000_050)).canonical(),
            "1250000.50"
        );
        assert_eq!(Cell::Money(Money::from_rupiah(7)).canonical(), "7.00");
        let t: DateTime<Utc> = "2026-03-02T17:30:05.9Z".parse().unwrap();
        // 17:30 UTC is 00:30 WIB the next day; seconds truncated.
        assert_eq!(Cell::DateTime(wib(t)).canonical(), "2026-03-03 00:30:05");
        let f = Filters {
            kind: ExportKind::Audit,
            from: "2026-03-01".parse().unwrap(),
            to: "2026-03-31".parse().unwrap(),
            branch: None,
            as_of: t,
            max_audit_seq: 0,
            max_event_id: 0,
        };
        let (a, b) = f.range_utc();
        assert_eq!(a.to_rfc3339(), "2026-02-28T17:00:00+00:00");
        assert_eq!(b.to_rfc3339(), "2026-03-31T17:00:00+00:00");
    }
}
