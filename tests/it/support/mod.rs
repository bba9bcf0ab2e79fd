//! The integration tests' harness: `TestApp` (the app on port 0 over a
//! fresh database, with its own clock, a signed-webhook client and a mock
//! Cloud API), builders that go through the real import, ledger and scan
//! (`fixtures`), and for the admin/API tests and the browser test a seeded
//! database with two branches, users of every role, and an in-process
//! client that keeps cookies.
#![allow(dead_code)]

pub mod app;
pub mod demo_process;
pub mod fixtures;

pub use app::*;
pub use fixtures::*;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use wa_smile::accounts::{self, Role};
use wa_smile::config::Config;
use wa_smile::http::{self, AppState};
use wa_smile::store::Db;

pub const PASSWORD: &str = "rahasia-sekali-123";
pub const BRANCH_A: &str = "PEKANBARU";
pub const BRANCH_B: &str = "DUMAI";
pub const XSS_NAME: &str =
    "PT <script>alert('name')</script> \"Jaya\" & <img src=x onerror=alert(1)>";
pub const XSS_REPLY: &str = "<img src=x onerror=alert('reply')><b>bold</b>";

pub fn config() -> Config {
    Config::from_sources(None, Vec::<(String, String)>::new()).unwrap()
}

/// How many rows `table` holds.
pub async fn count_rows(db: &Db, table: &str) -> i64 {
    db.query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_scalar(db)
        .await
        .unwrap()
}

pub fn app(db: &Db) -> Router {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
    http::router(AppState {
        db: db.clone(),
        config: Arc::new(config()),
        workers: Default::default(),
    })
}

pub struct Seeded {
    /// Branch A's case (employer name is an XSS payload).
    pub case_a: i64,
    /// Another case of branch A, with an open 24-hour window.
    pub case_a2: i64,
    pub case_b: i64,
    pub npp_a: String,
    pub npp_b: String,
}

async fn employer(db: &Db, npp: &str, name: &str, branch: &str, wa: Option<&str>) -> i64 {
    fixtures(db)
        .employer(npp)
        .name(name)
        .branch(branch)
        .wa_opt(wa)
        .tz("Asia/Jakarta")
        .create()
        .await
}

async fn bill(db: &Db, npp: &str, period: &str, amount_minor: i64, days_overdue: i64) {
    let due = (Utc::now() - Duration::days(days_overdue)).date_naive();
    fixtures(db)
        .bill(npp, period, amount_minor)
        .due(due)
        .create()
        .await;
}

pub async fn case_of(db: &Db, npp: &str) -> i64 {
    wa_smile::cases::case_id_for_npp(db, npp)
        .await
        .unwrap()
        .unwrap()
}

