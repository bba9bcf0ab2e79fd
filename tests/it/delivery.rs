//! The delivery worker against wiremock standing in for graph.facebook.com,
//! on both backends: what goes on the wire per message kind, each error
//! class, crash safety, the caps and tiers, the send-time re-check, and
//! status settlement.

use crate::support::{cloud_config, fixtures, TestApp, MESSAGES_PATH, PHONE_NUMBER_ID, TOKEN};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use wa_smile::config::Config;
use wa_smile::delivery::{
    self, deliver_due, record_status, DeliverSummary, Deliverer, DeliveryOptions, MessageStatus,
    StatusUpdate,
};
use wa_smile::messages::Catalog;
use wa_smile::scan::{self, ScanContext};
use wa_smile::store::Db;
use wa_smile::testing;
use wa_smile::whatsapp::WhatsappClient;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Tuesday 3 March 2026, 10:00 WIB: inside the sending window.
const AT: &str = "2026-03-03T03:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn deliverer(config: &Config) -> Deliverer {
    let client =
        WhatsappClient::new(&config.whatsapp, std::time::Duration::from_millis(800)).unwrap();
    Deliverer::new(config, Arc::new(Catalog::load().unwrap()), client).unwrap()
}

/// Answers like Meta, with a fresh wamid per request, after a delay.
struct Accept(AtomicUsize, std::time::Duration);

impl Respond for Accept {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        ResponseTemplate::new(200)
            .set_body_json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"].as_str().unwrap().trim_start_matches('+')}],
                "messages": [{"id": format!("wamid.TEST{n}")}],
            }))
            .set_delay(self.1)
    }
}

fn accept() -> Accept {
    Accept(AtomicUsize::new(0), std::time::Duration::ZERO)
}

/// Slower than the client's timeout: Meta may have taken it, we never hear.
fn hang() -> Accept {
    Accept(AtomicUsize::new(1000), std::time::Duration::from_secs(3))
}

fn meta_error(code: i64, message: &str) -> Value {
    json!({"error": {"message": format!("(#{code}) {message}"), "type": "OAuthException",
                     "code": code, "fbtrace_id": "Ftest"}})
}

/// An overdue employer scanned at AT: a case with its stage reminder queued
/// for now. Returns (employer id, case id, outbox id).
async fn overdue(db: &Db, npp: &str, wa: &str, amount_minor: i64) -> (i64, i64, i64) {
    let f = fixtures(db);
    let e = f.employer(npp).wa(wa).tz("Asia/Jakarta").create().await;
    f.bill(npp, "2026-01", amount_minor)
        .due_on("2026-02-16")
        .payment_code("12345678901")
        .create()
        .await;
    let config = Config::from_sources(None, Vec::<(String, String)>::new()).unwrap();
    scan::run(db, &ScanContext::from_config(&config).unwrap(), at(AT))
        .await
        .unwrap();
    let r = db
        .query("SELECT c.id AS case_id, o.id AS outbox_id, o.due_at FROM cases c JOIN outbox o ON o.case_id = c.id WHERE c.employer_id = $1")
        .bind(e)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(r.get::<DateTime<Utc>>("due_at").unwrap(), at(AT));
    (e, r.get("case_id").unwrap(), r.get("outbox_id").unwrap())
}

async fn queue(
    db: &Db,
    case_id: i64,
    employer_id: i64,
    key: &str,
    message: &str,
    kind: &str,
    wa: &str,
) -> i64 {
    db.query(
        "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '{}', 'queued', $7, $7, $7) RETURNING id",
    )
    .bind(case_id)
    .bind(employer_id)
    .bind(key.to_owned())
    .bind(message.to_owned())
    .bind(kind.to_owned())
    .bind(wa.to_owned())
    .bind(at(AT))
    .fetch_one(db)
    .await
    .unwrap()
    .get("id")
    .unwrap()
}

#[derive(Debug)]
struct Row {
    state: String,
    wamid: Option<String>,
    attempts: i64,
    due_at: DateTime<Utc>,
    kind: String,
}

async fn row(db: &Db, id: i64) -> Row {
    let r = db
        .query("SELECT state, wamid, attempts, due_at, kind FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap();
    Row {
        state: r.get("state").unwrap(),
        wamid: r.get("wamid").unwrap(),
        attempts: r.get("attempts").unwrap(),
        due_at: r.get("due_at").unwrap(),
        kind: r.get("kind").unwrap(),
    }
}

async fn events(db: &Db, case_id: i64, kind: &str) -> Vec<Value> {
    wa_smile::case_log::for_case(db, case_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.data)
        .collect()
}

async fn case_field(db: &Db, case_id: i64) -> (String, Option<String>, Option<DateTime<Utc>>) {
    let r = db
        .query("SELECT status, quiet_reason, next_action_at FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one(db)
        .await
        .unwrap();
    (
        r.get("status").unwrap(),
        r.get("quiet_reason").unwrap(),
        r.get("next_action_at").unwrap(),
    )
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn summary(sent: u64, failed: u64, retried: u64, skipped: u64) -> DeliverSummary {
    DeliverSummary {
        sent,
        failed,
        retried,
        skipped,
        ..Default::default()
    }
}

/// The operator-alert counter of this kind, from the process's recorder.
fn operator_alerts(kind: &str) -> f64 {
    let text = wa_smile::metrics::handle().expect("recorder").render();
    let prefix = format!("wa_smile_operator_alerts_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The app with a mock Cloud API on every backend.
async fn setup(extra: &[(&str, &str)]) -> Vec<TestApp> {
    TestApp::builder().cloud_api().envs(extra).all().await
}

#[tokio::test]
async fn a_due_reminder_goes_out_as_its_template_with_the_outbox_id_and_is_recorded() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .respond_with(accept())
            .expect(1)
            .mount(&server)
            .await;
        let (_e, case_id, outbox_id) =
            overdue(db, "00000001", "6281234567890", 1_250_000_000).await;
        let d = deliverer(&config);
        let s = deliver_due(db, &d, at(AT)).await.unwrap();
        assert_eq!(s, summary(1, 0, 0, 0), "{}", t.name);

        // Exactly what the catalog renders for this case, from the database.
        let src = delivery::ContextSource::from_config(&config).unwrap();
        let ctx = delivery::load_context(db, &src, case_id, at(AT))
            .await
            .unwrap()
            .unwrap();
        let template = Catalog::load()
            .unwrap()
            .whatsapp_template("reminder_3", &ctx, "id")
            .unwrap();
        let sent = bodies(&server).await;
        assert_eq!(
            sent[0],
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": sent[0]["to"],
                "type": "template",
                "template": serde_json::to_value(&template).unwrap(),
                "biz_opaque_callback_data": outbox_id.to_string(),
            }),
            "{}",
            t.name
        );
        assert!(sent[0]["to"].as_str().unwrap().ends_with("6281234567890"));
        assert_eq!(sent[0]["template"]["language"]["code"], "id");

        let r = row(db, outbox_id).await;
        assert_eq!(
            (r.state.as_str(), r.wamid.as_deref()),
            ("sent", Some("wamid.TEST1"))
        );
        assert_eq!(
            events(db, case_id, "message_sent").await,
            vec![
                json!({"outbox_id": outbox_id, "template": "reminder_3", "kind": "template", "wamid": "wamid.TEST1"})
            ]
        );
        // Nothing left: a second pass sends nothing.
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap(),
            DeliverSummary::default()
        );
        assert!(wa_smile::audit::verify(db).await.unwrap().broken.is_none());
    }
}

