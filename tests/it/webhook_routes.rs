//! The webhook routes end to end, through the real router, on both
//! backends: Meta's signed webhooks (handshake, signatures, redelivery,
//! statuses, every reply's effect on the case) and the payment gateway's
//! callback (one payment however often it is retried, exceptions kept for
//! an officer).

use crate::support::{envelope, message, TestApp, CALLBACK, VERIFY};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};
use tower::ServiceExt;
use wa_smile::scan::{self, ScanContext};
use wa_smile::store::Db;
use wa_smile::testing;
use wa_smile::webhook::sign;

const PHONE: &str = "6281234567890";
const NPP: &str = "12345678";

async fn apps() -> Vec<TestApp> {
    TestApp::all().await
}

async fn send(app: &TestApp, req: Request<Body>) -> (StatusCode, String) {
    let r = app.send(req).await;
    (r.status, r.body)
}

fn text(wamid: &str, t: &str) -> Value {
    message(
        wamid,
        PHONE,
        Utc::now(),
        json!({"type": "text", "text": {"body": t}}),
    )
}

fn button(wamid: &str, payload: &str) -> Value {
    message(
        wamid,
        PHONE,
        Utc::now(),
        json!({"type": "button", "button": {"payload": payload, "text": "tap"}}),
    )
}

fn status(wamid: &str, s: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "PNID"},
        "statuses": [{"id": wamid, "status": s, "timestamp": Utc::now().timestamp().to_string(),
                      "recipient_id": PHONE, "biz_opaque_callback_data": "1"}],
    }))
}

/// An employer with two overdue bills (Rp1.500.000 each, 10 and 40 days
/// late... the oldest sets the stage) and the case the scan opens for it.
async fn seeded(app: &TestApp) -> (i64, i64) {
    let f = app.fixtures();
    let employer = f
        .employer(NPP)
        .name("PT Maju Jaya")
        .branch("PKU")
        .wa(PHONE)
        .tz("Asia/Jakarta")
        .create()
        .await;
    let today = app.now().date_naive();
    for (period, days) in [("2025-01", 12), ("2025-02", 9)] {
        f.bill(NPP, period, 150_000_000)
            .due(today - Duration::days(days))
            .create()
            .await;
    }
    f.scan(app.now()).await;
    (employer, f.case_of(NPP).await)
}

async fn count(db: &Db, sql: &str) -> i64 {
    db.query(sql).fetch_one(db).await.unwrap().get("n").unwrap()
}

async fn count_for(db: &Db, sql: &str, id: i64) -> i64 {
    db.query(sql)
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
        .get("n")
        .unwrap()
}

async fn events(db: &Db, case_id: i64) -> Vec<(String, Value)> {
    wa_smile::case_log::for_case(db, case_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.data))
        .collect()
}

async fn kinds(db: &Db, case_id: i64) -> Vec<String> {
    events(db, case_id).await.into_iter().map(|e| e.0).collect()
}

async fn case_row(db: &Db, case_id: i64) -> (String, Option<NaiveDate>, Option<DateTime<Utc>>) {
    let r = db
        .query("SELECT status, promised_date, paused_until FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one(db)
        .await
        .unwrap();
    (
        r.get("status").unwrap(),
        r.get("promised_date").unwrap(),
        r.get("paused_until").unwrap(),
    )
}

/// The auto-replies queued for the case: (message, kind, body).
async fn replies(db: &Db, employer_id: i64) -> Vec<(String, String, Value)> {
    db.query(
        "SELECT message, kind, body FROM outbox WHERE employer_id = $1 \
         AND idempotency_key NOT LIKE 'case:%:stage:%' AND state = 'queued' ORDER BY id",
    )
    .bind(employer_id)
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let body: String = r.get("body").unwrap();
        (
            r.get("message").unwrap(),
            r.get("kind").unwrap(),
            serde_json::from_str(&body).unwrap(),
        )
    })
    .collect()
}

