//! The audit trail and background exports over the API:
//! `GET /api/v1/audit` (streamed), `POST /api/v1/exports`,
//! `GET /api/v1/exports/{id}` and `GET /api/v1/exports/{id}/file`. The same
//! branch rules and jobs as `/exports` ([`crate::http::admin::exports`]).

use super::ApiCaller;
use crate::export::{ExportFormat, ExportKind, JobStatus};
use crate::http::admin::exports::{export_request, file_response, jobs, may_see};
use crate::http::error::AppError;
use crate::http::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/exports", post(start))
        .route("/api/v1/exports/{id}", get(status))
        .route("/api/v1/exports/{id}/file", get(file))
}

#[derive(Debug, serde::Deserialize)]
struct AuditParams {
    from: NaiveDate,
    to: NaiveDate,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    branch: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(p) = params.map_err(|e| AppError::Unprocessable {
        message: format!("from and to are required dates (YYYY-MM-DD): {e}"),
        details: json!({}),
    })?;
    let format = match p.format.as_deref().unwrap_or("json") {
        "json" => ExportFormat::Json,
        "csv" => ExportFormat::Csv,
        other => {
            return Err(AppError::Unprocessable {
                message: format!("format must be json or csv, not `{other}`"),
                details: json!({}),
            })
        }
    };
    let req = export_request(
        &state,
        &who,
        ExportKind::Audit,
        format,
        p.from,
        p.to,
        p.branch,
    )
    .await?;
    Ok(crate::export::respond(state.db.clone(), req).await)
}

#[derive(Debug, serde::Deserialize)]
struct StartBody {
    kind: ExportKind,
    from: NaiveDate,
    to: NaiveDate,
    format: ExportFormat,
    #[serde(default)]
    branch: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let b: StartBody = serde_json::from_slice(&body).map_err(|e| AppError::Unprocessable {
        message: format!("invalid export request: {e}"),
        details: json!({}),
    })?;
    if b.format == ExportFormat::Json {
        return Err(AppError::Unprocessable {
            message: "format must be csv or xlsx".into(),
            details: json!({}),
        });
    }
    let req = export_request(&state, &who, b.kind, b.format, b.from, b.to, b.branch).await?;
    let id = jobs(&state).start(req).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id}))).into_response())
}

fn body(j: &JobStatus) -> Value {
    let mut v = json!({
        "id": j.id,
        "kind": j.kind,
        "format": j.format,
        "from": j.from,
        "to": j.to,
        "branch": j.branch,
        "state": j.state,
        "rows_written": j.rows_written,
        "rows_expected": j.rows_expected,
        "started_by": j.actor,
        "created_at": j.created_at,
        "finished_at": j.finished_at,
    });
    if let Some(m) = &j.manifest {
        v["manifest"] = json!(m);
    }
    if let Some(e) = &j.error {
        v["error"] = json!(e);
    }
    v
}

async fn visible(
    state: &AppState,
    who: &crate::accounts::Principal,
    id: &str,
) -> Result<JobStatus, AppError> {
    if !who.is_supervisor() {
        return Err(AppError::Forbidden);
    }
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let job = jobs(state).status(id).await?.ok_or(AppError::NotFound)?;
    if !may_see(who, &job) {
        return Err(AppError::Forbidden);
    }
    Ok(job)
}

async fn status(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(body(&visible(&state, &who, &id).await?)))
}

async fn file(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let job = visible(&state, &who, &id).await?;
    file_response(&job).await
}