#[tokio::test]
async fn a_sent_reminder_keeps_the_exact_text_the_employer_saw() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (_e, case_id, outbox_id) =
            overdue(db, "00000001", "6281234567890", 1_250_000_000).await;
        // Queued by the scan, the reminder's text is not known yet: it is
        // rendered from the case when it leaves.
        let queued = wa_smile::outbox::get(db, outbox_id).await.unwrap().unwrap();
        assert_eq!(queued.text, None, "{}", t.name);
        let d = deliverer(&config);
        deliver_due(db, &d, at(AT)).await.unwrap();

        let src = delivery::ContextSource::from_config(&config).unwrap();
        let ctx = delivery::load_context(db, &src, case_id, at(AT))
            .await
            .unwrap()
            .unwrap();
        let want = Catalog::load()
            .unwrap()
            .render_whatsapp_body("reminder_3", &ctx)
            .unwrap();
        let sent = wa_smile::outbox::get(db, outbox_id).await.unwrap().unwrap();
        assert_eq!(
            sent.state,
            wa_smile::outbox::OutboxState::Sent,
            "{}",
            t.name
        );
        assert_eq!(sent.text.as_deref(), Some(want.as_str()), "{}", t.name);
        assert!(want.contains("12.500.000"), "{}: {want}", t.name);
    }
}

#[tokio::test]
async fn free_form_goes_as_text_or_interactive_inside_the_window_and_as_the_template_outside() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let wa = "6281234567891";
        let (e, case_id, reminder) = overdue(db, "00000002", wa, 500_000_000).await;
        db.query("UPDATE outbox SET state = 'cancelled' WHERE id = $1")
            .bind(reminder)
            .execute(db)
            .await
            .unwrap();
        db.query("UPDATE cases SET last_inbound_at = $2 WHERE id = $1")
            .bind(case_id)
            .bind(at(AT) - Duration::hours(1))
            .execute(db)
            .await
            .unwrap();
        let text = queue(db, case_id, e, "reply:1", "amount_breakdown", "text", wa).await;
        let d = deliverer(&config);
        assert_eq!(deliver_due(db, &d, at(AT)).await.unwrap().sent, 1);
        // The pair rate holds the second message to the same employer.
        let inter = queue(
            db,
            case_id,
            e,
            "reply:2",
            "amount_breakdown",
            "interactive",
            wa,
        )
        .await;
        let later = at(AT) + Duration::seconds(10);
        assert_eq!(deliver_due(db, &d, later).await.unwrap().sent, 1);
        // 25 hours after their last message the window is shut: the template.
        db.query("UPDATE cases SET last_inbound_at = $2 WHERE id = $1")
            .bind(case_id)
            .bind(at(AT) - Duration::hours(25))
            .execute(db)
            .await
            .unwrap();
        let tmpl = queue(db, case_id, e, "reply:3", "amount_breakdown", "text", wa).await;
        assert_eq!(
            deliver_due(db, &d, later + Duration::seconds(10))
                .await
                .unwrap()
                .sent,
            1
        );

        let sent = bodies(&server).await;
        let types: Vec<&str> = sent.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["text", "interactive", "template"], "{}", t.name);
        let ids: Vec<String> = [text, inter, tmpl].iter().map(|i| i.to_string()).collect();
        let callbacks: Vec<&str> = sent
            .iter()
            .map(|b| b["biz_opaque_callback_data"].as_str().unwrap())
            .collect();
        assert_eq!(callbacks, ids);
        assert!(sent[0]["text"]["body"].as_str().unwrap().len() > 20);
        assert_eq!(sent[1]["interactive"]["type"], "button");
        assert_eq!(sent[2]["template"]["name"], "wasmile_rincian_tagihan");
    }
}

#[tokio::test]
async fn retryable_errors_back_off_then_succeed() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        // A 5xx, a 429 (130429), then a timeout, then success.
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(
                ResponseTemplate::new(500)
                    .set_body_json(meta_error(131000, "Something went wrong")),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(
                ResponseTemplate::new(429).set_body_json(meta_error(130429, "Rate limit hit")),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(hang())
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (_e, case_id, id) = overdue(db, "00000003", "6281234567892", 500_000_000).await;
        let d = deliverer(&config);
        let mut now = at(AT);
        let mut dues = Vec::new();
        for _ in 0..2 {
            let s = deliver_due(db, &d, now).await.unwrap();
            assert_eq!(
                s,
                summary(0, 0, 1, 0),
                "{} {:?} {:?}",
                t.name,
                dues,
                row(db, id).await
            );
            let r = row(db, id).await;
            assert_eq!(r.state, "queued");
            assert!(r.due_at > now, "backs off");
            dues.push(r.due_at - now);
            // Not due yet: nothing happens.
            assert_eq!(
                deliver_due(db, &d, now).await.unwrap(),
                DeliverSummary::default()
            );
            now = r.due_at;
        }
        // Exponential (±25% jitter): the second wait is longer than the first.
        assert!(dues[1] > dues[0], "{dues:?}");
        // A timeout is an unknown outcome: it waits out the grace period for
        // a status webhook (none comes here), then goes again.
        assert_eq!(deliver_due(db, &d, now).await.unwrap(), summary(0, 0, 1, 0));
        assert_eq!(row(db, id).await.state, "sending", "awaiting its status");
        let grace = Duration::from_std(d.options.grace).unwrap();
        assert_eq!(
            deliver_due(db, &d, now + grace - Duration::seconds(1))
                .await
                .unwrap(),
            DeliverSummary::default()
        );
        now = now + grace + Duration::seconds(1);
        assert_eq!(deliver_due(db, &d, now).await.unwrap(), summary(1, 0, 0, 0));
        let r = row(db, id).await;
        assert_eq!((r.state.as_str(), r.attempts), ("sent", 4));
        assert_eq!(events(db, case_id, "message_sent").await.len(), 1);
    }
}

#[tokio::test]
async fn pair_rate_limit_waits_four_to_the_n_and_max_attempts_fail_visibly() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(meta_error(131056, "Pair rate limit hit")),
            )
            .mount(&server)
            .await;
        let (_e, case_id, id) = overdue(db, "00000004", "6281234567893", 500_000_000).await;
        let d = deliverer(&config);
        let mut now = at(AT);
        for n in 1..=4u32 {
            assert_eq!(
                deliver_due(db, &d, now).await.unwrap(),
                summary(0, 0, 1, 0),
                "{}",
                t.name
            );
            let r = row(db, id).await;
            assert_eq!(r.due_at - now, Duration::seconds(4i64.pow(n)));
            now = r.due_at;
        }
        assert_eq!(deliver_due(db, &d, now).await.unwrap(), summary(0, 1, 0, 0));
        assert_eq!(row(db, id).await.state, "failed");
        let failed = events(db, case_id, "message_failed").await;
        assert_eq!(failed[0]["code"], 131056);
        assert_eq!(case_field(db, case_id).await.0, "needs_officer");
    }
}