fn names(r: &[(String, String, Value)]) -> Vec<&str> {
    r.iter().map(|x| x.0.as_str()).collect()
}

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    for app in apps().await {
        let get = |q: &str| {
            Request::get(format!("/webhooks/whatsapp?{q}"))
                .body(Body::empty())
                .unwrap()
        };
        let (s, body) = send(
            &app,
            get("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"),
        )
        .await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "1158201444"));
        let (s, _) = send(
            &app,
            get("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = send(&app, get("hub.verify_token=verify-me&hub.challenge=1")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn unsigned_or_badly_signed_webhooks_are_rejected_and_record_nothing() {
    for app in apps().await {
        let body = status("wamid.A", "delivered").to_string();
        let unsigned = Request::post("/webhooks/whatsapp")
            .body(Body::from(body.clone()))
            .unwrap();
        assert_eq!(send(&app, unsigned).await.0, StatusCode::UNAUTHORIZED);
        let wrong = Request::post("/webhooks/whatsapp")
            .header(
                "x-hub-signature-256",
                sign(b"another secret", body.as_bytes()),
            )
            .body(Body::from(body.clone()))
            .unwrap();
        assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
        let garbage = Request::post("/webhooks/whatsapp")
            .header("x-hub-signature-256", "sha256=zz")
            .body(Body::from(text("wamid.B", "halo").to_string()))
            .unwrap();
        assert_eq!(send(&app, garbage).await.0, StatusCode::UNAUTHORIZED);
        let db = app.db();
        assert_eq!(
            count(db, "SELECT COUNT(*) AS n FROM webhook_statuses").await,
            0
        );
        assert_eq!(
            count(db, "SELECT COUNT(*) AS n FROM inbound_messages").await,
            0
        );
    }
}

#[tokio::test]
async fn signed_bodies_that_are_not_json_objects_get_400_and_oversized_bodies_413() {
    for app in apps().await {
        assert_eq!(app.post_signed(b"{not json").await, StatusCode::BAD_REQUEST);
        assert_eq!(app.post_signed(b"[1,2,3]").await, StatusCode::BAD_REQUEST);
        let huge = vec![b' '; 10 * 1024 * 1024];
        assert_eq!(app.post_signed(&huge).await, StatusCode::PAYLOAD_TOO_LARGE);
        // Unknown fields and event types are fine.
        let odd = json!({"object": "whatsapp_business_account", "entry": [{"changes": [
            {"field": "account_update", "value": {"event": "X"}}]}], "new": true});
        assert_eq!(app.post_json(&odd).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn statuses_are_stored_once_per_message_and_status() {
    for app in apps().await {
        for _ in 0..3 {
            assert_eq!(
                app.post_json(&status("wamid.S1", "delivered")).await,
                StatusCode::OK
            );
        }
        assert_eq!(
            app.post_json(&status("wamid.S1", "read")).await,
            StatusCode::OK
        );
        // One batch naming the same status twice.
        let mut batch = status("wamid.S2", "sent");
        let s = batch["entry"][0]["changes"][0]["value"]["statuses"][0].clone();
        batch["entry"][0]["changes"][0]["value"]["statuses"] = json!([s.clone(), s]);
        assert_eq!(app.post_json(&batch).await, StatusCode::OK);
        assert_eq!(
            count(app.db(), "SELECT COUNT(*) AS n FROM webhook_statuses").await,
            3,
            "{}",
            app.t.name
        );
    }
}

#[tokio::test]
async fn a_redelivered_reply_is_recorded_and_acted_on_once() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        let body = text("wamid.R1", "berapa total tunggakan kami?");
        for _ in 0..3 {
            assert_eq!(app.post_json(&body).await, StatusCode::OK);
        }
        let db = app.db();
        assert_eq!(
            count(db, "SELECT COUNT(*) AS n FROM inbound_messages").await,
            1
        );
        let k = kinds(db, case_id).await;
        assert_eq!(k.iter().filter(|k| *k == "reply_received").count(), 1);
        let r = replies(db, employer).await;
        assert_eq!(names(&r), ["amount_breakdown"], "{}", app.t.name);
        assert_eq!(r[0].2["in_reply_to"], "wamid.R1");
        let last: Option<DateTime<Utc>> = db
            .query("SELECT last_inbound_at FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(db)
            .await
            .unwrap()
            .get("last_inbound_at")
            .unwrap();
        assert!(last.is_some(), "the reply opens the 24-hour window");
    }
}

#[tokio::test]
async fn a_reply_from_an_unknown_number_is_kept_for_officers() {
    for app in apps().await {
        let body = message(
            "wamid.U1",
            "6289999999999",
            Utc::now(),
            json!({"type": "text", "text": {"body": "ini siapa ya?"}}),
        );
        assert_eq!(app.post_json(&body).await, StatusCode::OK);
        let list = wa_smile::replies::unmatched(app.db(), 10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["wamid"], "wamid.U1");
        assert_eq!(list[0]["text"], "ini siapa ya?");
    }
}

#[tokio::test]
async fn a_dated_promise_pauses_reminders_and_is_confirmed_in_words() {
    // The app's clock stands at 23:30 WIB: "besok" is read at the app's
    // time, not at whenever the test computes its expectation (the wall
    // clock could pass midnight WIB in between).
    let late_evening: DateTime<Utc> = "2026-03-03T16:30:00Z".parse().unwrap();
    for app in TestApp::builder().clock_at(late_evening).all().await {
        let (employer, case_id) = seeded(&app).await;
        let reply = message(
            "wamid.P1",
            PHONE,
            app.now(),
            json!({"type": "text", "text": {"body": "besok kami bayar"}}),
        );
        assert_eq!(app.post_json(&reply).await, StatusCode::OK);
        let db = app.db();
        let tomorrow = (app.now() + Duration::hours(7))
            .date_naive()
            .succ_opt()
            .unwrap();
        assert_eq!(tomorrow.to_string(), "2026-03-04");
        let (status, promised, _) = case_row(db, case_id).await;
        assert_eq!((status.as_str(), promised), ("promised", Some(tomorrow)));
        let ev = events(db, case_id).await;
        let reply = ev.iter().find(|e| e.0 == "reply_received").unwrap();
        assert_eq!(reply.1["intent"], "promise_to_pay");
        assert_eq!(reply.1["wamid"], "wamid.P1");
        let promise = ev.iter().find(|e| e.0 == "promise_to_pay").unwrap();
        assert_eq!(promise.1["promised_date"], tomorrow.to_string());
        let r = replies(db, employer).await;
        assert_eq!(names(&r), ["promise_confirmed"]);
        assert_eq!(r[0].1, "interactive");
        // Queued stage reminders are cancelled with a reason.
        assert_eq!(
            count_for(db, "SELECT COUNT(*) AS n FROM outbox WHERE case_id = $1 AND state = 'queued' AND idempotency_key LIKE 'case:%:stage:%'", case_id).await,
            0
        );

        // The scan keeps quiet until the day, and the day after it the
        // promise is broken: an officer looks, reminders resume.
        let ctx = ScanContext::from_config(&app.config).unwrap();
        scan::run(db, &ctx, app.now()).await.unwrap();
        assert_eq!(case_row(db, case_id).await.0, "promised");
        scan::run(db, &ctx, app.now() + Duration::days(3))
            .await
            .unwrap();
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        assert!(kinds(db, case_id)
            .await
            .contains(&"promise_broken".to_owned()));
    }
}

#[tokio::test]
async fn a_promise_beyond_the_horizon_goes_to_an_officer() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text("wamid.H1", "kami bayar 3 bulan lagi"))
            .await;
        let db = app.db();
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        let k = kinds(db, case_id).await;
        assert!(!k.contains(&"promise_to_pay".to_owned()));
        assert!(k.contains(&"officer_requested".to_owned()));
        assert_eq!(
            names(&replies(db, employer).await),
            ["officer_will_contact"]
        );
    }
}

