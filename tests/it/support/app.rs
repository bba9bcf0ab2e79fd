//! `TestApp`: the real app on port 0 over a fresh database (SQLite, and
//! PostgreSQL when `WA_SMILE_TEST_POSTGRES_URL` is set), its own clock, a
//! signed-webhook client, and optionally a mock Cloud API wired into its
//! configuration. Data goes in through the builders in `fixtures`, which
//! use the real import and ledger code.

use super::{Client, Resp, Server};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;
use wa_smile::config::Config;
use wa_smile::http::{self, AppState};
use wa_smile::store::Db;
use wa_smile::testing::{self, TestDb};
use wa_smile::time::TestClock;
use wa_smile::webhook::sign;
use wiremock::MockServer;

/// The app secret webhooks are signed with (`whatsapp.app_secret`).
pub const SECRET: &str = "app-secret-for-tests";
/// The verification handshake's token (`whatsapp.verify_token`).
pub const VERIFY: &str = "verify-me";
/// The payment gateway's callback token (`payments.callback_token`).
pub const CALLBACK: &str = "callback-token";
/// The mock Cloud API's phone number id and token.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const TOKEN: &str = "test-access-token";
pub const MESSAGES_PATH: &str = "/v25.0/106540352242922/messages";

/// A configuration with the secrets above, then `extra` (environment
/// overrides such as `WA_SMILE__SCHEDULE__WINDOW_START`).
pub fn config_with(extra: &[(&str, &str)]) -> Config {
    let mut env = vec![
        (
            "WA_SMILE__WHATSAPP__APP_SECRET".to_owned(),
            SECRET.to_owned(),
        ),
        (
            "WA_SMILE__WHATSAPP__VERIFY_TOKEN".to_owned(),
            VERIFY.to_owned(),
        ),
        (
            "WA_SMILE__PAYMENTS__CALLBACK_TOKEN".to_owned(),
            CALLBACK.to_owned(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_sources(None, env).unwrap()
}

/// The environment that points the WhatsApp client at `server`.
pub fn cloud_api_env(server: &MockServer) -> Vec<(String, String)> {
    vec![
        ("WA_SMILE__WHATSAPP__API_BASE".into(), server.uri()),
        (
            "WA_SMILE__WHATSAPP__PHONE_NUMBER_ID".into(),
            PHONE_NUMBER_ID.into(),
        ),
        ("WA_SMILE__WHATSAPP__ACCESS_TOKEN".into(), TOKEN.into()),
        (
            "WA_SMILE__WHATSAPP__MESSAGES_PER_SECOND".into(),
            "1000".into(),
        ),
    ]
}

/// [`config_with`] plus the environment that points the WhatsApp client
/// at `server` (for tests that run the delivery worker on their own).
pub fn cloud_config(server: &MockServer, extra: &[(&str, &str)]) -> Config {
    let cloud = cloud_api_env(server);
    let mut env: Vec<(&str, &str)> = cloud
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend(extra);
    config_with(&env)
}

/// How to start a [`TestApp`].
#[derive(Default)]
pub struct Spawn {
    env: Vec<(String, String)>,
    cloud_api: bool,
    clock_at: Option<DateTime<Utc>>,
}

impl Spawn {
    /// One configuration override (`WA_SMILE__…`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn envs(mut self, extra: &[(&str, &str)]) -> Self {
        for (k, v) in extra {
            self = self.env(k, v);
        }
        self
    }

    /// Starts a mock Cloud API (wiremock) and configures the app to send to it.
    pub fn cloud_api(mut self) -> Self {
        self.cloud_api = true;
        self
    }

    /// Starts the app's clock stopped at `at`.
    pub fn clock_at(mut self, at: DateTime<Utc>) -> Self {
        self.clock_at = Some(at);
        self
    }

    /// The app on every configured backend (SQLite, and PostgreSQL when set).
    pub async fn all(self) -> Vec<TestApp> {
        let mut out = Vec::new();
        for t in testing::all().await.unwrap() {
            out.push(self.on(t).await);
        }
        out
    }

    /// The app over a database the test made itself.
    pub async fn on(&self, t: TestDb) -> TestApp {
        let cloud = if self.cloud_api {
            Some(MockServer::start().await)
        } else {
            None
        };
        let extra: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let config = match &cloud {
            Some(server) => cloud_config(server, &extra),
            None => config_with(&extra),
        };
        let clock = TestClock::default();
        if let Some(at) = self.clock_at {
            clock.set(at);
        }
        let config = Arc::new(config);
        let router = clocked(
            http::router(AppState {
                db: t.db.clone(),
                config: config.clone(),
                workers: Default::default(),
            }),
            &clock,
        );
        let server = serve_router(router.clone(), &config).await;
        TestApp {
            url: server.url.clone(),
            addr: server.addr,
            t,
            config,
            router,
            clock,
            cloud,
            http: reqwest::Client::new(),
            _server: server,
        }
    }
}

/// Every request to `router` reads `clock` as `now()`.
pub fn clocked(router: Router, clock: &TestClock) -> Router {
    let clock = clock.clone();
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let clock = clock.clone();
            async move { clock.run(next.run(req)).await }
        },
    ))
}

