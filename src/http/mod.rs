//! The HTTP server: feature routers merged in one place.

mod health;
mod metrics;
pub mod webhooks;

use crate::config::Config;
use crate::store::Db;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
}

/// Request bodies above this are refused before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // Merged after the 1 MB limit: webhooks carry their own (2 MB).
        .merge(webhooks::router())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