#[tokio::test]
async fn a_permanent_error_fails_the_row_at_once_and_asks_an_officer() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(ResponseTemplate::new(400).set_body_json(meta_error(
                132001,
                "Template name does not exist in the translation",
            )))
            .expect(1)
            .mount(&server)
            .await;
        let (_e, case_id, id) = overdue(db, "00000005", "6281234567894", 500_000_000).await;
        let d = deliverer(&config);
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap(),
            summary(0, 1, 0, 0),
            "{}",
            t.name
        );
        assert_eq!(row(db, id).await.state, "failed");
        let failed = events(db, case_id, "message_failed").await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["code"], 132001);
        assert_eq!(
            failed[0]["title"],
            "(#132001) Template name does not exist in the translation"
        );
        assert_eq!(case_field(db, case_id).await.0, "needs_officer");
    }
}

#[tokio::test]
async fn an_expired_token_alerts_and_stops_sending_until_resumed() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(meta_error(190, "Error validating access token"))
                    // Both requests are in flight when the first 190 comes.
                    .set_delay(std::time::Duration::from_millis(200)),
            )
            .mount(&server)
            .await;
        let (_, _, a) = overdue(db, "00000006", "6281234567895", 500_000_000).await;
        let (_, _, b) = overdue(db, "00000007", "6281234567896", 500_000_000).await;
        let d = deliverer(&config);
        let alerts_before = operator_alerts("auth_expired");
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap(),
            DeliverSummary {
                halted: Some("auth_expired"),
                ..Default::default()
            },
            "{}",
            t.name
        );
        assert_eq!(
            operator_alerts("auth_expired") - alerts_before,
            1.0,
            "one halt, one operator alert"
        );
        let flags = delivery::halted(db).await.unwrap();
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].0, "auth_expired");
        // Nothing failed: the rows wait, unattempted, for a new token.
        for id in [a, b] {
            let r = row(db, id).await;
            assert_eq!((r.state.as_str(), r.attempts), ("queued", 0));
        }
        let before = server.received_requests().await.unwrap().len();
        assert!(before <= 2);
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap(),
            DeliverSummary::default()
        );
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            before,
            "stopped"
        );

        server.reset().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        assert_eq!(delivery::resume(db, None).await.unwrap(), 1);
        assert_eq!(deliver_due(db, &d, at(AT)).await.unwrap().sent, 2);
    }
}

#[tokio::test]
async fn a_restricted_account_pauses_all_sending() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(ResponseTemplate::new(400).set_body_json(meta_error(
                368,
                "Temporarily blocked for policies violations",
            )))
            .mount(&server)
            .await;
        overdue(db, "00000008", "6281234567897", 500_000_000).await;
        let d = deliverer(&config);
        deliver_due(db, &d, at(AT)).await.unwrap();
        let flags = delivery::halted(db).await.unwrap();
        assert_eq!(flags[0].0, "sending_paused", "{}", t.name);
        assert!(flags[0].1.contains("368"));
        // Persisted: another worker (another pool) sends nothing either.
        let other = t.connect_again().await.unwrap();
        assert_eq!(
            deliver_due(&other, &d, at(AT) + Duration::hours(1))
                .await
                .unwrap(),
            DeliverSummary::default()
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_claim_orphaned_by_a_crash_is_held_for_a_late_status_then_resent() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (_, _, a) = overdue(db, "00000009", "6281234567898", 500_000_000).await;
        let (_, case_b, b) = overdue(db, "00000010", "6281234567899", 500_000_000).await;
        // A worker claimed both and died before sending (or before writing).
        db.query("UPDATE outbox SET state = 'sending', attempts = 1, lease_until = $1")
            .bind(at(AT) + Duration::minutes(5))
            .execute(db)
            .await
            .unwrap();
        let d = deliverer(&config);
        // Lease still running, then expired but inside the grace period: held.
        for now in [
            at(AT) + Duration::minutes(1),
            at(AT) + Duration::minutes(10),
        ] {
            assert_eq!(
                deliver_due(db, &d, now).await.unwrap(),
                DeliverSummary::default(),
                "{}",
                t.name
            );
        }
        // Meanwhile a status for `b` arrives, matched by its callback data.
        assert!(record_status(
            db,
            StatusUpdate {
                wamid: "wamid.LOST".into(),
                status: MessageStatus::Delivered,
                timestamp: at(AT) + Duration::minutes(11),
                recipient: Some("6281234567899".into()),
                callback_data: Some(b),
                error: None,
            }
        )
        .await
        .unwrap());
        // After the grace period only `a` is sent again.
        let now = at(AT) + Duration::minutes(20);
        assert_eq!(deliver_due(db, &d, now).await.unwrap().sent, 1);
        let sent = bodies(&server).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["biz_opaque_callback_data"], a.to_string());
        let rb = row(db, b).await;
        assert_eq!(
            (rb.state.as_str(), rb.wamid.as_deref()),
            ("delivered", Some("wamid.LOST"))
        );
        assert_eq!(events(db, case_b, "message_delivered").await.len(), 1);
        assert_eq!(events(db, case_b, "message_sent").await[0]["via"], "status");
    }
}

#[tokio::test]
async fn a_lost_http_response_is_settled_by_the_status_and_not_resent() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(hang())
            .mount(&server)
            .await;
        let (_, case_id, id) = overdue(db, "00000011", "6281234567892", 500_000_000).await;
        let d = deliverer(&config);
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap(),
            summary(0, 0, 1, 0),
            "{}",
            t.name
        );
        // Meta did take it: its `sent` status carries our outbox id.
        let update = StatusUpdate {
            wamid: "wamid.LATE".into(),
            status: MessageStatus::Sent,
            timestamp: at(AT) + Duration::seconds(5),
            recipient: None,
            callback_data: Some(id),
            error: None,
        };
        assert!(record_status(db, update.clone()).await.unwrap());
        assert!(!record_status(db, update).await.unwrap(), "recorded once");
        let r = row(db, id).await;
        assert_eq!(
            (r.state.as_str(), r.wamid.as_deref()),
            ("sent", Some("wamid.LATE"))
        );
        assert_eq!(
            deliver_due(db, &d, at(AT) + Duration::hours(2))
                .await
                .unwrap(),
            DeliverSummary::default()
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        assert_eq!(events(db, case_id, "message_sent").await.len(), 1);
    }
}

