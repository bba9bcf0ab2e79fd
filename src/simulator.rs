//! A local stand-in for the WhatsApp Cloud API, for `wa-smile demo`, the
//! tests and the throughput benchmark.
//!
//! As Meta: `POST /{version}/{phone_number_id}/messages` checks the bearer
//! token and the body's shape and answers with Meta's response and error
//! shapes after a configurable latency; `POST /{version}/{phone_number_id}/media`
//! takes an upload, `GET /{version}/{media_id}` answers with its URL and
//! `GET /media/{media_id}` downloads it (bearer required); status webhooks
//! (sent → delivered → read, or failed with Meta's code) are signed with the
//! app secret and posted back after realistic delays; a share of sends can be
//! made to fail with a chosen code.
//!
//! As the employers' phones ([`Phone`]): every chat as each employer sees
//! it, and replies, button taps, images, number changes and blocks that go
//! to the app as signed webhooks through its real `POST /webhooks/whatsapp`.

mod media;
mod phone;
mod render;
mod templates;

pub use phone::{ChatItem, ChatItemKind, ChatSummary, Contact, Phone, PhoneError, TapButton};
pub use templates::{Template, STATUSES as TEMPLATE_STATUSES};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
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
    /// Where to post webhooks (`…/webhooks/whatsapp`); None: no webhooks.
    pub webhook_url: Option<String>,
    /// Signs the webhooks (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// Keep received bodies (tests, the demo); off for benchmarks.
    pub keep_bodies: bool,
    /// Between accepting a message and its `sent`, `delivered` and `read`
    /// statuses (each after the previous one).
    pub status_delays: [Duration; 3],
    /// Share of delivered messages the employer reads on their own, in
    /// percent; the rest are read when the chat is opened on `/simulator`.
    pub read_percent: u32,
    /// Failure injection: this share of sends, in percent, fails with
    /// `fail_code` (spread evenly over the sends, so runs are repeatable).
    pub fail_percent: u32,
    /// Meta's code for injected failures. Codes Meta reports only later
    /// (131026, 131047, 131049…) are accepted with 200 and then get a
    /// `failed` status webhook; the others are answered as an HTTP error.
    pub fail_code: i64,
    /// The business phone number id in webhooks' `metadata`.
    pub phone_number_id: String,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            access_token: "simulator-token".into(),
            latency: Duration::from_millis(50),
            webhook_url: None,
            app_secret: String::new(),
            keep_bodies: true,
            status_delays: [Duration::from_millis(300); 3],
            read_percent: 100,
            fail_percent: 0,
            fail_code: 131026,
            phone_number_id: "SIMULATOR".into(),
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
    base_url: String,
    started: std::time::Instant,
    seq: AtomicU64,
    received: Mutex<Vec<Received>>,
    phone: phone::Phones,
    media: media::Store,
    templates: templates::Store,
    http: reqwest::Client,
}

impl Inner {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Posts a signed webhook body to the app; its HTTP status, or an
    /// error when there is nowhere to post or the app did not answer.
    async fn post_webhook(&self, body: String) -> Result<StatusCode, PhoneError> {
        let url = self
            .opts
            .webhook_url
            .as_deref()
            .ok_or(PhoneError::NoWebhook)?;
        let sig = sign(&self.opts.app_secret, body.as_bytes());
        let res = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .map_err(|e| PhoneError::Unreachable(e.without_url().to_string()))?;
        Ok(res.status())
    }

    fn envelope(&self, value: Value) -> String {
        let mut value = value;
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] = json!({"display_phone_number": "6281510000175",
                                   "phone_number_id": self.opts.phone_number_id});
        json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "SIMULATOR", "changes": [{"field": "messages", "value": value}]}],
        })
        .to_string()
    }
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

    /// The employers' phones: chats, replies, taps.
    pub fn phone(&self) -> Phone {
        Phone::new(self.inner.clone())
    }

    /// Status webhooks scheduled but not yet posted.
    pub fn pending_statuses(&self) -> usize {
        self.inner.phone.pending_statuses()
    }

    /// The templates registered so far (all, or those named `name`).
    pub fn templates(&self, name: Option<&str>) -> Vec<Template> {
        self.inner.templates.list(name)
    }

    /// Moves a template to `status` (`PAUSED`, `APPROVED`, …) and posts the
    /// signed `message_template_status_update` Meta would; None when no
    /// such template is registered.
    pub async fn set_template_status(
        &self,
        name: &str,
        language: &str,
        status: &str,
    ) -> Option<Template> {
        self.inner.move_template(name, language, status).await
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

/// The phones `/simulator` shows: the process's simulator, once the demo
/// (or a test) registers it.
static REGISTERED: Mutex<Option<Phone>> = Mutex::new(None);

/// Makes `phone` the one `/simulator` serves in this process.
pub fn register_phone(phone: Phone) {
    *REGISTERED.lock().expect("simulator registry") = Some(phone);
}

pub fn registered_phone() -> Option<Phone> {
    REGISTERED.lock().expect("simulator registry").clone()
}

impl Simulator {
    /// Starts on an ephemeral local port; returns the base URL to use as
    /// `whatsapp.api_base`.
    pub async fn start(opts: SimulatorOptions) -> anyhow::Result<(String, SimulatorHandle)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let inner = Arc::new(Inner {
            opts,
            base_url: base_url.clone(),
            started: std::time::Instant::now(),
            seq: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            phone: phone::Phones::default(),
            media: media::Store::default(),
            templates: templates::Store::default(),
            http: reqwest::Client::new(),
        });
        let app = Router::new()
            .route("/{version}/{phone}/messages", post(messages))
            .route("/{version}/{phone}/media", post(upload_media))
            .route(
                "/{version}/{waba_id}/message_templates",
                post(create_template).get(list_templates),
            )
            .route("/{version}/{media_id}", get(media_info))
            .route("/media/{media_id}", get(download_media))
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((base_url, SimulatorHandle { inner, task }))
    }
}

