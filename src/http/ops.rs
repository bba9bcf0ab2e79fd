//! What every request gets for operations: a request id (`x-request-id`,
//! kept from the proxy or made here) carried into the request's log span,
//! and `wa_smile_http_requests_total` / `wa_smile_http_request_duration_seconds`
//! by route and status; and the guard on `/metrics` and `/status/delivery`
//! (`server.metrics_token`).

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use std::sync::atomic::{AtomicU64, Ordering};
use tower_http::request_id::{MakeRequestId, RequestId};

pub const HTTP_REQUESTS: &str = "wa_smile_http_requests_total";
pub const HTTP_DURATION: &str = "wa_smile_http_request_duration_seconds";

/// Ids unique per process start: a random prefix and a counter.
#[derive(Clone)]
pub struct MakeId {
    prefix: u32,
    next: std::sync::Arc<AtomicU64>,
}

impl Default for MakeId {
    fn default() -> Self {
        Self {
            prefix: rand::random(),
            next: Default::default(),
        }
    }
}

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:08x}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The span every request's logs sit in, with its id and route.
pub fn span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str);
    tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route)
}

/// Counts and times each request by its route template (never the raw
/// path: ids and NPPs would make a label per employer).
pub async fn measure(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    res
}

/// `/metrics` and `/status/delivery` with `server.metrics_token` set:
/// `Authorization: Bearer <token>` or 401.
pub async fn require_token(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let want = state.config.server.metrics_token.expose_secret();
    if want.is_empty() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if crate::payments::token_matches(want, given) {
        next.run(req).await
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}
