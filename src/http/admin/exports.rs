//! `/exports`: supervisors and admins start an export (audit trail, case
//! log, case summary; CSV or XLSX; a branch, or for an admin all), watch it
//! run and download the file and its manifest. The jobs are
//! [`crate::export::ExportJobs`], stored in the database; the API's
//! `/api/v1/exports` uses the same checks ([`export_request`]).

use super::{render, ser, PageError, User};
use crate::accounts::Principal;
use crate::export::{ExportFormat, ExportJobs, ExportKind, ExportRequest, JobState, JobStatus};
use crate::http::error::AppError;
use crate::http::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use minijinja::context;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/exports", get(page).post(start))
        .route("/exports/{id}/row", get(row))
        .route("/exports/{id}/restart", post(restart))
        .route("/exports/{id}/file", get(file))
        .route("/exports/{id}/manifest", get(manifest))
}

/// The jobs of this server (files under `exports.dir`).
pub fn jobs(state: &AppState) -> ExportJobs {
    ExportJobs::new(state.db.clone(), state.config.exports.dir.clone())
}

/// The audit actor of a caller: `officer:<username>` for a login,
/// `api:token:<name>` for an API token.
pub fn actor_of(who: &Principal) -> String {
    if who.name.starts_with("token:") {
        format!("api:{}", who.name)
    } else {
        format!("officer:{}", who.name)
    }
}

/// The export a caller may run: supervisors and admins only; a
/// branch-scoped caller gets its own branch (naming another is 403); a
/// national caller gets the branch it names, which must exist (422 naming
/// the known ones), or all.
pub async fn export_request(
    state: &AppState,
    who: &Principal,
    kind: ExportKind,
    format: ExportFormat,
    from: NaiveDate,
    to: NaiveDate,
    branch: Option<String>,
) -> Result<ExportRequest, AppError> {
    if !who.is_supervisor() {
        return Err(AppError::Forbidden);
    }
    let asked = branch
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty());
    let branch = match (who.branch_scope(), asked) {
        (Some(own), Some(b)) if b != own => return Err(AppError::Forbidden),
        (Some(own), _) => Some(own.to_owned()),
        (None, Some(b)) => match crate::branches::check(&state.db, &b).await? {
            Ok(b) => Some(b),
            Err(unknown) => {
                return Err(AppError::Unprocessable {
                    message: unknown.to_string(),
                    details: serde_json::json!({"branch": unknown.given, "known_branches": unknown.known}),
                })
            }
        },
        (None, None) => None,
    };
    let req = ExportRequest::new(kind, format, from, to, actor_of(who))
        .branch(branch)
        .policy(state.config.policy());
    req.validate().map_err(|message| AppError::Unprocessable {
        message,
        details: serde_json::json!({}),
    })?;
    Ok(req)
}

/// May `who` see this job? A branch-scoped caller sees only its branch's.
pub fn may_see(who: &Principal, job: &JobStatus) -> bool {
    match who.branch_scope() {
        None => true,
        Some(own) => job.branch.as_deref() == Some(own),
    }
}

/// The finished job's file as a download, streamed from disk.
pub async fn file_response(job: &JobStatus) -> Result<Response, AppError> {
    let Some(path) = job
        .path
        .as_ref()
        .filter(|_| job.state == JobState::Finished)
    else {
        return Ok((
            StatusCode::CONFLICT,
            axum::Json(serde_json::json!({"error": "not_finished", "message": "the export has not finished", "state": job.state})),
        )
            .into_response());
    };
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot open export {}: {e}", job.id)))?;
    let stream = futures::stream::unfold(f, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, job.format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", job.file_name()),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// `Selasa, 3 Maret 2026 10.00 WIB`.
pub fn waktu(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let local = at.with_timezone(&tz);
    format!(
        "{} {}",
        crate::messages::filters::format_tanggal(local.date_naive()),
        local.format("%H.%M %Z")
    )
}

fn kind_label(k: ExportKind) -> &'static str {
    match k {
        ExportKind::Audit => "Jejak audit",
        ExportKind::Cases => "Log kasus",
        ExportKind::Summary => "Ringkasan kasus",
    }
}

fn state_label(s: JobState) -> &'static str {
    match s {
        JobState::Running => "Berjalan",
        JobState::Finished => "Selesai",
        JobState::Failed => "Gagal",
    }
}

/// A job as the page shows it: labels and dates already in Indonesian.
#[derive(serde::Serialize)]
struct JobView {
    id: i64,
    state: &'static str,
    state_label: &'static str,
    kind: &'static str,
    format: &'static str,
    period: String,
    branch: String,
    actor: String,
    started: String,
    finished: String,
    rows_written: String,
    rows_expected: String,
    percent: Option<u64>,
    row_count: Option<String>,
    data_sha256: Option<String>,
    audit_head_seq: Option<i64>,
    error: Option<String>,
}

fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