#[tokio::test]
async fn a_promise_without_a_date_asks_for_one_and_records_it_when_given() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text("wamid.D1", "nanti kami bayar")).await;
        let db = app.db();
        assert!(!kinds(db, case_id)
            .await
            .contains(&"promise_to_pay".to_owned()));
        assert_eq!(case_row(db, case_id).await.0, "open");
        assert_eq!(names(&replies(db, employer).await), ["ask_promise_date"]);
        app.post_json(&text("wamid.D2", "besok")).await;
        let k = kinds(db, case_id).await;
        assert_eq!(k.iter().filter(|k| *k == "promise_to_pay").count(), 1);
        assert_eq!(case_row(db, case_id).await.0, "promised");
    }
}

#[tokio::test]
async fn already_paid_pauses_reminders_then_an_officer_looks() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        let payload = format!("PAID:{case_id}");
        assert_eq!(
            app.post_json(&button("wamid.C1", &payload)).await,
            StatusCode::OK
        );
        let db = app.db();
        let (status, _, paused) = case_row(db, case_id).await;
        assert_eq!(status, "open");
        let paused = paused.expect("paused until");
        assert!(paused > Utc::now() + Duration::days(2) && paused < Utc::now() + Duration::days(8));
        assert!(kinds(db, case_id)
            .await
            .contains(&"payment_claimed".to_owned()));
        assert_eq!(names(&replies(db, employer).await), ["payment_claim_ack"]);

        let ctx = ScanContext::from_config(&app.config).unwrap();
        scan::run(db, &ctx, Utc::now() + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(case_row(db, case_id).await.0, "open");
        scan::run(db, &ctx, Utc::now() + Duration::days(10))
            .await
            .unwrap();
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        let ev = events(db, case_id).await;
        assert!(ev
            .iter()
            .any(|e| e.0 == "officer_requested" && e.1["reason"] == "payment_claim_unconfirmed"));
    }
}