#[tokio::test]
async fn statuses_stay_monotonic_and_are_recorded_once() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (_, case_id, id) = overdue(db, "00000012", "6281234567890", 500_000_000).await;
        deliver_due(db, &deliverer(&config), at(AT)).await.unwrap();
        let st = |status, secs| StatusUpdate {
            wamid: "wamid.TEST1".into(),
            status,
            timestamp: at(AT) + Duration::seconds(secs),
            recipient: Some("6281234567890".into()),
            callback_data: Some(id),
            error: None,
        };
        assert!(record_status(db, st(MessageStatus::Read, 30))
            .await
            .unwrap());
        assert_eq!(row(db, id).await.state, "read", "{}", t.name);
        assert!(record_status(db, st(MessageStatus::Delivered, 20))
            .await
            .unwrap());
        assert!(record_status(db, st(MessageStatus::Sent, 10))
            .await
            .unwrap());
        assert_eq!(
            row(db, id).await.state,
            "read",
            "a late status never goes back"
        );
        assert!(!record_status(db, st(MessageStatus::Read, 30))
            .await
            .unwrap());
        assert!(!record_status(db, st(MessageStatus::Delivered, 20))
            .await
            .unwrap());
        assert_eq!(events(db, case_id, "message_read").await.len(), 1);
        assert_eq!(events(db, case_id, "message_delivered").await.len(), 1);
        assert_eq!(events(db, case_id, "message_sent").await.len(), 1);
        // Unknown messages are ignored.
        let mut unknown = st(MessageStatus::Read, 1);
        unknown.wamid = "wamid.OTHER".into();
        unknown.callback_data = None;
        assert!(!record_status(db, unknown).await.unwrap());
    }
}

#[tokio::test]
async fn a_failed_status_outside_the_window_queues_the_template_form() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let wa = "6281234567890";
        let (e, case_id, reminder) = overdue(db, "00000013", wa, 500_000_000).await;
        db.query("UPDATE outbox SET state = 'cancelled' WHERE id = $1")
            .bind(reminder)
            .execute(db)
            .await
            .unwrap();
        db.query("UPDATE cases SET last_inbound_at = $2 WHERE id = $1")
            .bind(case_id)
            .bind(at(AT) - Duration::hours(23))
            .execute(db)
            .await
            .unwrap();
        let id = queue(db, case_id, e, "reply:x", "amount_breakdown", "text", wa).await;
        let d = deliverer(&config);
        assert_eq!(deliver_due(db, &d, at(AT)).await.unwrap().sent, 1);
        assert!(record_status(
            db,
            StatusUpdate {
                wamid: "wamid.TEST1".into(),
                status: MessageStatus::Failed,
                timestamp: at(AT) + Duration::seconds(3),
                recipient: None,
                callback_data: Some(id),
                error: Some((131047, "Re-engagement message".into())),
            }
        )
        .await
        .unwrap());
        assert_eq!(row(db, id).await.state, "failed", "{}", t.name);
        let failed = events(db, case_id, "message_failed").await;
        assert_eq!(
            (failed[0]["code"].clone(), failed[0]["title"].clone()),
            (json!(131047), json!("Re-engagement message"))
        );
        let fallback: i64 = db
            .query("SELECT id FROM outbox WHERE fallback_of = $1 AND kind = 'template' AND state = 'queued'")
            .bind(id).fetch_one(db).await.unwrap().get("id").unwrap();
        // Not an officer matter: the template goes out instead.
        assert_eq!(case_field(db, case_id).await.0, "open");
        db.query("UPDATE outbox SET due_at = $2 WHERE id = $1")
            .bind(fallback)
            .bind(at(AT))
            .execute(db)
            .await
            .unwrap();
        assert_eq!(
            deliver_due(db, &d, at(AT) + Duration::minutes(1))
                .await
                .unwrap()
                .sent,
            1
        );
        assert_eq!(bodies(&server).await[1]["type"], "template");
    }
}

#[tokio::test]
async fn a_synchronous_131047_on_free_form_resends_as_the_template() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(meta_error(131047, "Re-engagement message")),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let wa = "6281234567890";
        let (e, case_id, reminder) = overdue(db, "00000014", wa, 500_000_000).await;
        db.query("UPDATE outbox SET state = 'cancelled' WHERE id = $1")
            .bind(reminder)
            .execute(db)
            .await
            .unwrap();
        db.query("UPDATE cases SET last_inbound_at = $2 WHERE id = $1")
            .bind(case_id)
            .bind(at(AT) - Duration::hours(1))
            .execute(db)
            .await
            .unwrap();
        let id = queue(db, case_id, e, "reply:y", "amount_breakdown", "text", wa).await;
        let d = deliverer(&config);
        // Rejected, so the pair rate holds no claim: the template goes at once.
        let s = deliver_due(db, &d, at(AT)).await.unwrap();
        assert_eq!(s, summary(1, 0, 1, 0), "{}", t.name);
        let r = row(db, id).await;
        assert_eq!((r.state.as_str(), r.kind.as_str()), ("sent", "template"));
        let types: Vec<String> = bodies(&server)
            .await
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types, ["text", "template"]);
    }
}

#[tokio::test]
async fn a_case_paid_or_paused_after_queueing_is_not_reminded_and_says_why() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .expect(0)
            .mount(&server)
            .await;
        let (e1, paid_case, paid_row) = overdue(db, "00000015", "6281234567890", 500_000_000).await;
        let (_, paused_case, paused_row) =
            overdue(db, "00000016", "6281234567891", 500_000_000).await;
        let (e3, _, opted_row) = overdue(db, "00000017", "6281234567892", 500_000_000).await;
        // Paid through a path that did not cancel the queued reminder.
        db.query(
            "UPDATE bills SET paid_minor = amount_minor, settled_at = $2 WHERE employer_id = $1",
        )
        .bind(e1)
        .bind(at(AT))
        .execute(db)
        .await
        .unwrap();
        db.query("UPDATE cases SET status = 'resolved', resolved_at = $2 WHERE id = $1")
            .bind(paid_case)
            .bind(at(AT))
            .execute(db)
            .await
            .unwrap();
        db.query("UPDATE cases SET paused_until = $2 WHERE id = $1")
            .bind(paused_case)
            .bind(at(AT) + Duration::days(3))
            .execute(db)
            .await
            .unwrap();
        db.query("UPDATE employers SET opted_out_at = $2 WHERE id = $1")
            .bind(e3)
            .bind(at(AT))
            .execute(db)
            .await
            .unwrap();
        let s = deliver_due(db, &deliverer(&config), at(AT)).await.unwrap();
        assert_eq!(s, summary(0, 0, 0, 3), "{}", t.name);
        for (id, reason) in [
            (paid_row, "case_resolved"),
            (paused_row, "paused"),
            (opted_row, "opted_out"),
        ] {
            assert_eq!(row(db, id).await.state, "skipped");
            let case_id: i64 = db
                .query("SELECT case_id FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_one(db)
                .await
                .unwrap()
                .get("case_id")
                .unwrap();
            let skipped = events(db, case_id, "message_skipped").await;
            assert_eq!(
                skipped,
                vec![json!({"outbox_id": id, "message": "reminder_3", "reason": reason})]
            );
        }
    }
}