/// Meta's synchronous error body.
fn meta_error(status: StatusCode, code: i64, message: &str) -> Response {
    meta_error_with(status, code, message, None)
}

fn meta_error_with(
    status: StatusCode,
    code: i64,
    message: &str,
    details: Option<&str>,
) -> Response {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code,
                           "fbtrace_id": "SIMULATOR"});
    if let Some(d) = details {
        error["error_data"] = json!({"messaging_product": "whatsapp", "details": d});
    }
    (status, Json(json!({ "error": error }))).into_response()
}

/// Meta's title and details for the codes failure injection offers.
pub fn error_text(code: i64) -> (&'static str, &'static str) {
    match code {
        130429 => (
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
        131056 => (
            "(Business Account, Consumer Account) pair rate limit hit",
            "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.",
        ),
        131026 => ("Message undeliverable", "Message Undeliverable."),
        131047 => (
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ),
        131049 => (
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        ),
        131000 => ("Something went wrong", "Message failed to send due to an unknown error."),
        132000 => (
            "Number of parameters does not match the expected number of params",
            "body: number of localizable_params does not match the expected number of params",
        ),
        132001 => (
            "Template name does not exist in the translation",
            "template name does not exist in the requested language",
        ),
        132015 => ("Template is paused", "Template is paused due to low quality."),
        132016 => ("Template is disabled", "Template has been paused too many times."),
        131031 => ("Account has been locked", "Business account is locked."),
        368 => (
            "Temporarily blocked for policies violations",
            "The WhatsApp Business Account is restricted.",
        ),
        190 => (
            "Error validating access token: Session has expired",
            "The access token has expired.",
        ),
        _ => ("Invalid parameter", "Invalid parameter."),
    }
}

/// Codes Meta reports in a `failed` status webhook after accepting the send.
fn reported_later(code: i64) -> bool {
    matches!(code, 131026 | 131047 | 131049 | 131050 | 131053)
}

fn sync_status(code: i64) -> StatusCode {
    match code {
        190 => StatusCode::UNAUTHORIZED,
        131000 => StatusCode::INTERNAL_SERVER_ERROR,
        4 | 80007 | 130429 | 131056 => StatusCode::TOO_MANY_REQUESTS,
        368 | 131031 => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn authorized(sim: &Inner, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", sim.opts.access_token);
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn unauthorized() -> Response {
    meta_error(
        StatusCode::UNAUTHORIZED,
        190,
        "Invalid OAuth access token - Cannot parse access token",
    )
}

/// Whether send number `n` (1-based) is one of the injected failures:
/// `percent` of every hundred sends, spread evenly.
fn injected(n: u64, percent: u32) -> bool {
    let p = u64::from(percent.min(100));
    p > 0 && (n * p) / 100 != ((n - 1) * p) / 100
}

async fn messages(
    State(sim): State<Arc<Inner>>,
    Path((_version, _phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let at_ms = sim.started.elapsed().as_millis() as u64;
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    };
    let kind = v["type"].as_str().unwrap_or_default().to_owned();
    let to = v["to"].as_str().unwrap_or_default().to_owned();
    let shape_ok = v["messaging_product"] == "whatsapp"
        && !to.is_empty()
        && matches!(
            kind.as_str(),
            "template" | "text" | "interactive" | "image" | "document"
        )
        && v.get(kind.as_str()).is_some_and(Value::is_object);
    if !shape_ok {
        return meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    }
    tokio::time::sleep(sim.opts.latency).await;
    let n = sim.next_seq();
    let fail = injected(n, sim.opts.fail_percent).then_some(sim.opts.fail_code);
    if let Some(code) = fail.filter(|c| !reported_later(*c)) {
        let (title, details) = error_text(code);
        return meta_error_with(
            sync_status(code),
            code,
            &format!("(#{code}) {title}"),
            Some(details),
        );
    }
    let wamid = format!("wamid.SIM{n:012}");
    let wa_id = to.trim_start_matches('+').to_owned();
    let callback = v["biz_opaque_callback_data"].as_str().map(str::to_owned);
    // A number that blocked the business gets nothing: Meta accepts the
    // send and then reports it undeliverable.
    let fail = fail.or_else(|| sim.phone.is_blocked(&wa_id).then_some(131026));
    sim.phone.outbound(&wa_id, &wamid, &v, crate::time::now());
    sim.received.lock().expect("simulator lock").push(Received {
        wamid: wamid.clone(),
        at_ms,
        body: sim.opts.keep_bodies.then_some(v),
    });
    if sim.opts.webhook_url.is_some() {
        let read = injected(n, sim.opts.read_percent);
        phone::schedule_statuses(
            sim.clone(),
            wamid.clone(),
            wa_id.clone(),
            callback,
            fail,
            read,
        );
    }
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }))
    .into_response()
}

/// `POST /{version}/{phone_number_id}/media`: Meta's multipart upload
/// (`messaging_product`, `type`, `file`) → `{"id"}`.
async fn upload_media(
    State(sim): State<Arc<Inner>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match media::parse_upload(content_type, &body) {
        Some((mime, bytes)) => {
            let id = sim.media.put(&mime, bytes);
            Json(json!({ "id": id })).into_response()
        }
        None => meta_error_with(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameter file is required.",
            Some("multipart/form-data with messaging_product, type and file"),
        ),
    }
}

/// `POST /{version}/{waba_id}/message_templates`: register a template for
/// review.
async fn create_template(
    State(sim): State<Arc<Inner>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => sim.create_template(&v),
        Err(_) => meta_error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid JSON body"),
    }
}

/// `GET /{version}/{waba_id}/message_templates[?name=]`: the account's
/// templates with status and quality.
async fn list_templates(
    State(sim): State<Arc<Inner>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    Json(sim.list_templates(q.get("name").map(String::as_str))).into_response()
}

/// `GET /{version}/{media_id}` → the download URL and the file's facts.
async fn media_info(
    State(sim): State<Arc<Inner>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    match sim.media.get(&id) {
        Some(m) => Json(json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/media/{id}", sim.base_url),
            "mime_type": m.mime,
            "sha256": m.sha256,
            "file_size": m.bytes.len(),
            "id": id,
        }))
        .into_response(),
        None => meta_error(
            StatusCode::NOT_FOUND,
            100,
            "(#100) Unsupported get request. Object does not exist",
        ),
    }
}