/// "sudah bayar tgl 30": paid on the 30th, or paying then? The bot does not
/// guess: it asks, with a button for each answer, and pauses nothing.
#[tokio::test]
async fn a_reply_torn_between_paid_and_promise_gets_a_question_not_an_effect() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text("wamid.U1", "sudah bayar tgl 30")).await;
        let db = app.db();
        let (status, promised, paused) = case_row(db, case_id).await;
        assert_eq!((status.as_str(), promised, paused), ("open", None, None));
        let k = kinds(db, case_id).await;
        assert!(k.contains(&"reply_received".to_owned()), "{k:?}");
        assert!(!k.contains(&"payment_claimed".to_owned()), "{k:?}");
        assert!(!k.contains(&"promise_to_pay".to_owned()), "{k:?}");
        let ev = events(db, case_id).await;
        let received = ev.iter().find(|e| e.0 == "reply_received").unwrap();
        assert_eq!(received.1["acted"], false);
        assert!(received.1["confidence"].as_f64().unwrap() < 0.6);
        let r = replies(db, employer).await;
        assert_eq!(names(&r), ["clarify_paid_or_promise"]);
        assert_eq!(r[0].1, "interactive");
        let body = r[0].2.to_string();
        assert!(body.contains("sudah membayar"), "{body}");
        assert!(body.contains(&format!("PAID:{case_id}")), "{body}");
        assert!(body.contains(&format!("PROMISE:{case_id}")), "{body}");

        // The tap answers it: now the claim is acted on.
        app.post_json(&button("wamid.U2", &format!("PAID:{case_id}")))
            .await;
        assert!(kinds(db, case_id)
            .await
            .contains(&"payment_claimed".to_owned()));
    }
}

/// Outside the 24-hour window there is no question to ask freely: an
/// officer gets the reply with the two best guesses.
#[tokio::test]
async fn a_doubtful_reply_outside_the_window_goes_to_an_officer_with_two_guesses() {
    for app in apps().await {
        let (_, case_id) = seeded(&app).await;
        let late = message(
            "wamid.U3",
            PHONE,
            Utc::now() - Duration::hours(30),
            json!({"type": "text", "text": {"body": "sudah bayar tgl 30"}}),
        );
        app.post_json(&late).await;
        let db = app.db();
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        let ev = events(db, case_id).await;
        let handed = ev
            .iter()
            .find(|e| e.0 == "officer_requested" && e.1["reason"] == "unsure_reply")
            .expect("handed to an officer");
        let guesses = handed.1["guesses"].as_array().unwrap();
        assert_eq!(guesses.len(), 2, "{handed:?}");
        assert!(
            guesses.contains(&json!("already_paid")) && guesses.contains(&json!("promise_to_pay"))
        );
        assert!(!kinds(db, case_id)
            .await
            .contains(&"payment_claimed".to_owned()));
    }
}

/// "bulan lalu sudah lunas, sisanya besok kami transfer": two statements,
/// both recorded.
#[tokio::test]
async fn a_reply_with_a_claim_and_a_promise_records_both() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text(
            "wamid.M1",
            "yg bulan lalu sudah lunas, sisanya besok kami transfer",
        ))
        .await;
        let db = app.db();
        let k = kinds(db, case_id).await;
        assert!(k.contains(&"promise_to_pay".to_owned()), "{k:?}");
        assert!(k.contains(&"payment_claimed".to_owned()), "{k:?}");
        assert_eq!(k.iter().filter(|k| *k == "reply_received").count(), 1);
        assert_eq!(case_row(db, case_id).await.0, "promised");
        let r = replies(db, employer).await;
        assert_eq!(names(&r), ["promise_confirmed", "payment_claim_ack"]);
    }
}

#[tokio::test]
async fn officer_intents_hand_the_case_over_with_an_honest_holding_reply() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text(
            "wamid.O1",
            "tagihan ini salah, kami sudah tidak punya karyawan",
        ))
        .await;
        app.post_json(&text("wamid.O2", "kami mau cicil")).await;
        let db = app.db();
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        let k = kinds(db, case_id).await;
        assert!(k.contains(&"dispute_raised".to_owned()));
        assert!(k.contains(&"installment_requested".to_owned()));
        // One holding reply a day, not one per line.
        assert_eq!(
            names(&replies(db, employer).await),
            ["officer_will_contact"]
        );
        app.post_json(&text("wamid.O3", "ok terima kasih")).await;
        assert_eq!(
            kinds(db, case_id).await.last().map(String::as_str),
            Some("reply_received")
        );
    }
}

#[tokio::test]
async fn opting_out_is_confirmed_once_and_silences_the_number() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text("wamid.X1", "stop")).await;
        app.post_json(&button("wamid.X2", "STOP")).await;
        app.post_json(&text("wamid.X3", "berapa total tunggakan kami?"))
            .await;
        let db = app.db();
        assert_eq!(names(&replies(db, employer).await), ["opt_out_confirmed"]);
        assert_eq!(
            count_for(
                db,
                "SELECT COUNT(*) AS n FROM employers WHERE id = $1 AND opted_out_at IS NOT NULL",
                employer
            )
            .await,
            1
        );
        let k = kinds(db, case_id).await;
        assert_eq!(k.iter().filter(|k| *k == "opted_out").count(), 1);
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        // The scan keeps the number quiet and says why.
        let ctx = ScanContext::from_config(&app.config).unwrap();
        scan::run(db, &ctx, Utc::now() + Duration::days(8))
            .await
            .unwrap();
        let quiet: Option<String> = db
            .query("SELECT quiet_reason FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(db)
            .await
            .unwrap()
            .get("quiet_reason")
            .unwrap();
        assert_eq!(quiet.as_deref(), Some("opted_out"));
        assert_eq!(
            count_for(db, "SELECT COUNT(*) AS n FROM outbox WHERE employer_id = $1 AND state = 'queued' AND message <> 'opt_out_confirmed'", employer).await,
            0
        );
    }
}

