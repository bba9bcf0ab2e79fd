//! The JSON API under `/api/v1`, for SMILE and integrators. Bearer tokens
//! (`wa-smile token create`) carry a role and, unless admin, a branch; the
//! same branch rules as the admin UI apply.

use super::error::AppError;
use super::AppState;
use crate::accounts::{self, Principal};
use crate::caselist::{self, Filter};
use crate::import::{self, ImportContext, ImportError, Kind};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

mod exports;

const OPENAPI: &str = include_str!("openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/cases", get(list_cases))
        .route("/api/v1/cases/{id}", get(get_case))
        .route("/api/v1/employers/{npp}/case", get(employer_case))
        .route("/api/v1/bills", post(post_bills))
        .route("/api/v1/payments", post(post_payments))
        .route("/api/v1/scan", post(post_scan))
        .merge(exports::router())
}

/// The caller behind `Authorization: Bearer <token>`.
pub struct ApiCaller(pub Principal);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AppError::Unauthorized)?;
        accounts::token_principal(&state.db, token)
            .await?
            .map(ApiCaller)
            .ok_or(AppError::Unauthorized)
    }
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ListParams {
    status: String,
    branch: String,
    stage: String,
    page: Option<i64>,
}

async fn list_cases(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, AppError> {
    if !p.branch.is_empty() && !who.may_see_branch(&p.branch) {
        return Err(AppError::Forbidden);
    }
    let now = crate::time::now();
    let today = now.with_timezone(&state.tz()).date_naive();
    let filter = Filter {
        status: p.status,
        branch: p.branch,
        stage: p.stage,
        page: p.page.unwrap_or(1),
        ..Filter::default()
    };
    let page = caselist::list(&state.db, who.branch_scope(), &filter, today, now).await?;
    let counts: serde_json::Map<String, Value> = page
        .counts
        .iter()
        .map(|(s, n)| (s.clone(), json!(n)))
        .collect();
    Ok(Json(json!({
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "counts": counts,
        "cases": page.cases,
    })))
}

/// Loads a case the caller may see: 404 if there is none, 403 if it is
/// another branch's.
async fn visible_case(state: &AppState, who: &Principal, id: i64) -> Result<Value, AppError> {
    let branch = caselist::case_branch(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !who.may_see_branch(&branch) {
        return Err(AppError::Forbidden);
    }
    let view = crate::cases::load(&state.db, &state.config.policy(), id, crate::time::now())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(serde_json::to_value(view).map_err(anyhow::Error::from)?)
}

async fn get_case(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    Ok(Json(visible_case(&state, &who, id).await?))
}

async fn employer_case(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    Path(npp): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = crate::cases::case_id_for_npp(&state.db, &npp)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(visible_case(&state, &who, id).await?))
}

/// A JSON array of objects, one per CSV row, with the CSV's column names.
/// Numbers are accepted as well as strings, and written back in the CSV's
/// own notation so the one row parser sees what a file would hold.
fn rows_from_json(body: &[u8]) -> Result<Vec<HashMap<String, String>>, AppError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("the body is not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(AppError::BadRequest(
            "the body must be a JSON array of rows".into(),
        ));
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(map) = item else {
            errors.push(
                json!({"row": i + 1, "column": "*", "reason": "a row must be a JSON object"}),
            );
            continue;
        };
        let mut row = HashMap::new();
        for (k, v) in map {
            let cell = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                Value::Number(n) => n.to_string(),
                _ => {
                    errors.push(json!({"row": i + 1, "column": k, "reason": "must be a string or a number"}));
                    continue;
                }
            };
            row.insert(k.to_ascii_lowercase(), cell);
        }
        rows.push(row);
    }
    if !errors.is_empty() {
        return Err(AppError::Unprocessable {
            message: format!("{} invalid value(s); nothing was written", errors.len()),
            details: json!(errors),
        });
    }
    Ok(rows)
}

async fn import_json(
    state: &AppState,
    who: &Principal,
    kind: Kind,
    body: &[u8],
) -> Result<Json<Value>, AppError> {
    // Writing bills or payments is for supervisors and admins; a branch
    // token may only write its own branch's employers.
    if !who.is_supervisor() {
        return Err(AppError::Forbidden);
    }
    let rows = rows_from_json(body)?;
    if rows.is_empty() {
        return Err(AppError::BadRequest("the array is empty".into()));
    }
    if let Some(branch) = who.branch_scope() {
        let mut npps: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.get("npp").map(|s| s.trim()))
            .collect();
        npps.sort_unstable();
        npps.dedup();
        for chunk in npps.chunks(500) {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM employers WHERE branch <> $1 AND npp IN ({})",
                crate::store::list_placeholders(chunk.len(), 2)
            );
            let mut q = state.db.query(&sql).bind(branch.to_owned());
            for n in chunk {
                q = q.bind(n.to_string());
            }
            let n: i64 = q.fetch_scalar(&state.db).await?;
            if n > 0 {
                return Err(AppError::Forbidden);
            }
        }
        // Payments are keyed by reference across the whole system: naming
        // another branch's payment is refused as that branch's data. The
        // ledger refuses any re-pointed reference anyway (422 below).
        if kind == Kind::Payments {
            let refs: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.get("reference").map(|s| s.trim()))
                .filter(|s| !s.is_empty())
                .collect();
            if crate::ledger::references_outside_branch(&state.db, branch, &refs).await? {
                return Err(AppError::Forbidden);
            }
        }
    }
    let ctx = ImportContext {
        calendar: state.config.calendar(),
        default_tz: state.tz(),
        actor: format!("api:{}", who.name),
        // The same thank-you a gateway callback or a CSV import sends.
        thanks: Some(state.config.clone()),
    };
    match import::import_rows(&state.db, &ctx, kind, &rows, false).await {
        Ok(c) => Ok(Json(json!(c))),
        Err(ImportError::Invalid { errors, total }) => Err(AppError::Unprocessable {
            message: format!("{total} invalid value(s); nothing was written"),
            details: json!(errors
                .iter()
                .map(|e| json!({"row": e.line, "column": e.column, "reason": e.reason}))
                .collect::<Vec<_>>()),
        }),
        Err(ImportError::Failed(e)) => Err(AppError::Internal(e)),
    }
}

async fn post_bills(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AppError> {
    import_json(&state, &who, Kind::Bills, &body).await
}

async fn post_payments(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AppError> {
    import_json(&state, &who, Kind::Payments, &body).await
}

async fn post_scan(
    State(state): State<AppState>,
    ApiCaller(who): ApiCaller,
) -> Result<Json<Value>, AppError> {
    // CONTRACT allows supervisors too. The scan is global, but it only does
    // what the next scheduled run would do (it is idempotent), so a branch
    // supervisor starting it early changes no other branch's outcome.
    if !who.is_supervisor() {
        return Err(AppError::Forbidden);
    }
    let ctx = crate::scan::ScanContext::from_config(&state.config)?;
    let s = crate::scan::run(&state.db, &ctx, crate::time::now()).await?;
    Ok(Json(json!(s)))
}
