//! A local stand-in for the WhatsApp Cloud API, for `wa-smile demo` and the
//! throughput benchmark: `POST /{version}/{phone_number_id}/messages` checks
//! the bearer token and the body's shape, answers as Meta does after a
//! configurable latency, keeps what it received, and can post signed status
//! webhooks (sent → delivered → read) back to the app.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// The bearer token it accepts.
    pub access_token: String,
    /// Delay before each answer (Meta answers in roughly 50–300 ms).
    pub latency: Duration,
    /// Where to post status webhooks (`…/webhooks/whatsapp`); None: no
    /// webhooks.
    pub webhook_url: Option<String>,
    /// Signs the webhooks (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// Keep received bodies (tests, the demo); off for benchmarks.
    pub keep_bodies: bool,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            access_token: "simulator-token".into(),
            latency: Duration::from_millis(50),
            webhook_url: None,
            app_secret: String::new(),
            keep_bodies: true,
        }
    }
}

/// A message the simulator accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub wamid: String,
    /// Milliseconds since the simulator started, when the request arrived.
    pub at_ms: u64,
    pub body: Option<Value>,
}

struct Inner {
    opts: SimulatorOptions,
    started: std::time::Instant,
    seq: AtomicU64,
    received: Mutex<Vec<Received>>,
    http: reqwest::Client,
}

/// A running simulator; stops when dropped or on [`SimulatorHandle::stop`].
pub struct SimulatorHandle {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl SimulatorHandle {
    /// Everything accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("simulator lock").clone()
    }

    pub fn count(&self) -> usize {
        self.inner.received.lock().expect("simulator lock").len()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Simulator;

impl Simulator {
    /// Starts on an ephemeral local port; returns the base URL to use as
    /// `whatsapp.api_base`.
    pub async fn start(opts: SimulatorOptions) -> anyhow::Result<(String, SimulatorHandle)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            opts,
            started: std::time::Instant::now(),
            seq: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            http: reqwest::Client::new(),
        });
        let app = Router::new()
            .route("/{version}/{phone}/messages", post(messages))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((format!("http://{addr}"), SimulatorHandle { inner, task }))
    }
}

fn meta_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        Json(
            json!({"error": {"message": message, "type": "OAuthException", "code": code,
                              "fbtrace_id": "SIMULATOR"}}),
        ),
    )
        .into_response()
}

async fn messages(
    State(sim): State<Arc<Inner>>,
    Path((_version, _phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let at_ms = sim.started.elapsed().as_millis() as u64;
    let expected = format!("Bearer {}", sim.opts.access_token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return meta_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    };
    let kind = v["type"].as_str().unwrap_or_default().to_owned();
    let to = v["to"].as_str().unwrap_or_default().to_owned();
    let shape_ok = v["messaging_product"] == "whatsapp"
        && !to.is_empty()
        && matches!(kind.as_str(), "template" | "text" | "interactive")
        && v.get(kind.as_str()).is_some_and(Value::is_object);
    if !shape_ok {
        return meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    }
    tokio::time::sleep(sim.opts.latency).await;
    let n = sim.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let wamid = format!("wamid.SIM{n:012}");
    let wa_id = to.trim_start_matches('+').to_owned();
    let callback = v["biz_opaque_callback_data"].as_str().map(str::to_owned);
    sim.received.lock().expect("simulator lock").push(Received {
        wamid: wamid.clone(),
        at_ms,
        body: sim.opts.keep_bodies.then_some(v),
    });
    if let Some(url) = sim.opts.webhook_url.clone() {
        let sim = sim.clone();
        let (wamid, wa_id) = (wamid.clone(), wa_id.clone());
        tokio::spawn(async move {
            for status in ["sent", "delivered", "read"] {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let body = status_webhook(&wamid, status, &wa_id, callback.as_deref());
                let sig = sign(&sim.opts.app_secret, body.as_bytes());
                let _ = sim
                    .http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await;
            }
        });
    }
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }))
    .into_response()
}

/// A status webhook body shaped as Meta sends it.
pub fn status_webhook(wamid: &str, status: &str, wa_id: &str, callback: Option<&str>) -> String {
    let mut st = json!({
        "id": wamid,
        "status": status,
        "timestamp": chrono::Utc::now().timestamp().to_string(),
        "recipient_id": wa_id,
    });
    if let Some(cb) = callback {
        st["biz_opaque_callback_data"] = json!(cb);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "SIMULATOR", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6200000000", "phone_number_id": "SIMULATOR"},
            "statuses": [st],
        }}]}],
    })
    .to_string()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, as Meta signs webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