#[tokio::test]
async fn opting_out_silences_every_employer_on_the_number() {
    for app in apps().await {
        let (employer, _) = seeded(&app).await;
        let db = app.db();
        let other = app
            .fixtures()
            .employer("87654321")
            .name("PT Saudara")
            .branch("PKU")
            .wa(PHONE)
            .contact("")
            .tz("Asia/Jakarta")
            .create()
            .await;
        app.post_json(&text("wamid.Y1", "jangan kirim lagi")).await;
        for id in [employer, other] {
            assert_eq!(
                count_for(db, "SELECT COUNT(*) AS n FROM employers WHERE id = $1 AND opted_out_at IS NOT NULL", id).await,
                1
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_number_marks_the_contact_invalid_and_gets_no_reply() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text("wamid.W1", "salah nomor, ini bukan kantor PT itu"))
            .await;
        let db = app.db();
        assert_eq!(
            count_for(db, "SELECT COUNT(*) AS n FROM employers WHERE id = $1 AND contact_invalid_at IS NOT NULL", employer).await,
            1
        );
        assert!(kinds(db, case_id)
            .await
            .contains(&"wrong_number".to_owned()));
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        assert!(replies(db, employer).await.is_empty());
    }
}

async fn callback(app: &TestApp, token: Option<&str>, body: &Value) -> (StatusCode, String) {
    let mut req = Request::post("/webhooks/payments").header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("x-callback-token", t);
    }
    send(app, req.body(Body::from(body.to_string())).unwrap()).await
}

async fn link_for(app: &TestApp, employer: i64, case_id: i64, wamid: &str) -> (String, String) {
    let payload = format!("PAY_LINK:{case_id}");
    assert_eq!(
        app.post_json(&button(wamid, &payload)).await,
        StatusCode::OK
    );
    let db = app.db();
    let r = db
        .query("SELECT reference, url FROM payment_links WHERE case_id = $1 ORDER BY id DESC")
        .bind(case_id)
        .fetch_one(db)
        .await
        .unwrap();
    let sent = replies(db, employer).await;
    assert!(names(&sent).contains(&"payment_link"));
    (r.get("reference").unwrap(), r.get("url").unwrap())
}

#[tokio::test]
async fn a_payment_link_is_sent_and_its_callback_pays_resolves_and_thanks_once() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        let (reference, url) = link_for(&app, employer, case_id, "wamid.L1").await;
        assert_eq!(
            url,
            format!("https://bayar.example/iuran/12345678?ref={reference}")
        );
        let db = app.db();
        let sent = events(db, case_id).await;
        let ev = sent.iter().find(|e| e.0 == "payment_link_sent").unwrap();
        assert_eq!(ev.1["reference"], reference.as_str());
        let body = &replies(db, employer).await[0].2;
        assert!(
            body.to_string().contains(&url),
            "the link is in the message"
        );
        // Asking again reuses the unexpired link.
        let (again, _) = link_for(&app, employer, case_id, "wamid.L2").await;
        assert_eq!(again, reference);

        let paid = json!({"id": "inv-1", "external_id": reference, "status": "PAID",
                          "paid_amount": 3000000, "paid_at": Utc::now().to_rfc3339()});
        assert_eq!(
            callback(&app, Some("nope"), &paid).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            callback(&app, None, &paid).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(count(db, "SELECT COUNT(*) AS n FROM payments").await, 0);
        for _ in 0..2 {
            assert_eq!(
                callback(&app, Some(CALLBACK), &paid).await.0,
                StatusCode::OK
            );
        }
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM payments WHERE source = 'callback'"
            )
            .await,
            2,
            "one payment per bill the link covered"
        );
        assert_eq!(
            count_for(
                db,
                "SELECT COUNT(*) AS n FROM bills WHERE employer_id = $1 AND settled_at IS NULL",
                employer
            )
            .await,
            0
        );
        let k = kinds(db, case_id).await;
        assert_eq!(k.iter().filter(|k| *k == "payment_received").count(), 2);
        assert!(k.contains(&"case_resolved".to_owned()));
        assert_eq!(case_row(db, case_id).await.0, "resolved");
        assert_eq!(names(&replies(db, employer).await), ["payment_thanks"]);
    }
}