/// Two branches, three cases, a reply with markup, and users:
/// `officer_a`, `officer_b`, `super_a` (supervisor of A), `admin`.
pub async fn seed(db: &Db) -> Seeded {
    employer(db, "10000001", XSS_NAME, BRANCH_A, Some("6281234567001")).await;
    bill(db, "10000001", "2026-01", 125_000_000, 40).await;
    bill(db, "10000001", "2026-02", 130_000_000, 10).await;
    employer(
        db,
        "10000002",
        "CV Sinar Maju",
        BRANCH_A,
        Some("6281234567002"),
    )
    .await;
    bill(db, "10000002", "2026-02", 50_000_000, 20).await;
    employer(
        db,
        "20000001",
        "PT Dumai Sentosa",
        BRANCH_B,
        Some("6281234567003"),
    )
    .await;
    bill(db, "20000001", "2026-02", 90_000_000, 20).await;
    let ctx = wa_smile::scan::ScanContext::from_config(&config()).unwrap();
    wa_smile::scan::run(db, &ctx, wa_smile::time::now())
        .await
        .unwrap();
    let case_a = case_of(db, "10000001").await;
    let case_a2 = case_of(db, "10000002").await;
    let case_b = case_of(db, "20000001").await;
    // An employer's reply with markup in it, and an open window on case a2.
    let now = wa_smile::time::now();
    let mut tx = db.begin().await.unwrap();
    wa_smile::case_log::record(
        &mut tx,
        &[wa_smile::case_log::NewEvent::new(
            case_a,
            now,
            wa_smile::case_log::EventKind::ReplyReceived,
            wa_smile::case_log::Actor::Employer,
            serde_json::json!({"intent": "question", "text": XSS_REPLY}),
        )],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // An inbound message two hours ago would also run its reply's effects
    // and change the seeded case; only the open window is wanted here.
    db.query("UPDATE cases SET last_inbound_at = $2 WHERE id = $1")
        .bind(case_a2)
        .bind(now - Duration::hours(2))
        .execute(db)
        .await
        .unwrap();
    for (u, role, branch) in [
        ("officer_a", Role::Officer, Some(BRANCH_A)),
        ("officer_b", Role::Officer, Some(BRANCH_B)),
        ("super_a", Role::Supervisor, Some(BRANCH_A)),
        ("admin", Role::Admin, None),
    ] {
        accounts::add_user(db, u, PASSWORD, role, branch)
            .await
            .unwrap();
    }
    Seeded {
        case_a,
        case_a2,
        case_b,
        npp_a: "10000001".into(),
        npp_b: "20000001".into(),
    }
}

/// `n` more employers of branch A with overdue bills, then a scan.
pub async fn seed_more(db: &Db, n: usize) {
    const A: [&str; 8] = [
        "Sinar", "Maju", "Riau", "Berkah", "Karya", "Samudra", "Cahaya", "Tunas",
    ];
    const B: [&str; 8] = [
        "Abadi",
        "Mandiri",
        "Sejahtera",
        "Lancar",
        "Sentosa",
        "Makmur",
        "Perkasa",
        "Prima",
    ];
    const P: [&str; 3] = ["PT", "CV", "UD"];
    for i in 0..n {
        let name = format!("{} {} {}", P[i % 3], A[i % 8], B[(i / 8 + i) % 8]);
        let wa = (i % 7 != 0).then(|| format!("62812{:08}", 3000 + i));
        let npp = format!("3{:07}", i);
        employer(db, &npp, &name, BRANCH_A, wa.as_deref()).await;
        let months = 1 + (i % 4) as i64;
        for m in 0..months {
            let period = format!("2026-{:02}", 1 + m);
            let amount = 15_000_000 + (i as i64 * 7_919 % 400) * 2_500_000;
            bill(
                db,
                &npp,
                &period,
                amount,
                5 + (months - m) * 25 + (i as i64 % 9),
            )
            .await;
        }
    }
    let ctx = wa_smile::scan::ScanContext::from_config(&config()).unwrap();
    wa_smile::scan::run(db, &ctx, wa_smile::time::now())
        .await
        .unwrap();
}

/// A response, read whole.
pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
    /// The body as received (media).
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// An in-process browser: sends requests with `oneshot` and keeps cookies.
pub struct Client {
    pub app: Router,
    pub cookies: Vec<(String, String)>,
}

impl Client {
    pub fn new(db: &Db) -> Self {
        Self::on(app(db))
    }

    /// A browser on `app` (e.g. a `TestApp`'s router, under its clock).
    pub fn on(app: Router) -> Self {
        Client {
            app,
            cookies: Vec::new(),
        }
    }

    pub async fn send(&mut self, req: Request<Body>) -> Resp {
        let mut req = req;
        if !self.cookies.is_empty() {
            let c = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.headers_mut().insert(header::COOKIE, c.parse().unwrap());
        }
        let res = self.app.clone().oneshot(req).await.unwrap();
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
        read(res).await
    }

    pub async fn get(&mut self, uri: &str) -> Resp {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> Resp {
        let body = form(fields);
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Resp {
        let page = self.get("/login").await;
        let csrf = csrf_field(&page.body);
        self.post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Logs in and returns the session's CSRF token (from a page's form).
    pub async fn login_ok(&mut self, username: &str) -> String {
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login failed: {}", r.body);
        let page = self.get("/cases").await;
        assert_eq!(page.status, StatusCode::OK);
        csrf_field(&page.body)
    }
}

/// A response, read whole.
pub async fn read(res: axum::response::Response) -> Resp {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body.to_vec(),
    }
}

pub fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let i = html.find(marker).expect("a csrf field") + marker.len();
    html[i..i + 64].to_owned()
}

pub fn api(uri: &str, method: &str, token: Option<&str>, body: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().uri(uri).method(method);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(json) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json.to_owned()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

pub fn now() -> DateTime<Utc> {
    wa_smile::time::now()
}

/// The app on a real TCP port (the server `serve` runs), until dropped.
pub struct Server {
    pub url: String,
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn serve_app(db: &Db, config: Config) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = http::listen::Limits::from_config(&config.server);
    let app = http::router(AppState {
        db: db.clone(),
        config: Arc::new(config),
        workers: Default::default(),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(http::listen::serve(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    Server {
        url: format!("http://{addr}"),
        addr,
        stop: Some(stop),
    }
}

/// A login form's CSRF cookie and field, fetched over real HTTP.
pub async fn login_csrf(http: &reqwest::Client, url: &str) -> String {
    let r = http.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    csrf_field(&r.text().await.unwrap())
}

/// One login attempt over real HTTP, optionally as if forwarded for `client`.
pub async fn http_login(
    http: &reqwest::Client,
    url: &str,
    csrf: &str,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> StatusCode {
    let mut req = http
        .post(format!("{url}/login"))
        .header(header::COOKIE, format!("wa_smile_login_csrf={csrf}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", csrf),
            ("username", username),
            ("password", password),
        ]));
    if let Some(c) = forwarded_for {
        req = req.header("x-forwarded-for", c);
    }
    let status = req.send().await.unwrap().status();
    StatusCode::from_u16(status.as_u16()).unwrap()
}

/// A client that does not follow redirects (a login answers 303).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
