//! The HTTP server: feature routers merged in one place.

pub mod admin;
pub mod alerts;
pub mod api;
pub mod error;
mod health;
pub mod listen;
mod metrics;
pub mod ops;
pub mod simulator;
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
    /// The background workers `/readyz` reports on (none outside `serve`).
    pub workers: Arc<crate::supervise::Supervisor>,
}

impl AppState {
    /// The branch offices' zone (`schedule.timezone`), validated at load.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.config.timezone()
    }
}

/// The address a request comes from, for per-client throttling: the peer,
/// or, on a connection from one of `server.trusted_proxies`, the nearest
/// address in `server.trusted_proxy_header` that is not itself a proxy
/// (the proxies append to it, so the leftmost entries are the client's to
/// invent).
pub fn client_address(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    server: &crate::config::ServerConfig,
) -> String {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let header = server.trusted_proxy_header.trim();
    let Some(peer) = peer else {
        return "unknown".into();
    };
    let proxies = server.trusted_proxy_addrs();
    if header.is_empty() || !proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|a| !proxies.contains(a))
        .or(forwarded.first())
        .unwrap_or(&peer)
        .to_string()
}

/// Headers on every response: no framing, no sniffing, no referrer leaks,
/// and a CSP that allows only our own scripts and styles (no inline code),
/// so a payload that slipped past escaping still could not run.
async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// Request bodies above this are refused before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `/metrics` and `/status/delivery` alone, for `server.metrics_bind`.
pub fn ops_router(state: AppState) -> Router {
    with_ops_layers(metrics::router(&state)).with_state(state)
}

/// The request id (kept from the proxy or made here, echoed on the
/// response), the request's log span, and the HTTP metrics.
fn with_ops_layers(r: Router<AppState>) -> Router<AppState> {
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
    r.layer(axum::middleware::from_fn(ops::measure))
        .layer(TraceLayer::new_for_http().make_span_with(ops::span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(ops::MakeId::default()))
}

pub fn router(state: AppState) -> Router {
    let separate_metrics = !state.config.server.metrics_bind.trim().is_empty();
    let metrics = if separate_metrics {
        Router::new()
    } else {
        metrics::router(&state)
    };
    let app = Router::new()
        .merge(health::router())
        .merge(metrics)
        .merge(admin::router().layer(axum::middleware::from_fn_with_state(
            state.clone(),
            alerts::layer,
        )))
        .merge(api::router())
        .merge(simulator::router(&state))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // Merged after the 1 MB limit: webhooks carry their own (2 MB).
        .merge(webhooks::router())
        .layer(axum::middleware::from_fn(security_headers))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ));
    with_ops_layers(app).with_state(state)
}