#[tokio::test]
async fn a_kept_promise_is_recorded_when_the_payment_arrives_in_time() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        app.post_json(&text("wamid.K1", "besok kami bayar")).await;
        let (reference, _) = link_for(&app, employer, case_id, "wamid.K2").await;
        let paid = json!({"external_id": reference, "status": "PAID", "paid_amount": "3000000.00"});
        assert_eq!(
            callback(&app, Some(CALLBACK), &paid).await.0,
            StatusCode::OK
        );
        let k = kinds(app.db(), case_id).await;
        let kept = k
            .iter()
            .position(|k| k == "promise_kept")
            .expect("promise kept");
        let resolved = k.iter().position(|k| k == "case_resolved").unwrap();
        assert!(kept < resolved);
    }
}

#[tokio::test]
async fn mismatched_amounts_and_unknown_references_are_kept_for_an_officer() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        let (reference, _) = link_for(&app, employer, case_id, "wamid.M1").await;
        let short = json!({"external_id": reference, "status": "PAID", "paid_amount": 1000000});
        assert_eq!(
            callback(&app, Some(CALLBACK), &short).await.0,
            StatusCode::OK
        );
        let unknown = json!({"external_id": "NOT-OURS-1", "status": "PAID", "paid_amount": 5});
        assert_eq!(
            callback(&app, Some(CALLBACK), &unknown).await.0,
            StatusCode::OK
        );
        let db = app.db();
        assert_eq!(count(db, "SELECT COUNT(*) AS n FROM payments").await, 0);
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM payment_exceptions WHERE reason = 'amount_mismatch'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM payment_exceptions WHERE reason = 'unknown_reference'"
            )
            .await,
            1
        );
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        let ev = events(db, case_id).await;
        assert!(ev
            .iter()
            .any(|e| e.0 == "officer_requested" && e.1["reason"] == "payment_amount_mismatch"));
        assert_eq!(
            callback(&app, Some(CALLBACK), &json!({"status": "PAID"}))
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }
}

#[tokio::test]
async fn xendit_links_are_invoices_created_over_http() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/invoices"))
        // base64("xnd_test_key:")
        .and(header("authorization", "Basic eG5kX3Rlc3Rfa2V5Og=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "inv-42", "invoice_url": "https://checkout.xendit.co/web/inv-42",
            "expiry_date": (Utc::now() + Duration::hours(24)).to_rfc3339(),
        })))
        .expect(1)
        .mount(&server)
        .await;
    let base = server.uri();
    let app = TestApp::builder()
        .envs(&[
            ("WA_SMILE__PAYMENTS__PROVIDER", "xendit"),
            ("WA_SMILE__PAYMENTS__XENDIT_API_BASE", base.as_str()),
            ("WA_SMILE__PAYMENTS__XENDIT_SECRET_KEY", "xnd_test_key"),
        ])
        .on(testing::sqlite().await.unwrap())
        .await;
    let (employer, case_id) = seeded(&app).await;
    let (reference, url) = link_for(&app, employer, case_id, "wamid.XL1").await;
    assert_eq!(url, "https://checkout.xendit.co/web/inv-42");
    let (again, _) = link_for(&app, employer, case_id, "wamid.XL2").await;
    assert_eq!(again, reference, "an unexpired invoice is reused");
    let requests = server.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(sent["external_id"], reference.as_str());
    assert_eq!(sent["amount"], 3000000);
}

#[tokio::test]
async fn the_payments_import_path_resolves_cases_too() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        let db = app.db();
        let mut tx = db.begin().await.unwrap();
        let payments: Vec<_> = ["2025-01", "2025-02"]
            .iter()
            .map(|p| wa_smile::ledger::NewPayment {
                employer_id: employer,
                period: wa_smile::domain::Period::parse(p).unwrap(),
                amount: wa_smile::domain::Money::from_minor(150000000),
                paid_at: Utc::now(),
                reference: format!("SMILE-{p}"),
            })
            .collect();
        wa_smile::ledger::record_payments(&mut tx, &payments, "import", "test", Utc::now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(case_row(db, case_id).await.0, "resolved");
    }
}

