//! One error type for the admin UI and the API, mapped to statuses in one
//! place. Internal failures are logged with their cause and answered with a
//! generic message: nothing about the database or the code leaks out.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// Invalid input with per-row or per-field details.
    #[error("{message}")]
    Unprocessable {
        message: String,
        details: serde_json::Value,
    },
    #[error("invalid or missing CSRF token")]
    Csrf,
    #[error("too many failed logins; try again later")]
    Throttled,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// A row a handler looked up and did not find is the client's 404; every
/// other storage failure is ours.
impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotFound => AppError::NotFound,
            e => AppError::Internal(e.into()),
        }
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Throttled => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::BadRequest(_) => "bad_request",
            AppError::Unprocessable { .. } => "invalid",
            AppError::Csrf => "csrf",
            AppError::Throttled => "throttled",
            AppError::Internal(_) => "internal",
        }
    }

    /// Logs internal failures (with their cause chain) once, here.
    pub fn log(&self) {
        if let AppError::Internal(e) = self {
            tracing::error!(error = %format!("{e:#}"), "request failed");
        }
    }
}

impl From<crate::case_actions::ActionError> for AppError {
    fn from(e: crate::case_actions::ActionError) -> Self {
        use crate::case_actions::ActionError;
        match e {
            ActionError::Rejected(m) => AppError::Unprocessable {
                message: m,
                details: json!(null),
            },
            ActionError::NotFound => AppError::NotFound,
            ActionError::Failed(e) => AppError::Internal(e),
        }
    }
}

/// JSON body: `{"error": {"code", "message", "details"?}}`.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let mut body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        if let AppError::Unprocessable { details, .. } = &self {
            if !details.is_null() {
                body["error"]["details"] = details.clone();
            }
        }
        let mut res = (self.status(), Json(body)).into_response();
        if matches!(self, AppError::Unauthorized) {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}
