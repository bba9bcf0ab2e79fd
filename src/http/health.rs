//! Liveness and readiness for the operator's load balancer.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready while the database answers and every background worker (the
/// scheduler, the delivery worker) runs; otherwise 503 with the reasons,
/// one per line.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    // Read before the ping, so the answer is the workers' state when asked.
    let mut problems = state.workers.not_running();
    if !state.db.ping().await {
        problems.insert(0, "database unavailable".into());
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n"))
    }
}