#[tokio::test]
async fn replies_with_absurd_timestamps_are_stored_without_harm() {
    for app in apps().await {
        let (_, case_id) = seeded(&app).await;
        for (i, ts) in ["8000000000000", "-8000000000000", "0", "4102444800"]
            .iter()
            .enumerate()
        {
            let mut body = text(&format!("wamid.T{i}"), "kami bayar besok");
            body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(ts);
            assert_eq!(
                app.post_json(&body).await,
                StatusCode::OK,
                "{ts} on {}",
                app.t.name
            );
        }
        assert_eq!(
            count(app.db(), "SELECT COUNT(*) AS n FROM inbound_messages").await,
            4
        );
        assert!(kinds(app.db(), case_id)
            .await
            .contains(&"reply_received".to_owned()));
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z0-9 ._:+-]{0,12}".prop_map(Value::from),
            prop_oneof![
                Just("messages"),
                Just("statuses"),
                Just("entry"),
                Just("changes"),
                Just("value"),
                Just("text"),
                Just("button"),
                Just("interactive"),
                Just("1700000000"),
                Just(PHONE),
                Just("delivered"),
                Just("STOP"),
                Just("PAY_LINK:1")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("object".to_owned()),
                        Just("entry".to_owned()),
                        Just("changes".to_owned()),
                        Just("field".to_owned()),
                        Just("value".to_owned()),
                        Just("messages".to_owned()),
                        Just("statuses".to_owned()),
                        Just("contacts".to_owned()),
                        Just("id".to_owned()),
                        Just("from".to_owned()),
                        Just("timestamp".to_owned()),
                        Just("type".to_owned()),
                        Just("text".to_owned()),
                        Just("body".to_owned()),
                        Just("status".to_owned()),
                        Just("button".to_owned()),
                        Just("payload".to_owned()),
                        Just("errors".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn runtime() -> &'static (tokio::runtime::Runtime, TestApp) {
        static RT: std::sync::OnceLock<(tokio::runtime::Runtime, TestApp)> =
            std::sync::OnceLock::new();
        RT.get_or_init(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let app = rt.block_on(async {
                let app = TestApp::builder()
                    .on(testing::sqlite().await.unwrap())
                    .await;
                seeded(&app).await;
                app
            });
            (rt, app)
        })
    }

    fn assert_no_server_error(body: Vec<u8>) -> Result<(), TestCaseError> {
        let (rt, app) = runtime();
        let status = rt.block_on(app.post_signed(&body));
        prop_assert!(!status.is_server_error(), "got {status}");
        prop_assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "got {status}"
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_signed_bytes_never_cause_a_server_error(body in prop::collection::vec(any::<u8>(), 0..512)) {
            assert_no_server_error(body)?;
        }

        #[test]
        fn arbitrary_signed_json_never_causes_a_server_error(v in arb_json()) {
            assert_no_server_error(v.to_string().into_bytes())?;
        }

        #[test]
        fn arbitrary_message_shapes_never_cause_a_server_error(m in arb_json(), id in "[a-z0-9.]{1,10}") {
            let mut msg = json!({"from": PHONE, "id": format!("wamid.{id}"), "timestamp": Utc::now().timestamp().to_string()});
            if let Value::Object(o) = m {
                for (k, v) in o { msg[k] = v; }
            }
            let body = envelope(json!({"messages": [msg], "statuses": [msg.clone()]}));
            assert_no_server_error(body.to_string().into_bytes())?;
        }
    }
}

