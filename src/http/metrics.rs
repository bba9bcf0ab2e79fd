//! `GET /metrics` (Prometheus text) and `GET /status/delivery` (whether
//! sending is halted, and why).

use super::AppState;
use crate::metrics as m;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub fn router(state: &AppState) -> Router<AppState> {
    // Installed here too, so a test app has a recorder without `serve`.
    let _ = m::handle();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status/delivery", get(delivery_status))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::ops::require_token,
        ))
}

/// Gauges that are cheap to read fresh are refreshed on each scrape.
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = m::handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    if let Ok(depth) = crate::outbox::depth(&state.db).await {
        for st in crate::outbox::OutboxState::ALL {
            let n = depth.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n);
            metrics::gauge!(m::OUTBOX_DEPTH, "state" => st.as_str()).set(n as f64);
        }
    }
    let now = crate::time::now();
    if let Ok(oldest) = crate::outbox::oldest_due(&state.db, now).await {
        let age = oldest.map_or(0, |t| (now - t).num_seconds().max(0));
        metrics::gauge!(m::OUTBOX_OLDEST_DUE_AGE).set(age as f64);
    }
    let _ = crate::templates_status::refresh_gauge(&state.db).await;
    if let Ok(flags) = crate::delivery::halted(&state.db).await {
        for flag in [
            crate::delivery::FLAG_SENDING_PAUSED,
            crate::delivery::FLAG_AUTH_EXPIRED,
        ] {
            let on = flags.iter().any(|(f, _)| f == flag);
            metrics::gauge!(m::DELIVERY_HALTED, "flag" => flag).set(if on { 1.0 } else { 0.0 });
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// 200 `{"halted": false}` while sending; 503 with the flags while halted
/// (a token to renew, an account restriction to resolve).
async fn delivery_status(State(state): State<AppState>) -> Response {
    match crate::delivery::halted(&state.db).await {
        Ok(flags) if flags.is_empty() => Json(serde_json::json!({"halted": false})).into_response(),
        Ok(flags) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "halted": true,
                "flags": flags.iter().map(|(f, r)| serde_json::json!({"flag": f, "reason": r})).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}