#[tokio::test]
async fn outside_the_window_and_over_the_daily_cap_messages_wait_with_a_reason() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (e, case_id, id) = overdue(db, "00000018", "6281234567890", 500_000_000).await;
        let d = deliverer(&config);
        // 21:00 WIB: the window is closed; next opening Wednesday 08:00 WIB.
        let evening = at("2026-03-03T14:00:00Z");
        assert_eq!(
            deliver_due(db, &d, evening).await.unwrap(),
            DeliverSummary::default(),
            "{}",
            t.name
        );
        let r = row(db, id).await;
        assert_eq!(
            (r.state.as_str(), r.attempts, r.due_at),
            ("queued", 0, at("2026-03-04T01:00:00Z"))
        );
        let (_, quiet, next) = case_field(db, case_id).await;
        assert_eq!(
            (quiet.as_deref(), next),
            (Some("window_closed"), Some(at("2026-03-04T01:00:00Z")))
        );
        assert_eq!(deliver_due(db, &d, r.due_at).await.unwrap().sent, 1);

        // A second stage reminder the same local day waits for tomorrow.
        let second = queue(
            db,
            case_id,
            e,
            &format!("case:{case_id}:stage:warning"),
            "warning",
            "template",
            "6281234567890",
        )
        .await;
        let noon = at("2026-03-04T05:00:00Z");
        assert_eq!(
            deliver_due(db, &d, noon).await.unwrap(),
            DeliverSummary::default()
        );
        let r = row(db, second).await;
        assert_eq!(
            (r.state.as_str(), r.due_at),
            ("queued", at("2026-03-05T01:00:00Z"))
        );
        assert_eq!(
            case_field(db, case_id).await.1.as_deref(),
            Some("daily_cap")
        );
    }
}

#[tokio::test]
async fn over_the_daily_tier_the_largest_and_oldest_arrears_go_first() {
    for app in setup(&[("WA_SMILE__WHATSAPP__DAILY_UNIQUE_RECIPIENTS", "2")]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (_, small, _) = overdue(db, "00000019", "6281234567890", 100_000_000).await;
        let (_, large, _) = overdue(db, "00000020", "6281234567891", 900_000_000).await;
        let (_, middle, _) = overdue(db, "00000021", "6281234567892", 500_000_000).await;
        let d = deliverer(&config);
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap().sent,
            2,
            "{}",
            t.name
        );
        let sent: Vec<String> = bodies(&server)
            .await
            .iter()
            .map(|b| b["to"].as_str().unwrap().trim_start_matches('+').to_owned())
            .collect();
        let mut sent_sorted = sent.clone();
        sent_sorted.sort();
        assert_eq!(sent_sorted, ["6281234567891", "6281234567892"]);
        let (_, quiet, next) = case_field(db, small).await;
        assert_eq!(quiet.as_deref(), Some("daily_tier"));
        assert_eq!(next, Some(at(AT) + Duration::hours(24)));
        for c in [large, middle] {
            assert_ne!(case_field(db, c).await.1.as_deref(), Some("daily_tier"));
        }
        // A day later the tier has room again.
        assert_eq!(
            deliver_due(db, &d, at(AT) + Duration::hours(24))
                .await
                .unwrap()
                .sent,
            1
        );
    }
}

