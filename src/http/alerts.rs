//! The operator's alert banner on every admin page: templates Meta paused,
//! disabled or rejected, and sending halted (token, account restriction).
//! A middleware reads them once per admin request; the layout asks for them
//! with `ops_alerts()` while the page renders in the same task.

use super::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static ALERTS: Vec<String>;
}

/// The lines the banner shows, in Indonesian.
pub async fn load(state: &AppState) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(all) = crate::templates_status::list(&state.db).await {
        for t in all.iter().filter(|t| t.is_blocking()) {
            out.push(format!(
                "Template {} ({}) berstatus {} di Meta: pesannya menunggu ({}).",
                t.name,
                t.language,
                t.status,
                crate::templates_status::REASON
            ));
        }
    }
    if let Ok(flags) = crate::delivery::halted(&state.db).await {
        for (flag, reason) in flags {
            out.push(format!("Pengiriman dihentikan ({flag}): {reason}"));
        }
    }
    out
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Static files and health checks need no database read.
    if req.uri().path().starts_with("/static/") {
        return next.run(req).await;
    }
    let alerts = load(&state).await;
    ALERTS.scope(alerts, next.run(req)).await
}

/// `ops_alerts()` in templates: the current request's alerts (none outside
/// a request).
pub fn current() -> Vec<String> {
    ALERTS.try_with(Clone::clone).unwrap_or_default()
}
