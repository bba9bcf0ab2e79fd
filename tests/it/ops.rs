//! Running it for a province (issue 15): start-up honesty, Meta's template
//! lifecycle, the account's health, what messages cost, and operations.

use std::process::Command;

/// `serve` with none of Meta's secrets names each one and exits 2 before
/// touching the database.
#[test]
fn serve_without_secrets_exits_2_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .arg("serve")
        .env("WA_SMILE__DATABASE__URL", &url)
        .env("WA_SMILE__SERVER__BIND", "127.0.0.1:0")
        .env("WA_SMILE__WHATSAPP__APP_SECRET", "only-this-one")
        .env_remove("WA_SMILE_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for key in ["access_token", "verify_token", "phone_number_id"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("whatsapp.{key} is not set"))),
            "{key} not named: {stderr}"
        );
    }
    assert!(!stderr.contains("app_secret"), "{stderr}");
    assert!(
        !dir.path().join("ops.db").exists(),
        "refused before creating the database"
    );
}

use crate::support;
use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::ServiceExt;
use wa_smile::config::Config;
use wa_smile::delivery::{deliver_due, Deliverer};
use wa_smile::http::{self, AppState};
use wa_smile::messages::Catalog;
use wa_smile::store::Db;
use wa_smile::testing;
use wa_smile::whatsapp::WhatsappClient;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

const SECRET: &str = "ops-app-secret";
const MESSAGES_PATH: &str = "/v25.0/106540352242922/messages";
const TEMPLATES_PATH: &str = "/v25.0/424242424242/message_templates";
/// Tuesday 3 March 2026, 10:00 WIB: inside the sending window.
const AT: &str = "2026-03-03T03:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn config(server: &MockServer, extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(String, String)> = [
        ("WA_SMILE__WHATSAPP__API_BASE", server.uri().as_str()),
        ("WA_SMILE__WHATSAPP__PHONE_NUMBER_ID", "106540352242922"),
        ("WA_SMILE__WHATSAPP__ACCESS_TOKEN", "test-access-token"),
        ("WA_SMILE__WHATSAPP__APP_SECRET", SECRET),
        ("WA_SMILE__WHATSAPP__WABA_ID", "424242424242"),
        ("WA_SMILE__WHATSAPP__MESSAGES_PER_SECOND", "1000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_sources(None, env).unwrap()
}

fn deliverer(config: &Config) -> Deliverer {
    let client =
        WhatsappClient::new(&config.whatsapp, std::time::Duration::from_millis(800)).unwrap();
    Deliverer::new(config, Arc::new(Catalog::load().unwrap()), client).unwrap()
}

struct Accept(AtomicUsize);

impl Respond for Accept {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"].as_str().unwrap().trim_start_matches('+')}],
            "messages": [{"id": format!("wamid.OPS{n}")}],
        }))
    }
}

async fn accepting(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(Accept(AtomicUsize::new(0)))
        .mount(server)
        .await;
}

async fn sends(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == MESSAGES_PATH)
        .count()
}

/// An overdue employer scanned at AT: its first reminder queued for now.
/// Returns (case id, outbox id).
async fn overdue(db: &Db, npp: &str, wa: &str) -> (i64, i64) {
    let (e,): (i64,) = db
        .query(
            "INSERT INTO employers (npp, name, branch, wa_id, contact_name, timezone, created_at, updated_at) \
             VALUES ($1, $2, 'PEKANBARU', $3, 'Ibu Sari', 'Asia/Jakarta', $4, $4) RETURNING id",
        )
        .bind(npp.to_owned())
        .bind(format!("PT {npp}"))
        .bind(wa.to_owned())
        .bind(at("2026-01-01T00:00:00Z"))
        .fetch_one_as(db)
        .await
        .unwrap();
    db.query(
        "INSERT INTO bills (employer_id, period, amount_minor, due_date, created_at, updated_at) \
         VALUES ($1, '2026-01', 150000000, $2, $3, $3)",
    )
    .bind(e)
    .bind("2026-03-01".parse::<NaiveDate>().unwrap())
    .bind(at("2026-01-01T00:00:00Z"))
    .execute(db)
    .await
    .unwrap();
    let c = Config::from_sources(None, Vec::<(String, String)>::new()).unwrap();
    wa_smile::scan::run(
        db,
        &wa_smile::scan::ScanContext::from_config(&c).unwrap(),
        at(AT),
    )
    .await
    .unwrap();
    db.query(
        "SELECT c.id, o.id FROM cases c JOIN outbox o ON o.case_id = c.id WHERE c.employer_id = $1",
    )
    .bind(e)
    .fetch_one_as(db)
    .await
    .unwrap()
}