#[tokio::test]
async fn two_workers_on_postgres_never_send_the_same_row() {
    let Some(t) = testing::postgres().await.unwrap() else {
        return;
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(Accept(
            AtomicUsize::new(0),
            std::time::Duration::from_millis(20),
        ))
        .mount(&server)
        .await;
    let config = cloud_config(&server, &[]);
    let f = fixtures(&t.db);
    let npps: Vec<String> = (0..60).map(|i| format!("{:08}", 100 + i)).collect();
    f.employers(
        npps.iter()
            .enumerate()
            .map(|(i, npp)| {
                f.employer(npp)
                    .wa(&format!("62812{:08}", i))
                    .tz("Asia/Jakarta")
            })
            .collect(),
    )
    .await;
    f.bills(
        npps.iter()
            .map(|npp| {
                f.bill(npp, "2026-01", 100_000_000)
                    .due_on("2026-02-16")
                    .payment_code("12345678901")
            })
            .collect(),
    )
    .await;
    scan::run(&t.db, &ScanContext::from_config(&config).unwrap(), at(AT))
        .await
        .unwrap();
    let other = t.connect_again().await.unwrap();
    let mut opts = delivery::DeliveryOptions {
        batch: 7,
        ..Default::default()
    };
    opts.concurrency = 8;
    let (d1, d2) = (
        deliverer(&config).with_options(opts.clone()),
        deliverer(&config).with_options(opts),
    );
    let (a, b) = tokio::join!(
        deliver_due(&t.db, &d1, at(AT)),
        deliver_due(&other, &d2, at(AT))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 60);
    assert!(a.sent > 0 && b.sent > 0, "both worked: {a:?} {b:?}");
    let mut ids: Vec<String> = bodies(&server)
        .await
        .iter()
        .map(|b| b["biz_opaque_callback_data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 60);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60, "no row sent twice");
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_with_outbox_depth() {
    use tower::ServiceExt;
    let app = TestApp::builder()
        .cloud_api()
        .on(testing::sqlite().await.unwrap())
        .await;
    let (t, server, config) = (&app.t, app.cloud(), &*app.config);
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(accept())
        .mount(server)
        .await;
    overdue(&t.db, "00000030", "6281234567890", 500_000_000).await;
    deliver_due(&t.db, &deliverer(config), at(AT))
        .await
        .unwrap();
    let res = app
        .send(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, 200);
    let text = res.body;
    for needle in [
        "wa_smile_outbox_depth{state=\"sent\"} 1",
        "wa_smile_messages_sent_total{kind=\"template\"}",
        "webhooks_received_total",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    // Building another app (as many tests do) is fine.
    let again = wa_smile::http::router(wa_smile::http::AppState {
        db: t.db.clone(),
        config: app.config.clone(),
        workers: Default::default(),
    });
    let res = again
        .oneshot(
            axum::http::Request::get("/status/delivery")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_simulator_answers_like_meta_and_posts_signed_statuses() {
    use wa_smile::simulator::{sign, Simulator, SimulatorOptions};
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/webhooks/whatsapp"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let opts = SimulatorOptions {
        latency: std::time::Duration::from_millis(5),
        webhook_url: Some(format!("{}/webhooks/whatsapp", hook.uri())),
        app_secret: "test-app-secret".into(),
        ..Default::default()
    };
    let (base, sim) = Simulator::start(opts.clone()).await.unwrap();
    let t = testing::sqlite().await.unwrap();
    let (_, _, id) = overdue(&t.db, "00000031", "6281234567890", 500_000_000).await;
    let env = vec![
        ("WA_SMILE__WHATSAPP__API_BASE".to_owned(), base.clone()),
        (
            "WA_SMILE__WHATSAPP__PHONE_NUMBER_ID".to_owned(),
            PHONE_NUMBER_ID.to_owned(),
        ),
        (
            "WA_SMILE__WHATSAPP__ACCESS_TOKEN".to_owned(),
            opts.access_token.clone(),
        ),
    ];
    let config = Config::from_sources(None, env).unwrap();
    assert_eq!(
        deliver_due(&t.db, &deliverer(&config), at(AT))
            .await
            .unwrap()
            .sent,
        1
    );
    let got = sim.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].wamid.starts_with("wamid.SIM"));
    assert_eq!(
        got[0].body.as_ref().unwrap()["biz_opaque_callback_data"],
        id.to_string()
    );
    assert_eq!(
        row(&t.db, id).await.wamid.as_deref(),
        Some(got[0].wamid.as_str())
    );

    // A wrong token is Meta's 190.
    let res = reqwest::Client::new()
        .post(format!("{base}/v25.0/{PHONE_NUMBER_ID}/messages"))
        .bearer_auth("wrong")
        .json(&json!({"messaging_product": "whatsapp", "to": "628", "type": "text", "text": {"body": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], 190);

    // sent → delivered → read, each signed with the app secret.
    for _ in 0..50 {
        if hook.received_requests().await.unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let hooks = hook.received_requests().await.unwrap();
    assert_eq!(hooks.len(), 3);
    let statuses: Vec<String> = hooks
        .iter()
        .map(|r| {
            let sig = r
                .headers
                .get("x-hub-signature-256")
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(sig, sign("test-app-secret", &r.body));
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let st = &v["entry"][0]["changes"][0]["value"]["statuses"][0];
            assert_eq!(st["biz_opaque_callback_data"], id.to_string());
            st["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);
}

#[tokio::test]
async fn shutting_the_worker_down_releases_claims_that_were_not_sent() {
    // One message a second: most of the batch waits for a pacing slot. The
    // worker reads the app's clock, stopped at AT (inside the window).
    let app = TestApp::builder()
        .cloud_api()
        .env("WA_SMILE__WHATSAPP__MESSAGES_PER_SECOND", "1")
        .clock_at(at(AT))
        .on(testing::sqlite().await.unwrap())
        .await;
    let (t, server, config) = (&app.t, app.cloud(), &*app.config);
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(accept())
        .mount(server)
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, _, id) = overdue(
            &t.db,
            &format!("{:08}", 40 + i),
            &format!("62812345678{i:02}"),
            500_000_000,
        )
        .await;
        ids.push(id);
    }
    let d = Arc::new(deliverer(config));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (clock, db) = (app.clock.clone(), t.db.clone());
    let worker = tokio::spawn(async move {
        clock
            .run(delivery::run_worker(
                db,
                d,
                std::time::Duration::from_secs(60),
                stopped,
            ))
            .await
    });
    // Stop once the first message is out: the rest wait for pacing slots
    // (polled, not slept for, so a slow machine cannot stop it too early).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut sent = false;
        for id in &ids {
            sent |= row(&t.db, *id).await.state == "sent";
        }
        if sent {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing was sent");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "did not wait for slots"
    );
    let mut states = Vec::new();
    for id in ids {
        let r = row(&t.db, id).await;
        states.push((r.state, r.attempts));
    }
    let sent = states.iter().filter(|s| s.0 == "sent").count();
    assert!((1..5).contains(&sent), "{states:?}");
    assert!(
        states
            .iter()
            .all(|s| s == &("sent".to_owned(), 1) || s == &("queued".to_owned(), 0)),
        "claims released unattempted: {states:?}"
    );
}

/// Answers like Meta, except that the first request for each listed outbox
/// id hangs past the client's timeout (Meta may have taken it).
struct HangFirst {
    ids: Vec<String>,
    seen: Mutex<HashMap<String, usize>>,
    n: AtomicUsize,
    delay: std::time::Duration,
}

impl HangFirst {
    fn new(ids: &[i64]) -> Self {
        Self {
            ids: ids.iter().map(i64::to_string).collect(),
            seen: Mutex::new(HashMap::new()),
            n: AtomicUsize::new(0),
            delay: std::time::Duration::ZERO,
        }
    }
}

impl Respond for HangFirst {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let id = body["biz_opaque_callback_data"]
            .as_str()
            .unwrap()
            .to_owned();
        let first = {
            let mut seen = self.seen.lock().unwrap();
            let k = seen.entry(id.clone()).or_default();
            *k += 1;
            *k == 1
        };
        let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = if first && self.ids.contains(&id) {
            std::time::Duration::from_secs(20)
        } else {
            self.delay
        };
        ResponseTemplate::new(200)
            .set_body_json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"].as_str().unwrap().trim_start_matches('+')}],
                "messages": [{"id": format!("wamid.HF{n}")}],
            }))
            .set_delay(delay)
    }
}

/// Requests the mock received per outbox id.
async fn requests_per_row(server: &MockServer) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for b in bodies(server).await {
        *out.entry(b["biz_opaque_callback_data"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

async fn resent_unknown(db: &Db, id: i64) -> i64 {
    db.query("SELECT resent_unknown FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
        .get("resent_unknown")
        .unwrap()
}

/// Issue 9, item 10: an import holding SQLite's writer for longer than the
/// busy timeout (PostgreSQL: a lock held past the outcome write's bounded
/// wait) must not make the pass drop what Meta accepted.
#[tokio::test]
async fn outcomes_that_cannot_be_written_are_kept_and_written_once_the_database_frees() {
    let mut dbs = vec![
        testing::sqlite_with_busy_timeout(std::time::Duration::from_secs(1))
            .await
            .unwrap(),
    ];
    dbs.extend(testing::postgres().await.unwrap());
    for t in dbs {
        let db = &t.db;
        let server = MockServer::start().await;
        let config = cloud_config(&server, &[]);
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(Accept(
                AtomicUsize::new(0),
                std::time::Duration::from_millis(300),
            ))
            .mount(&server)
            .await;
        let mut ids = Vec::new();
        for i in 0..20 {
            let (_, _, id) = overdue(
                db,
                &format!("{:08}", 100 + i),
                &format!("628130000{i:04}"),
                500_000_000,
            )
            .await;
            ids.push(id);
        }
        let d = Arc::new(deliverer(&config).with_options(DeliveryOptions {
            write_wait: std::time::Duration::from_secs(1),
            ..Default::default()
        }));
        let pass = tokio::spawn({
            let (db, d) = (db.clone(), d.clone());
            async move { deliver_due(&db, &d, at(AT)).await }
        });
        // The first request is out: the rows are claimed. Now an import
        // takes the writer for three seconds.
        while server.received_requests().await.unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let other = t.connect_again().await.unwrap();
        let mut import = other.begin().await.unwrap();
        if t.name == "postgres" {
            import
                .query("LOCK TABLE case_events, outbox IN EXCLUSIVE MODE")
                .execute(&mut import)
                .await
                .unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        import.rollback().await.unwrap();
        let s = pass.await.unwrap().unwrap();
        assert_eq!(s.sent, 20, "{}", t.name);
        for id in &ids {
            let r = row(db, *id).await;
            assert_eq!(r.state, "sent", "{} row {id}", t.name);
            assert!(r.wamid.is_some_and(|w| w.starts_with("wamid.TEST")));
        }
        // Nothing is left to come back: a pass after lease and grace sends
        // nothing twice.
        assert_eq!(
            deliver_due(db, &d, at(AT) + Duration::hours(1))
                .await
                .unwrap(),
            DeliverSummary::default()
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 20);
    }
}

/// Issue 9, item 12: a timeout is an unknown outcome. The row waits for the
/// status webhook carrying its id for the grace period, not for the usual
/// 30 s back-off; only without one is it resent, and that resend is recorded.
#[tokio::test]
async fn a_timed_out_send_waits_for_its_status_before_any_resend() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        let (_, _, a) = overdue(db, "00000201", "6281300000201", 500_000_000).await;
        let (_, case_b, b) = overdue(db, "00000202", "6281300000202", 500_000_000).await;
        let (_, _, c) = overdue(db, "00000203", "6281300000203", 500_000_000).await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(HangFirst::new(&[a, b]))
            .mount(&server)
            .await;
        let d = deliverer(&config);
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap(),
            summary(1, 0, 2, 0),
            "{}",
            t.name
        );
        assert_eq!(row(db, c).await.state, "sent");
        // Meta did take `a`: its status arrives half a minute later.
        assert!(record_status(
            db,
            StatusUpdate {
                wamid: "wamid.LATE_A".into(),
                status: MessageStatus::Delivered,
                timestamp: at(AT) + Duration::seconds(30),
                recipient: None,
                callback_data: Some(a),
                error: None,
            }
        )
        .await
        .unwrap());
        // Past the usual back-off, inside the grace period: nothing goes.
        for minutes in [2, 9] {
            assert_eq!(
                deliver_due(db, &d, at(AT) + Duration::minutes(minutes))
                    .await
                    .unwrap(),
                DeliverSummary::default(),
                "{} at +{minutes} min",
                t.name
            );
        }
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
        // No status for `b` within the grace: it goes again, once, recorded.
        let s = deliver_due(db, &d, at(AT) + Duration::minutes(11))
            .await
            .unwrap();
        assert_eq!(s.sent, 1, "{}", t.name);
        let per_row = requests_per_row(&server).await;
        assert_eq!(per_row[&a.to_string()], 1, "the accepted one is not resent");
        assert_eq!(per_row[&b.to_string()], 2);
        assert_eq!(row(db, b).await.state, "sent");
        assert_eq!(
            (resent_unknown(db, a).await, resent_unknown(db, b).await),
            (0, 1)
        );
        assert_eq!(events(db, case_b, "message_sent").await.len(), 1);
        assert_eq!(
            deliver_due(db, &d, at(AT) + Duration::hours(2))
                .await
                .unwrap(),
            DeliverSummary::default()
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 4);
    }
}

/// Issue 9, item 11: a reminder left `sending` by a killed worker comes
/// back after the case has moved to a later stage; the send-time re-check
/// skips it (with the reason) and the current stage's message goes.
#[tokio::test]
async fn a_stale_stage_reminder_left_by_a_crash_is_skipped_and_the_current_one_sent() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (_, case_id, stale) = overdue(db, "00000301", "6281300000301", 500_000_000).await;
        // A worker claimed the reminder_3 and was killed.
        db.query(
            "UPDATE outbox SET state = 'sending', attempts = 1, lease_until = $2 WHERE id = $1",
        )
        .bind(stale)
        .bind(at(AT) + Duration::minutes(5))
        .execute(db)
        .await
        .unwrap();
        // Three weeks later (Wednesday 25 March, 10:00 WIB) the case is at
        // the warning stage.
        let later = at("2026-03-25T03:00:00Z");
        let scan_config = Config::from_sources(None, Vec::<(String, String)>::new()).unwrap();
        scan::run(db, &ScanContext::from_config(&scan_config).unwrap(), later)
            .await
            .unwrap();
        let stage: String = db
            .query("SELECT stage FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(db)
            .await
            .unwrap()
            .get("stage")
            .unwrap();
        assert_eq!(stage, "warning", "{}", t.name);
        let d = deliverer(&config);
        let s = deliver_due(db, &d, later).await.unwrap();
        assert_eq!((s.sent, s.skipped), (1, 1), "{}", t.name);
        let sent = bodies(&server).await;
        assert_eq!(sent.len(), 1, "only the current stage's message");
        assert_ne!(sent[0]["biz_opaque_callback_data"], stale.to_string());
        let r = db
            .query("SELECT state, last_error FROM outbox WHERE id = $1")
            .bind(stale)
            .fetch_one(db)
            .await
            .unwrap();
        assert_eq!(r.get::<String>("state").unwrap(), "skipped");
        assert_eq!(
            r.get::<Option<String>>("last_error").unwrap().as_deref(),
            Some("stage_passed")
        );
        let skipped = events(db, case_id, "message_skipped").await;
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0]["reason"], "stage_passed");
    }
}

/// Issue 9, item 13: a killed worker's claims do not wait for lease and
/// grace (15 minutes). Once its heartbeat is stale, a live worker queues at
/// once the rows that never reached HTTP; the ones whose call may have
/// happened still wait for the grace period (or their status webhook).
#[tokio::test]
async fn a_dead_workers_claims_come_back_promptly_but_unknown_sends_wait_for_the_grace() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        let mut inflight = Vec::new();
        for i in 0..5 {
            let (_, _, id) = overdue(
                db,
                &format!("{:08}", 400 + i),
                &format!("628130000{:04}", 400 + i),
                500_000_000,
            )
            .await;
            inflight.push(id);
        }
        let mut unsent = Vec::new();
        for i in 0..2 {
            let (_, _, id) = overdue(
                db,
                &format!("{:08}", 410 + i),
                &format!("628130000{:04}", 410 + i),
                500_000_000,
            )
            .await;
            unsent.push(id);
        }
        // Not due for worker A's pass; they stand for rows A had claimed
        // and was still preparing when it died.
        for id in &unsent {
            db.query("UPDATE outbox SET due_at = $2 WHERE id = $1")
                .bind(*id)
                .bind(at(AT) + Duration::days(1))
                .execute(db)
                .await
                .unwrap();
        }
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(HangFirst::new(&inflight))
            .mount(&server)
            .await;
        // Worker A: its requests are out when it is killed.
        let client =
            WhatsappClient::new(&config.whatsapp, std::time::Duration::from_secs(30)).unwrap();
        let a =
            Arc::new(Deliverer::new(&config, Arc::new(Catalog::load().unwrap()), client).unwrap());
        let pass = tokio::spawn({
            let (db, a) = (db.clone(), a.clone());
            async move { deliver_due(&db, &a, at(AT)).await }
        });
        while server.received_requests().await.unwrap().len() < inflight.len() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        for id in &unsent {
            db.query(
                "UPDATE outbox SET state = 'sending', attempts = 1, lease_until = $2, due_at = $3, \
                        claimed_by = $4 WHERE id = $1",
            )
            .bind(*id)
            .bind(at(AT) + Duration::minutes(5))
            .bind(at(AT))
            .bind(a.worker_id().to_owned())
            .execute(db)
            .await
            .unwrap();
        }
        pass.abort();
        let _ = pass.await;
        let b = deliverer(&config);
        // Within A's heartbeat timeout, A might be alive: hands off.
        assert_eq!(
            deliver_due(db, &b, at(AT) + Duration::seconds(30))
                .await
                .unwrap(),
            DeliverSummary::default(),
            "{}",
            t.name
        );
        // A is dead: what it never handed to HTTP goes now, not in 15 min.
        let s = deliver_due(db, &b, at(AT) + Duration::minutes(2))
            .await
            .unwrap();
        assert_eq!(s.sent, 2, "{}", t.name);
        for id in &unsent {
            assert_eq!(row(db, *id).await.state, "sent");
        }
        for id in &inflight {
            assert_eq!(row(db, *id).await.state, "sending", "awaits its status");
        }
        // One of A's sends did reach Meta: its status says so.
        assert!(record_status(
            db,
            StatusUpdate {
                wamid: "wamid.FROM_A".into(),
                status: MessageStatus::Sent,
                timestamp: at(AT) + Duration::minutes(3),
                recipient: None,
                callback_data: Some(inflight[0]),
                error: None,
            }
        )
        .await
        .unwrap());
        assert_eq!(
            deliver_due(db, &b, at(AT) + Duration::minutes(9))
                .await
                .unwrap(),
            DeliverSummary::default()
        );
        // After the grace, the other four go again, once each, recorded.
        let s = deliver_due(db, &b, at(AT) + Duration::minutes(11))
            .await
            .unwrap();
        assert_eq!(s.sent, 4, "{}", t.name);
        let per_row = requests_per_row(&server).await;
        assert_eq!(per_row[&inflight[0].to_string()], 1);
        for id in &inflight[1..] {
            assert_eq!(per_row[&id.to_string()], 2);
            assert_eq!(resent_unknown(db, *id).await, 1);
        }
        for id in &unsent {
            assert_eq!(per_row[&id.to_string()], 1);
            assert_eq!(resent_unknown(db, *id).await, 0);
        }
        assert_eq!(
            deliver_due(db, &b, at(AT) + Duration::hours(1))
                .await
                .unwrap(),
            DeliverSummary::default()
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 11);
    }
}

/// Issue 9, item 14: after Meta's throughput error the pacer slows down
/// instead of sending on at the same rate.
#[tokio::test]
async fn after_a_130429_the_worker_sends_more_slowly() {
    for app in setup(&[("WA_SMILE__WHATSAPP__MESSAGES_PER_SECOND", "20")]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        struct Clocked(Arc<Mutex<Vec<std::time::Instant>>>, Accept);
        impl Respond for Clocked {
            fn respond(&self, req: &Request) -> ResponseTemplate {
                let mut a = self.0.lock().unwrap();
                a.push(std::time::Instant::now());
                if a.len() == 1 {
                    return ResponseTemplate::new(400)
                        .set_body_json(meta_error(130429, "Rate limit hit"));
                }
                self.1.respond(req)
            }
        }
        for i in 0..30 {
            overdue(
                db,
                &format!("{:08}", 500 + i),
                &format!("628130000{:04}", 500 + i),
                500_000_000,
            )
            .await;
        }
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(Clocked(arrivals.clone(), accept()))
            .mount(&server)
            .await;
        let d = deliverer(&config);
        let s = deliver_due(db, &d, at(AT)).await.unwrap();
        assert_eq!((s.sent, s.retried), (29, 1), "{}", t.name);
        assert!(d.pace() < 20.0, "{}", d.pace());
        let times = arrivals.lock().unwrap().clone();
        // At 20/s, 20 requests fit in the second after the error; at the
        // halved (slowly recovering) rate, about 11.
        let cut = times[0];
        let next_second = times
            .iter()
            .filter(|t| **t > cut && **t <= cut + std::time::Duration::from_secs(1))
            .count();
        assert!(
            next_second <= 14,
            "{}: {next_second} requests in the second after a 130429",
            t.name
        );
    }
}

/// Issue 9, item 14: a 500 with Meta's code 1 ("API Unknown") is retried,
/// not failed to an officer on the first try.
#[tokio::test]
async fn api_unknown_code_1_is_retried_not_sent_to_an_officer() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(
                ResponseTemplate::new(500)
                    .set_body_json(meta_error(1, "An unknown error occurred")),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (_, case_id, id) = overdue(db, "00000601", "6281300000601", 500_000_000).await;
        let d = deliverer(&config);
        assert_eq!(
            deliver_due(db, &d, at(AT)).await.unwrap(),
            summary(0, 0, 1, 0),
            "{}",
            t.name
        );
        assert_eq!(row(db, id).await.state, "queued");
        assert_eq!(case_field(db, case_id).await.0, "open", "no officer task");
        assert!(events(db, case_id, "message_failed").await.is_empty());
        let due = row(db, id).await.due_at;
        assert_eq!(deliver_due(db, &d, due).await.unwrap().sent, 1);
    }
}

