//! `GET`/`POST /webhooks/whatsapp` (Meta) and `POST /webhooks/payments`
//! (the payment gateway). Signatures and tokens are checked before anything
//! is parsed or stored; a verified body is stored, then answered 200.

use super::AppState;
use crate::payment_callback::{self, CallbackError};
use crate::payments;
use crate::replies::StatusQueue;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::limit::RequestBodyLimitLayer;

/// Meta batches up to 1,000 updates in one call; 2 MB holds that with room.
pub const MAX_WEBHOOK_BYTES: usize = 2 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/whatsapp", get(verify).post(whatsapp))
        .route("/webhooks/payments", post(payment_callback))
        // One status queue per router: concurrent webhooks share commits.
        .layer(Extension(Arc::new(StatusQueue::new())))
        .layer(Extension(Arc::new(HandshakeGuard::default())))
        .layer(RequestBodyLimitLayer::new(MAX_WEBHOOK_BYTES))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
}

#[derive(Debug, Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Wrong verify tokens per client before the handshake refuses that
/// client for `GUESS_WINDOW` (Meta itself sends the right one).
const MAX_TOKEN_GUESSES: u32 = 10;
const GUESS_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed handshakes per client, in memory: a guesser is slowed per
/// process, which is enough for a secret of any length.
#[derive(Default)]
struct HandshakeGuard {
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl HandshakeGuard {
    fn blocked(&self, client: &str) -> bool {
        let failures = self.failures.lock().expect("handshake guard");
        failures
            .get(client)
            .is_some_and(|(since, n)| since.elapsed() < GUESS_WINDOW && *n >= MAX_TOKEN_GUESSES)
    }

    fn failed(&self, client: &str) {
        let mut failures = self.failures.lock().expect("handshake guard");
        if failures.len() > 10_000 {
            failures.retain(|_, (since, _)| since.elapsed() < GUESS_WINDOW);
        }
        let entry = failures
            .entry(client.to_owned())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= GUESS_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// Meta's subscription handshake: echo the challenge when the token matches.
async fn verify(
    State(state): State<AppState>,
    Extension(guard): Extension<Arc<HandshakeGuard>>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let client = super::client_address(&ext, &headers, &state.config.server);
    if guard.blocked(&client) {
        tracing::warn!("webhook handshake refused: too many wrong verify tokens");
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    let q = Handshake {
        mode: q.get("hub.mode").cloned(),
        verify_token: q.get("hub.verify_token").cloned(),
        challenge: q.get("hub.challenge").cloned(),
    };
    let configured = state.config.whatsapp.verify_token.expose_secret();
    if q.mode.as_deref() == Some("subscribe")
        && payments::token_matches(configured, q.verify_token.as_deref())
    {
        (StatusCode::OK, q.challenge.unwrap_or_default()).into_response()
    } else {
        guard.failed(&client);
        StatusCode::FORBIDDEN.into_response()
    }
}

async fn whatsapp(
    State(state): State<AppState>,
    Extension(queue): Extension<Arc<StatusQueue>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let secret = state.config.whatsapp.app_secret.expose_secret().as_bytes();
    if let Err(e) = crate::webhook::verify_signature(secret, &body, signature) {
        metrics::counter!("webhooks_rejected_total", "reason" => "signature").increment(1);
        metrics::counter!(crate::meta_events::WEBHOOKS_METRIC, "field" => "unknown", "outcome" => "signature").increment(1);
        tracing::warn!(reason = %e, "webhook refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let events = match crate::webhook::parse_events(&body) {
        Ok(events) => events,
        Err(e @ crate::webhook::PayloadError::TooManyUpdates(_)) => {
            metrics::counter!("webhooks_rejected_total", "reason" => "too_many_updates")
                .increment(1);
            tracing::warn!(reason = %e, "signed webhook refused");
            return (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response();
        }
        Err(e) => {
            metrics::counter!("webhooks_rejected_total", "reason" => "not_json").increment(1);
            tracing::warn!(reason = %e, "signed webhook is not a JSON object");
            return (StatusCode::BAD_REQUEST, "body is not a JSON object").into_response();
        }
    };
    let now = crate::time::now();
    // Templates, the account's health and prices: stored before the 200.
    if let Err(e) = crate::meta_events::record(&state.db, &state.config, &body, now).await {
        tracing::error!(error = %format!("{e:#}"), "failed to store an account webhook");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let digest = crate::webhook::body_digest(&body);
    match crate::replies::record_events_with(
        &state.db,
        &state.config,
        &queue,
        &events,
        &digest,
        now,
    )
    .await
    {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            // Not stored: a 5xx makes Meta deliver it again later.
            tracing::error!(error = %format!("{e:#}"), "failed to store a webhook");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn payment_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get("x-callback-token")
        .and_then(|v| v.to_str().ok());
    if !payments::token_matches(state.config.payments.callback_token.expose_secret(), token) {
        tracing::warn!("payment callback with a wrong or missing token refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not JSON").into_response(),
    };
    metrics::counter!("webhooks_received_total", "kind" => "payment").increment(1);
    match payment_callback::handle(&state.db, &state.config, &value, crate::time::now()).await {
        Ok(outcome) => (StatusCode::OK, Json(json!({"outcome": outcome}))).into_response(),
        Err(CallbackError::Invalid(reason)) => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response()
        }
        Err(CallbackError::Failed(e)) => {
            tracing::error!(error = %format!("{e:#}"), "failed to record a payment callback");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