/// Posts a signed webhook body through the real handler; its status.
async fn webhook(db: &Db, config: &Config, body: &Value) -> u16 {
    let raw = body.to_string();
    let app = http::router(AppState {
        db: db.clone(),
        config: Arc::new(config.clone()),
        workers: Default::default(),
    });
    let res = app
        .oneshot(
            Request::post("/webhooks/whatsapp")
                .header("content-type", "application/json")
                .header(
                    "x-hub-signature-256",
                    wa_smile::webhook::sign(SECRET.as_bytes(), raw.as_bytes()),
                )
                .body(Body::from(raw))
                .unwrap(),
        )
        .await
        .unwrap();
    res.status().as_u16()
}

fn change(field: &str, time: i64, value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "424242424242", "time": time,
        "changes": [{"field": field, "value": value}]}]})
}

fn template_event(event: &str, time: i64) -> Value {
    change(
        "message_template_status_update",
        time,
        json!({"event": event, "message_template_id": 123456789,
               "message_template_name": "wasmile_pengingat_iuran_1",
               "message_template_language": "id",
               "reason": if event == "PAUSED" { "LOW_QUALITY" } else { "NONE" }}),
    )
}

fn metric(name: &str, labels: &str) -> f64 {
    let text = wa_smile::metrics::handle().expect("recorder").render();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn quiet_reason(db: &Db, case_id: i64) -> Option<String> {
    let (r,): (Option<String>,) = db
        .query("SELECT quiet_reason FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one_as(db)
        .await
        .unwrap();
    r
}

async fn outbox_state(db: &Db, id: i64) -> String {
    let (s,): (String,) = db
        .query("SELECT state FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one_as(db)
        .await
        .unwrap();
    s
}

/// Meta's documented creation request for every template it lacks, the
/// one it has left alone, and each status read back and stored.
#[tokio::test]
async fn templates_sync_registers_missing_templates_in_metas_shape_and_stores_status() {
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let server = MockServer::start().await;
        let config = config(&server, &[]);
        Mock::given(method("GET"))
            .and(path(TEMPLATES_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [{"id": "111", "name": "wasmile_pengingat_iuran_1", "language": "id",
                          "category": "UTILITY", "status": "APPROVED",
                          "quality_score": {"score": "GREEN"}}],
                "paging": {"cursors": {"before": "", "after": ""}},
            })))
            .mount(&server)
            .await;
        let created = Arc::new(AtomicUsize::new(0));
        let counter = created.clone();
        Mock::given(method("POST"))
            .and(path(TEMPLATES_PATH))
            .respond_with(move |_: &wiremock::Request| {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                ResponseTemplate::new(200).set_body_json(
                    json!({"id": format!("9{n}"), "status": "PENDING", "category": "UTILITY"}),
                )
            })
            .mount(&server)
            .await;
        let api = wa_smile::templates_sync::TemplateApi::from_config(&config.whatsapp).unwrap();
        let catalog = Catalog::load().unwrap();
        let lines = wa_smile::templates_sync::sync(Some(db), &api, &catalog, "id", false, at(AT))
            .await
            .unwrap();
        let templates = catalog.names().count();
        assert_eq!(lines.len(), templates, "{}", t.name);
        assert_eq!(created.load(Ordering::SeqCst), templates - 1, "{}", t.name);

        let requests = server.received_requests().await.unwrap();
        let link = requests
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .find(|b| b["name"] == "wasmile_tautan_pembayaran")
            .expect("the payment link template was registered");
        assert_eq!(
            requests
                .iter()
                .find(|r| r.method.as_str() == "POST")
                .unwrap()
                .headers
                .get("authorization")
                .unwrap(),
            "Bearer test-access-token"
        );
        let def = catalog.get("payment_link").unwrap();
        let examples = catalog
            .body_params(
                "payment_link",
                &wa_smile::messages::MessageContext::sample(),
            )
            .unwrap();
        assert_eq!(
            link,
            json!({
                "name": "wasmile_tautan_pembayaran",
                "language": "id",
                "category": "UTILITY",
                "components": [
                    {"type": "BODY", "text": def.whatsapp.body.trim(),
                     "example": {"body_text": [examples]}},
                    {"type": "BUTTONS", "buttons": [
                        {"type": "QUICK_REPLY", "text": "Sudah bayar"},
                        {"type": "QUICK_REPLY", "text": "Hubungi petugas"},
                    ]},
                ],
            })
        );
        assert_eq!(
            link["components"][0]["example"]["body_text"][0]
                .as_array()
                .unwrap()
                .len(),
            6
        );

        let stored = wa_smile::templates_status::list(db).await.unwrap();
        assert_eq!(stored.len(), templates);
        let r1 = stored
            .iter()
            .find(|s| s.name == "wasmile_pengingat_iuran_1")
            .unwrap();
        assert_eq!(
            (r1.status.as_str(), r1.quality.as_deref()),
            ("APPROVED", Some("GREEN"))
        );
        assert!(stored
            .iter()
            .filter(|s| s.name != "wasmile_pengingat_iuran_1")
            .all(|s| s.status == "PENDING"));

        // A dry run registers nothing more.
        let before = server.received_requests().await.unwrap().len();
        let dry = wa_smile::templates_sync::sync(None, &api, &catalog, "id", true, at(AT))
            .await
            .unwrap();
        assert!(dry.iter().filter(|l| l.action == "would register").count() == templates - 1);
        let after = server.received_requests().await.unwrap();
        assert_eq!(after.len(), before + 1, "one GET, no POST");
    }
}