/// Issue 9, item 9: statuses are monotonic; a `failed` that arrives after
/// `read` neither undoes the read nor marks the contact unreachable.
#[tokio::test]
async fn a_failed_status_after_read_does_not_mark_the_contact_unreachable() {
    for app in setup(&[]).await {
        let (t, server, config) = app.into_parts();
        let db = &t.db;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(accept())
            .mount(&server)
            .await;
        let (e, case_id, id) = overdue(db, "00000701", "6281300000701", 500_000_000).await;
        deliver_due(db, &deliverer(&config), at(AT)).await.unwrap();
        let st = |status, secs, error| StatusUpdate {
            wamid: "wamid.TEST1".into(),
            status,
            timestamp: at(AT) + Duration::seconds(secs),
            recipient: None,
            callback_data: Some(id),
            error,
        };
        assert!(record_status(db, st(MessageStatus::Read, 20, None))
            .await
            .unwrap());
        // Recorded once (a redelivery is not), but not applied.
        let failed = st(
            MessageStatus::Failed,
            30,
            Some((131026, "Message undeliverable".into())),
        );
        assert!(record_status(db, failed.clone()).await.unwrap());
        assert!(!record_status(db, failed).await.unwrap());
        assert_eq!(row(db, id).await.state, "read", "{}", t.name);
        let invalid: Option<DateTime<Utc>> = db
            .query("SELECT contact_invalid_at FROM employers WHERE id = $1")
            .bind(e)
            .fetch_one(db)
            .await
            .unwrap()
            .get("contact_invalid_at")
            .unwrap();
        assert_eq!(invalid, None, "the employer read it: the number works");
        assert_eq!(case_field(db, case_id).await.0, "open");
        let statuses: i64 = db
            .query("SELECT COUNT(*) AS n FROM outbox_statuses WHERE outbox_id = $1 AND status = 'failed'")
            .bind(id)
            .fetch_one(db)
            .await
            .unwrap()
            .get("n")
            .unwrap();
        assert_eq!(statuses, 1, "the failed status is on record");
    }
}