fn view(j: &JobStatus, tz: chrono_tz::Tz) -> JobView {
    let short = |d: NaiveDate| crate::messages::filters::format_tanggal_pendek(d);
    JobView {
        id: j.id,
        state: j.state.as_str(),
        state_label: state_label(j.state),
        kind: kind_label(j.kind),
        format: match j.format {
            ExportFormat::Xlsx => "XLSX",
            _ => "CSV",
        },
        period: format!("{} – {}", short(j.from), short(j.to)),
        branch: j.branch.clone().unwrap_or_else(|| "Semua cabang".into()),
        actor: j.actor.clone(),
        started: waktu(j.created_at, tz),
        finished: j.finished_at.map(|t| waktu(t, tz)).unwrap_or_default(),
        rows_written: num(j.rows_written),
        rows_expected: j.rows_expected.map(num).unwrap_or_default(),
        percent: j.percent(),
        row_count: j.manifest.as_ref().map(|m| num(m.row_count)),
        data_sha256: j.manifest.as_ref().map(|m| m.data_sha256[..16].to_owned()),
        audit_head_seq: j.manifest.as_ref().map(|m| m.audit_head_seq),
        error: j.error.clone(),
    }
}

fn supervisor(user: &User) -> Result<(), PageError> {
    if user.principal().is_supervisor() {
        Ok(())
    } else {
        Err(AppError::Forbidden.into())
    }
}

async fn page(State(state): State<AppState>, user: User) -> Result<Response, PageError> {
    supervisor(&user)?;
    let who = user.principal();
    let tz = state.tz();
    let list = jobs(&state).list(who.branch_scope(), 50).await?;
    let views: Vec<JobView> = list.iter().map(|j| view(j, tz)).collect();
    let branches = match who.branch_scope() {
        Some(b) => vec![b.to_owned()],
        None => crate::branches::known(&state.db).await?,
    };
    let today = crate::time::now().with_timezone(&tz).date_naive();
    Ok(render(
        StatusCode::OK,
        "admin/exports.html",
        context! {
            user => ser(who), csrf => user.0.csrf_token.clone(), nav => "exports",
            jobs => ser(&views), branches => branches, scoped => who.branch_scope().is_some(),
            from => (today - Duration::days(30)).to_string(), to => today.to_string(),
        },
    ))
}

async fn row(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    supervisor(&user)?;
    let job = visible(&state, user.principal(), id).await?;
    Ok(render(
        StatusCode::OK,
        "admin/export_row.html",
        context! { job => ser(&view(&job, state.tz())), csrf => user.0.csrf_token.clone() },
    ))
}

async fn visible(state: &AppState, who: &Principal, id: i64) -> Result<JobStatus, AppError> {
    let job = jobs(state).status(id).await?.ok_or(AppError::NotFound)?;
    if !may_see(who, &job) {
        return Err(AppError::Forbidden);
    }
    Ok(job)
}

fn parse<T: serde::de::DeserializeOwned>(field: &str, raw: Option<&String>) -> Result<T, AppError> {
    let raw = raw.map(String::as_str).unwrap_or("").trim();
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|_| AppError::BadRequest(format!("Isian `{field}` tidak valid: `{raw}`.")))
}

fn date(field: &str, raw: Option<&String>) -> Result<NaiveDate, AppError> {
    let raw = raw.map(String::as_str).unwrap_or("").trim();
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        AppError::BadRequest(format!(
            "Tanggal `{field}` tidak valid; gunakan YYYY-MM-DD."
        ))
    })
}

async fn start(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    supervisor(&user)?;
    user.check_csrf(&headers, &form)?;
    let kind: ExportKind = parse("kind", form.get("kind"))?;
    let format: ExportFormat = parse("format", form.get("format"))?;
    if format == ExportFormat::Json {
        return Err(AppError::BadRequest("Pilih CSV atau XLSX.".into()).into());
    }
    let req = export_request(
        &state,
        user.principal(),
        kind,
        format,
        date("from", form.get("from"))?,
        date("to", form.get("to"))?,
        form.get("branch").cloned(),
    )
    .await?;
    jobs(&state).start(req).await?;
    Ok(Redirect::to("/exports")
        .into_response()
        .with_status(StatusCode::SEE_OTHER))
}

async fn restart(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    supervisor(&user)?;
    user.check_csrf(&headers, &form)?;
    visible(&state, user.principal(), id).await?;
    jobs(&state)
        .restart(id)
        .await
        .map_err(|e| AppError::BadRequest(format!("Ekspor tidak dapat diulang: {e}")))?;
    Ok(Redirect::to("/exports")
        .into_response()
        .with_status(StatusCode::SEE_OTHER))
}

async fn file(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    supervisor(&user)?;
    let job = visible(&state, user.principal(), id).await?;
    Ok(file_response(&job).await?)
}

async fn manifest(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    supervisor(&user)?;
    let job = visible(&state, user.principal(), id).await?;
    let m = job.manifest.as_ref().ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.manifest.json\"", job.file_name()),
            ),
        ],
        serde_json::to_string_pretty(m).map_err(anyhow::Error::from)?,
    )
        .into_response())
}

trait WithStatus {
    fn with_status(self, s: StatusCode) -> Self;
}

impl WithStatus for Response {
    fn with_status(mut self, s: StatusCode) -> Self {
        *self.status_mut() = s;
        self
    }
}