/// The download itself; like Meta's, it needs the bearer token.
async fn download_media(
    State(sim): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    media_response(&sim, &id)
}

fn media_response(sim: &Inner, id: &str) -> Response {
    match sim.media.get(id) {
        Some(m) => ([(header::CONTENT_TYPE, m.mime.clone())], m.bytes.to_vec()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A status webhook body shaped as Meta sends it.
pub fn status_webhook(wamid: &str, status: &str, wa_id: &str, callback: Option<&str>) -> String {
    status_webhook_at(
        wamid,
        status,
        wa_id,
        callback,
        None,
        crate::time::now().timestamp(),
    )
}

fn status_webhook_at(
    wamid: &str,
    status: &str,
    wa_id: &str,
    callback: Option<&str>,
    error: Option<i64>,
    timestamp: i64,
) -> String {
    let mut st = json!({
        "id": wamid,
        "status": status,
        "timestamp": timestamp.to_string(),
        "recipient_id": wa_id,
    });
    if let Some(cb) = callback {
        st["biz_opaque_callback_data"] = json!(cb);
    }
    if status != "failed" {
        st["pricing"] = json!({"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"});
    }
    if let Some(code) = error {
        let (title, details) = error_text(code);
        st["errors"] = json!([{"code": code, "title": title, "message": title,
            "error_data": {"details": details},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]);
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
    crate::webhook::sign(secret.as_bytes(), body)
}

/// The simulator's transfer-receipt photo (a real PNG), for tests that need
/// an image a browser can draw.
pub fn receipt_png() -> Vec<u8> {
    media::receipt_png()
}

#[cfg(test)]
mod tests {
    use super::injected;

    #[test]
    fn injected_failures_are_the_chosen_share_spread_evenly() {
        for p in [0, 1, 5, 25, 50, 100] {
            let n = (1..=1000).filter(|&n| injected(n, p)).count();
            assert_eq!(n, p as usize * 10, "{p}%");
        }
        let first: Vec<u64> = (1..=8).filter(|&n| injected(n, 25)).collect();
        assert_eq!(first, [4, 8]);
    }
}