async fn serve_router(router: Router, config: &Config) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = http::listen::Limits::from_config(&config.server);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(http::listen::serve(listener, router, limits, async move {
        let _ = stopped.await;
    }));
    Server {
        url: format!("http://{addr}"),
        addr,
        stop: Some(stop),
    }
}

/// The app, served on a real port until dropped.
pub struct TestApp {
    pub t: TestDb,
    pub config: Arc<Config>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub addr: std::net::SocketAddr,
    /// The same app in process (`oneshot`), under the same clock.
    pub router: Router,
    /// The app's clock: stop it at an instant with `set`; run library calls under it with
    /// `clock.run(…)`.
    pub clock: TestClock,
    /// The mock Cloud API, when spawned with [`Spawn::cloud_api`].
    pub cloud: Option<MockServer>,
    /// A plain HTTP client (no cookies) for the real port.
    pub http: reqwest::Client,
    _server: Server,
}

impl TestApp {
    pub fn builder() -> Spawn {
        Spawn::default()
    }

    /// The default app on every configured backend.
    pub async fn all() -> Vec<TestApp> {
        Spawn::default().all().await
    }

    /// The database, the mock Cloud API and the configuration, for a test
    /// that drives the library itself (the delivery worker); the HTTP
    /// server stops.
    pub fn into_parts(self) -> (TestDb, MockServer, Config) {
        let config = (*self.config).clone();
        let cloud = self.cloud.expect("spawned with .cloud_api()");
        (self.t, cloud, config)
    }

    pub fn db(&self) -> &Db {
        &self.t.db
    }

    pub fn name(&self) -> &'static str {
        self.t.name
    }

    pub fn cloud(&self) -> &MockServer {
        self.cloud.as_ref().expect("spawned with .cloud_api()")
    }

    /// What `now()` reads in this app.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An in-process browser for the admin UI: keeps cookies.
    pub fn browser(&self) -> Client {
        Client::on(self.router.clone())
    }

    /// Builders over this app's database and configuration.
    pub fn fixtures(&self) -> super::fixtures::Fixtures<'_> {
        super::fixtures::Fixtures::new(self.db(), &self.config).with_clock(&self.clock)
    }

    /// A request through the router in process.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        super::read(res).await
    }

    /// A signed WhatsApp webhook, in process.
    pub async fn post_signed(&self, body: &[u8]) -> StatusCode {
        self.send(signed_request(body)).await.status
    }

    pub async fn post_json(&self, body: &Value) -> StatusCode {
        self.post_signed(body.to_string().as_bytes()).await
    }

    /// A signed WhatsApp webhook over the real port.
    pub async fn post_signed_http(&self, body: &str) -> u16 {
        self.http
            .post(format!("{}/webhooks/whatsapp", self.url))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature(body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A payment gateway callback over the real port, with the right token.
    pub async fn callback_http(&self, body: &Value) -> u16 {
        self.http
            .post(format!("{}/webhooks/payments", self.url))
            .header("x-callback-token", CALLBACK)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// `X-Hub-Signature-256` for `body` with the test app secret.
pub fn signature(body: &[u8]) -> String {
    sign(SECRET.as_bytes(), body)
}

/// A WhatsApp webhook request signed with the test app secret.
pub fn signed_request(body: &[u8]) -> Request<Body> {
    Request::post("/webhooks/whatsapp")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature(body))
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// Meta's webhook envelope around one change's `value`.
pub fn envelope(value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
        {"field": "messages", "value": value}
    ]}]})
}

/// One inbound message from `from`, sent at `at`; `body` holds its type and content.
pub fn message(wamid: &str, from: &str, at: DateTime<Utc>, body: Value) -> Value {
    let mut m = json!({"from": from, "id": wamid, "timestamp": at.timestamp().to_string()});
    for (k, v) in body.as_object().unwrap() {
        m[k] = v.clone();
    }
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100000000", "phone_number_id": "PNID"},
        "contacts": [{"profile": {"name": "Sari"}, "wa_id": from}],
        "messages": [m],
    }))
}