/// The simulator as Meta: sync registers, its approval webhook marks the
/// template APPROVED in our table.
#[tokio::test]
async fn templates_sync_against_the_simulator_reads_back_pending_then_approved() {
    let t = testing::sqlite().await.unwrap();
    let db = &t.db;
    let server = MockServer::start().await;
    let app = support::serve_app(db, config(&server, &[])).await;
    let (base, sim) =
        wa_smile::simulator::Simulator::start(wa_smile::simulator::SimulatorOptions {
            access_token: "test-access-token".into(),
            webhook_url: Some(format!("{}/webhooks/whatsapp", app.url)),
            app_secret: SECRET.into(),
            status_delays: [std::time::Duration::from_millis(50); 3],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut c = config(&server, &[]);
    c.whatsapp.api_base = base;
    let api = wa_smile::templates_sync::TemplateApi::from_config(&c.whatsapp).unwrap();
    let catalog = Catalog::load().unwrap();
    let lines = wa_smile::templates_sync::sync(Some(db), &api, &catalog, "id", false, at(AT))
        .await
        .unwrap();
    assert!(
        lines
            .iter()
            .all(|l| l.action == "registered" && l.status == "PENDING"),
        "{lines:?}"
    );
    assert_eq!(sim.templates(None).len(), lines.len());
    // Meta's review ends by webhook.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let all = wa_smile::templates_status::list(db).await.unwrap();
        if all.len() == lines.len() && all.iter().all(|s| s.status == "APPROVED") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{all:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A second sync registers nothing: everything exists.
    let again = wa_smile::templates_sync::sync(Some(db), &api, &catalog, "id", false, at(AT))
        .await
        .unwrap();
    assert!(again
        .iter()
        .all(|l| l.action == "exists" && l.status == "APPROVED"));
}

#[tokio::test]
async fn a_paused_template_holds_its_messages_with_a_reason_and_an_alert_until_reapproved() {
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let server = MockServer::start().await;
        accepting(&server).await;
        let config = config(&server, &[]);
        let (case_id, outbox_id) = overdue(db, "00077001", "6281234567801").await;
        let alerts = metric(
            "wa_smile_operator_alerts_total",
            "kind=\"template_blocked\"",
        );
        assert_eq!(
            webhook(db, &config, &template_event("PAUSED", 1_772_500_000)).await,
            200
        );
        // Redelivered: stored once, one alert.
        assert_eq!(
            webhook(db, &config, &template_event("PAUSED", 1_772_500_000)).await,
            200
        );
        assert!(
            metric(
                "wa_smile_operator_alerts_total",
                "kind=\"template_blocked\""
            ) >= alerts + 1.0
        );
        let d = deliverer(&config);
        let s = deliver_due(db, &d, at(AT)).await.unwrap();
        assert_eq!(s.sent, 0, "{}", t.name);
        assert_eq!(sends(&server).await, 0, "{}", t.name);
        assert_eq!(outbox_state(db, outbox_id).await, "queued");
        assert_eq!(
            quiet_reason(db, case_id).await.as_deref(),
            Some("template_paused")
        );
        assert_eq!(
            wa_smile::domain::QuietReason::TemplatePaused.describe(),
            "template dijeda oleh Meta"
        );
        // The operator sees it on every admin page.
        wa_smile::accounts::add_user(
            db,
            "admin",
            support::PASSWORD,
            wa_smile::accounts::Role::Admin,
            None,
        )
        .await
        .unwrap();
        let mut client = support::Client::new(db);
        client.login_ok("admin").await;
        let page = client.get("/cases").await;
        assert!(
            page.body
                .contains("wasmile_pengingat_iuran_1 (id) berstatus PAUSED")
                && page.body.contains("template dijeda oleh Meta"),
            "{}",
            t.name
        );
        // An older event arriving late changes nothing.
        assert_eq!(
            webhook(db, &config, &template_event("APPROVED", 1_772_400_000)).await,
            200
        );
        assert_eq!(
            deliver_due(db, &d, at(AT) + Duration::minutes(5))
                .await
                .unwrap()
                .sent,
            0
        );

        // Meta approves it again: the message goes at its next look.
        assert_eq!(
            webhook(db, &config, &template_event("APPROVED", 1_772_600_000)).await,
            200
        );
        let s = deliver_due(db, &d, at(AT) + Duration::minutes(10))
            .await
            .unwrap();
        assert_eq!(s.sent, 1, "{}", t.name);
        assert_eq!(outbox_state(db, outbox_id).await, "sent");
        let page = client.get("/cases").await;
        assert!(!page.body.contains("berstatus PAUSED"), "{}", t.name);
    }
}

#[tokio::test]
async fn a_tier_webhook_changes_the_daily_limit_and_a_restriction_halts_sending() {
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let server = MockServer::start().await;
        accepting(&server).await;
        let config = config(
            &server,
            &[("WA_SMILE__WHATSAPP__DAILY_UNIQUE_RECIPIENTS", "1")],
        );
        overdue(db, "00077011", "6281234567811").await;
        overdue(db, "00077012", "6281234567812").await;
        assert_eq!(
            wa_smile::account_health::daily_limit(db, 1).await.unwrap(),
            1
        );
        let d = deliverer(&config);
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap().sent,
            1,
            "{}",
            t.name
        );

        let tier = change(
            "phone_number_quality_update",
            1_772_500_000,
            json!({"display_phone_number": "6281510000175", "event": "UPGRADE",
                   "old_limit": "TIER_50", "current_limit": "TIER_250",
                   "max_daily_conversations_per_business": "TIER_250"}),
        );
        assert_eq!(webhook(db, &config, &tier).await, 200);
        assert_eq!(
            wa_smile::account_health::daily_limit(db, 1).await.unwrap(),
            250
        );
        // A recipient queued now: at the configured tier of 1 it would wait
        // for tomorrow; Meta's 250 lets it go.
        overdue(db, "00077014", "6281234567814").await;
        let s = deliver_due(db, &d, at(AT) + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(s.sent, 1, "the announced tier makes room: {}", t.name);
        let state = wa_smile::account_health::state(db).await.unwrap().unwrap();
        assert_eq!(state.tier.as_deref(), Some("TIER_250"));
        assert_eq!(state.quality.as_deref(), Some("UPGRADE"));

        let restricted = change(
            "account_update",
            1_772_600_000,
            json!({"phone_number": "6281510000175", "event": "ACCOUNT_RESTRICTION",
                   "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                                         "expiration": 1_773_000_000}]}),
        );
        assert_eq!(webhook(db, &config, &restricted).await, 200);
        let flags = wa_smile::delivery::halted(db).await.unwrap();
        assert_eq!(flags.len(), 1, "{}", t.name);
        assert_eq!(flags[0].0, wa_smile::delivery::FLAG_SENDING_PAUSED);
        assert!(
            flags[0].1.contains("RESTRICTED_BIZ_INITIATED_MESSAGING"),
            "{flags:?}"
        );
        overdue(db, "00077013", "6281234567813").await;
        let before = sends(&server).await;
        assert_eq!(
            deliver_due(db, &d, at(AT) + Duration::minutes(2))
                .await
                .unwrap()
                .sent,
            0
        );
        assert_eq!(sends(&server).await, before);
    }
}

#[tokio::test]
async fn pricing_is_stored_once_per_message_and_summed_per_branch() {
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let server = MockServer::start().await;
        accepting(&server).await;
        let config = config(
            &server,
            &[(
                "WA_SMILE__PRICING__RATE",
                r#"[{from="2025-07-01", category="utility", rupiah="300"}, {from="2026-03-01", category="utility", rupiah="350.50"}]"#,
            )],
        );
        let (_, o1) = overdue(db, "00077021", "6281234567821").await;
        let (_, o2) = overdue(db, "00077022", "6281234567822").await;
        let d = deliverer(&config);
        assert_eq!(deliver_due(db, &d, at(AT)).await.unwrap().sent, 2);
        let status = |outbox: i64, wamid: &str, billable: bool| {
            json!({"object": "whatsapp_business_account", "entry": [{"id": "424242424242", "changes": [{
                "field": "messages", "value": {"messaging_product": "whatsapp",
                "metadata": {"phone_number_id": "106540352242922"},
                "statuses": [{"id": wamid, "status": "sent", "timestamp": "1772506800",
                              "recipient_id": "6281234567821",
                              "biz_opaque_callback_data": outbox.to_string(),
                              "pricing": {"billable": billable, "pricing_model": "PMP",
                                          "type": if billable { "regular" } else { "free_customer_service" },
                                          "category": "utility"}}]}}]}]})
        };
        let (w1,): (String,) = db
            .query("SELECT wamid FROM outbox WHERE id = $1")
            .bind(o1)
            .fetch_one_as(db)
            .await
            .unwrap();
        let (w2,): (String,) = db
            .query("SELECT wamid FROM outbox WHERE id = $1")
            .bind(o2)
            .fetch_one_as(db)
            .await
            .unwrap();
        for _ in 0..2 {
            assert_eq!(webhook(db, &config, &status(o1, &w1, true)).await, 200);
        }
        assert_eq!(webhook(db, &config, &status(o2, &w2, false)).await, 200);
        let rates = wa_smile::pricing::Rates::from_config(&config.pricing);
        let s = wa_smile::pricing::summary(
            db,
            &rates,
            chrono_tz::Asia::Jakarta,
            None,
            at("2026-03-01T00:00:00Z"),
            at("2026-03-04T00:00:00Z"),
            wa_smile::domain::Money::from_rupiah(3_505_000),
        )
        .await
        .unwrap();
        assert_eq!(s.total.messages, 2, "{}", t.name);
        assert_eq!(s.total.billable, 1, "{}", t.name);
        assert_eq!(
            s.total.cost,
            wa_smile::domain::Money::parse("350.50").unwrap()
        );
        assert_eq!(s.by_branch.len(), 1);
        assert_eq!(s.by_branch[0].branch, "PEKANBARU");
        assert_eq!(s.cost_per_rupiah.as_deref(), Some("0.000100"));
        // Before the March rate the February one applied.
        assert_eq!(
            rates.price("utility", "2026-02-28".parse().unwrap()),
            rust_decimal::Decimal::from(300)
        );
    }
}

/// `/metrics` behind `server.metrics_token`, with the request metrics by
/// route, the webhook outcomes (signature failures too), templates by
/// status and the outbox's oldest due age; a request id on every response.
#[tokio::test]
async fn metrics_need_the_token_and_carry_the_wa_smile_figures() {
    let t = testing::sqlite().await.unwrap();
    let db = &t.db;
    let server = MockServer::start().await;
    let config = config(&server, &[("WA_SMILE__SERVER__METRICS_TOKEN", "scrape-me")]);
    overdue(db, "00077031", "6281234567831").await;
    assert_eq!(
        webhook(db, &config, &template_event("PAUSED", 1_772_500_000)).await,
        200
    );
    let app = http::router(AppState {
        db: db.clone(),
        config: Arc::new(config.clone()),
        workers: Default::default(),
    });
    let unsigned = app
        .clone()
        .oneshot(
            Request::post("/webhooks/whatsapp")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert!(unsigned.headers().get("x-request-id").is_some());
    let get = |auth: Option<&str>| {
        let mut b = Request::get("/metrics").header("x-request-id", "from-the-proxy");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        app.clone().oneshot(b.body(Body::empty()).unwrap())
    };
    assert_eq!(get(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(
        get(Some("Bearer wrong")).await.unwrap().status().as_u16(),
        401
    );
    let res = get(Some("Bearer scrape-me")).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["x-request-id"], "from-the-proxy");
    let text = String::from_utf8(
        http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for needle in [
        "wa_smile_templates{status=\"PAUSED\"} 1",
        "wa_smile_webhooks_total{field=\"message_template_status_update\",outcome=\"stored\"}",
        "wa_smile_webhooks_total{field=\"unknown\",outcome=\"signature\"}",
        "wa_smile_http_requests_total{route=\"/webhooks/whatsapp\",method=\"POST\",status=\"401\"}",
        "wa_smile_http_request_duration_seconds_bucket{route=\"/webhooks/whatsapp\"",
        "wa_smile_outbox_oldest_due_age_seconds ",
    ] {
        assert!(text.contains(needle), "{needle} missing");
    }
}