#[test]
fn classify_prints_what_the_webhook_would_make_of_a_reply() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .args(args)
            .env_remove("WA_SMILE_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let v = run(&[
        "classify",
        "--at",
        "2026-03-03T03:00:00Z",
        "besok kami bayar",
    ]);
    assert_eq!(v["intent"], "promise_to_pay");
    assert_eq!(v["promised_date"], "2026-03-04");
    let confidence = v["confidence"].as_f64().expect("a confidence");
    assert!((0.0..=1.0).contains(&confidence), "{v}");
    let v = run(&[
        "classify",
        "--at",
        "2026-03-03T16:30:00Z",
        "--timezone",
        "Asia/Jayapura",
        "stop",
    ]);
    assert_eq!(v["intent"], "opt_out");
    assert_eq!(v["promised_date"], Value::Null);
    assert!(v["confidence"]
        .as_f64()
        .is_some_and(|c| (0.0..=1.0).contains(&c)));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["classify", "--timezone", "Mars/Base", "halo"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// Meta is answered once a status is stored; the status then settles its
/// outbox row (monotonically) and writes the case event, off the request.
#[tokio::test]
async fn a_signed_status_settles_its_outbox_row_after_the_answer() {
    for app in apps().await {
        let (employer, case_id) = seeded(&app).await;
        let db = app.db();
        let now = Utc::now();
        // A reminder Meta has taken, with a known wamid: what delivery leaves
        // behind, written here so the test needs no Cloud API.
        db.query(
            "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, \
             attempts, wamid, created_at, updated_at, sent_at) \
             VALUES ($1, $2, 'e2e:status', 'reminder_1', 'template', $3, '{}', 'sent', $4, 1, 'wamid.E2E', $4, $4, $4)",
        )
        .bind(case_id)
        .bind(employer)
        .bind(PHONE.to_owned())
        .bind(now)
        .execute(db)
        .await
        .unwrap();
        assert_eq!(
            app.post_json(&status("wamid.E2E", "read")).await,
            StatusCode::OK
        );
        // A late `delivered` after `read` must not move the row back.
        assert_eq!(
            app.post_json(&status("wamid.E2E", "delivered")).await,
            StatusCode::OK
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let state: String = db
                .query("SELECT state FROM outbox WHERE wamid = 'wamid.E2E'")
                .fetch_one(db)
                .await
                .unwrap()
                .get("state")
                .unwrap();
            let pending = count_for(db, "SELECT COUNT(*) AS n FROM webhook_statuses WHERE sunk_at IS NULL AND wamid = 'wamid.E2E' AND 1 = $1", 1).await;
            if state == "read" && pending == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: status never settled (state {state}, {pending} pending)",
                app.t.name
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let reads = count_for(
            db,
            "SELECT COUNT(*) AS n FROM case_events WHERE case_id = $1 AND kind = 'message_read'",
            case_id,
        )
        .await;
        assert_eq!(reads, 1, "{}", app.t.name);
    }
}

/// An employer who disputes the bill is not reminded again until an officer
/// has dealt with it; once the officer resumes, the stage reminders return.
#[tokio::test]
async fn a_dispute_holds_reminders_until_an_officer_resumes() {
    use wa_smile::accounts::{Principal, Role};
    use wa_smile::case_actions::{self, Action};
    for app in apps().await {
        let (_, case_id) = seeded(&app).await;
        let db = app.db();
        assert_eq!(
            app.post_json(&text("wamid.D1", "PT nya sudah bubar")).await,
            StatusCode::OK
        );
        assert_eq!(case_row(db, case_id).await.0, "needs_officer");
        let reminder_3 = "SELECT COUNT(*) AS n FROM outbox WHERE case_id = $1 AND idempotency_key LIKE 'case:%:stage:reminder_3' AND state = 'queued'";

        // Three days on the case enters reminder_3, but the bot stays quiet.
        let ctx = ScanContext::from_config(&app.config).unwrap();
        let later = Utc::now() + Duration::days(3);
        scan::run(db, &ctx, later).await.unwrap();
        assert_eq!(
            count_for(db, reminder_3, case_id).await,
            0,
            "{}: reminded a disputing employer",
            app.t.name
        );
        let quiet: Option<String> = db
            .query("SELECT quiet_reason FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(db)
            .await
            .unwrap()
            .get("quiet_reason")
            .unwrap();
        assert_eq!(quiet.as_deref(), Some("awaiting_officer"), "{}", app.t.name);

        let officer = Principal {
            name: "officer_a".into(),
            role: Role::Admin,
            branch: None,
        };
        case_actions::apply(db, case_id, &officer, Action::Resume, &[], later)
            .await
            .unwrap();
        scan::run(db, &ctx, later).await.unwrap();
        assert_eq!(
            count_for(db, reminder_3, case_id).await,
            1,
            "{}: reminders did not resume",
            app.t.name
        );
    }
}

/// A signed body of `n` change-level items Meta would not batch this many of.
fn many_other_fields(n: usize) -> Vec<u8> {
    let changes: Vec<Value> = (0..n)
        .map(|i| json!({"field": "account_update", "value": {"n": i}}))
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": changes}]})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn a_webhook_with_more_updates_than_meta_batches_is_refused_at_once() {
    for app in apps().await {
        // A million tiny entries in a signed 2 MB body.
        let mut body = br#"{"object":"whatsapp_business_account","entry":["#.to_vec();
        body.extend(std::iter::repeat_n(b"1,".as_slice(), 999_999).flatten());
        body.extend(b"1]}");
        let started = std::time::Instant::now();
        let s = app.post_signed(&body).await;
        let took = started.elapsed();
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{}", app.t.name);
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
        // Past the bound in changes rather than entries: refused as well.
        let s = app.post_signed(&many_other_fields(1_001)).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{}", app.t.name);
        assert_eq!(
            count(app.db(), "SELECT COUNT(*) AS n FROM webhook_other").await,
            0
        );
    }
}

#[tokio::test]
async fn a_redelivered_body_of_other_events_stores_nothing_new() {
    for app in apps().await {
        let body = many_other_fields(1_000);
        for _ in 0..2 {
            let started = std::time::Instant::now();
            assert_eq!(app.post_signed(&body).await, StatusCode::OK);
            let took = started.elapsed();
            assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
        }
        assert_eq!(
            count(app.db(), "SELECT COUNT(*) AS n FROM webhook_other").await,
            1_000,
            "{}",
            app.t.name
        );
        // Another body with the same kind of item is a new event.
        assert_eq!(app.post_signed(&many_other_fields(1)).await, StatusCode::OK);
        assert_eq!(
            count(app.db(), "SELECT COUNT(*) AS n FROM webhook_other").await,
            1_001
        );
    }
}

#[tokio::test]
async fn the_handshake_carries_the_security_headers_and_throttles_token_guesses() {
    for app in apps().await {
        let get = |token: &str| {
            Request::get(format!(
                "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=%3Cb%3E"
            ))
            .body(Body::empty())
            .unwrap()
        };
        let res = app.router.clone().oneshot(get(VERIFY)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.contains_key("content-security-policy"));
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        for i in 0..10 {
            let (s, _) = send(&app, get(&format!("tebakan-{i}"))).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{}", app.t.name);
        }
        // The guessing client is refused even with the right token now.
        let (s, _) = send(&app, get(VERIFY)).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{}", app.t.name);
    }
}
