//! Money safety end to end, against the real app served on port 0, on both
//! backends: a redelivered link request makes one link, a new link retires
//! the old one, a payment beyond what is owed is kept for an officer, and
//! automated replies to one employer are bounded.

use crate::support::{message, TestApp};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use wa_smile::store::Db;
use wa_smile::testing;

const PHONE: &str = "6281234567890";
const NPP: &str = "12345678";

async fn apps(extra: &[(&str, &str)]) -> Vec<TestApp> {
    TestApp::builder().envs(extra).all().await
}

fn inbound(wamid: &str, at: DateTime<Utc>, body: Value) -> String {
    message(wamid, PHONE, at, body).to_string()
}

fn tap(wamid: &str, payload: &str) -> String {
    inbound(
        wamid,
        Utc::now(),
        json!({"type": "button", "button": {"payload": payload, "text": "tap"}}),
    )
}

fn text(wamid: &str, t: &str) -> String {
    inbound(
        wamid,
        Utc::now(),
        json!({"type": "text", "text": {"body": t}}),
    )
}

/// An employer with two overdue bills of Rp1.500.000 and its open case.
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
    for (period, days) in [("2025-01", 12), ("2025-02", 9)] {
        add_bill(app, period, 150_000_000, days).await;
    }
    f.scan(Utc::now()).await;
    (employer, f.case_of(NPP).await)
}

async fn add_bill(app: &TestApp, period: &str, amount_minor: i64, days_overdue: i64) {
    app.fixtures()
        .bill(NPP, period, amount_minor)
        .due(Utc::now().date_naive() - Duration::days(days_overdue))
        .create()
        .await;
}

async fn count(db: &Db, sql: &str, id: i64) -> i64 {
    db.query(sql)
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
        .get("n")
        .unwrap()
}

async fn links(db: &Db, case_id: i64) -> Vec<(String, String, String, i64)> {
    db.query(
        "SELECT reference, status, url, amount_minor FROM payment_links WHERE case_id = $1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("reference").unwrap(),
            r.get("status").unwrap(),
            r.get("url").unwrap(),
            r.get("amount_minor").unwrap(),
        )
    })
    .collect()
}

/// Queued automated replies (not the scan's reminders), by message name.
async fn queued_replies(db: &Db, employer: i64) -> Vec<String> {
    db.query(
        "SELECT message FROM outbox WHERE employer_id = $1 \
         AND idempotency_key NOT LIKE 'case:%:stage:%' AND state = 'queued' ORDER BY id",
    )
    .bind(employer)
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("message").unwrap())
    .collect()
}

async fn exceptions(db: &Db) -> Vec<(String, String)> {
    db.query("SELECT reference, reason FROM payment_exceptions ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("reference").unwrap(), r.get("reason").unwrap()))
        .collect()
}

async fn events(db: &Db, case_id: i64) -> Vec<(String, Value)> {
    wa_smile::case_log::for_case(db, case_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.data))
        .collect()
}

async fn case_status(db: &Db, case_id: i64) -> String {
    db.query("SELECT status FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one(db)
        .await
        .unwrap()
        .get("status")
        .unwrap()
}

fn paid(reference: &str, rupiah: i64) -> Value {
    json!({"id": format!("inv-{reference}"), "external_id": reference, "status": "PAID",
           "paid_amount": rupiah, "paid_at": Utc::now().to_rfc3339()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_copies_of_a_link_request_make_one_link_and_one_reply() {
    for app in apps(&[]).await {
        let (employer, case_id) = seeded(&app).await;
        let body = tap("wamid.RACE", &format!("PAY_LINK:{case_id}"));
        let answers = futures::future::join_all((0..20).map(|_| app.post_signed_http(&body))).await;
        assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
        let db = app.db();
        assert_eq!(links(db, case_id).await.len(), 1, "{}", app.t.name);
        assert_eq!(queued_replies(db, employer).await, ["payment_link"]);
        let sent = events(db, case_id).await;
        assert_eq!(
            sent.iter().filter(|e| e.0 == "payment_link_sent").count(),
            1
        );
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM inbound_messages WHERE employer_id = $1",
                employer
            )
            .await,
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_a_link_request_create_one_xendit_invoice() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for t in testing::all().await.unwrap() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/invoices"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({
                        "id": "inv-1", "invoice_url": "https://checkout.xendit.co/web/inv-1",
                        "expiry_date": (Utc::now() + Duration::hours(24)).to_rfc3339(),
                    }))
                    .set_delay(std::time::Duration::from_millis(50)),
            )
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
            .on(t)
            .await;
        let (employer, case_id) = seeded(&app).await;
        let body = tap("wamid.XRACE", &format!("PAY_LINK:{case_id}"));
        let answers = futures::future::join_all((0..20).map(|_| app.post_signed_http(&body))).await;
        assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
        let l = links(app.db(), case_id).await;
        assert_eq!(l.len(), 1, "{}", app.t.name);
        assert_eq!(l[0].1, "pending");
        assert_eq!(l[0].2, "https://checkout.xendit.co/web/inv-1");
        assert_eq!(queued_replies(app.db(), employer).await, ["payment_link"]);
        server.verify().await;
    }
}

#[tokio::test]
async fn a_new_link_supersedes_the_old_and_paying_both_is_kept_for_an_officer() {
    for app in apps(&[]).await {
        let db = app.db();
        let (employer, case_id) = seeded(&app).await;
        assert_eq!(
            app.post_signed_http(&tap("wamid.S1", &format!("PAY_LINK:{case_id}")))
                .await,
            200
        );
        // A new bill arrives; the employer asks again.
        add_bill(&app, "2025-03", 100_000_000, 2).await;
        assert_eq!(
            app.post_signed_http(&tap("wamid.S2", &format!("PAY_LINK:{case_id}")))
                .await,
            200
        );
        let l = links(db, case_id).await;
        assert_eq!(l.len(), 2, "{}", app.t.name);
        let (first, second) = (l[0].0.clone(), l[1].0.clone());
        assert_eq!(l[0].1, "superseded", "the old link is no longer payable");
        assert_eq!(l[1].1, "pending");
        assert_eq!(l[1].3, 400_000_000);
        assert_eq!(
            queued_replies(db, employer).await,
            ["payment_link", "payment_link"]
        );

        // The employer pays the old link anyway: recorded, and an officer looks.
        assert_eq!(app.callback_http(&paid(&first, 3_000_000)).await, 200);
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM payments WHERE employer_id = $1",
                employer
            )
            .await,
            2
        );
        assert_eq!(
            exceptions(db).await,
            [(first.clone(), "superseded_link".into())]
        );
        assert_ne!(case_status(db, case_id).await, "resolved");

        // Then the new one: the bills the old link paid are paid twice.
        assert_eq!(app.callback_http(&paid(&second, 4_000_000)).await, 200);
        assert_eq!(case_status(db, case_id).await, "resolved");
        let ex = exceptions(db).await;
        assert_eq!(
            ex.iter()
                .filter(|(r, why)| r.starts_with(&second) && why == "bill_already_settled")
                .count(),
            2,
            "{ex:?}"
        );
        let thanks = count(
            db,
            "SELECT COUNT(*) AS n FROM outbox WHERE employer_id = $1 AND message = 'payment_thanks'",
            employer,
        )
        .await;
        assert_eq!(thanks, 1, "\"lunas\" is said once");
        // Each exception is on the case log and in the audit trail.
        let ev = events(db, case_id).await;
        assert!(ev.iter().any(|e| e.0 == "officer_requested"
            && e.1["reason"] == "payment_exception"
            && e.1["exception"] == "superseded_link"));
        let audited = db
            .query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment.exception'")
            .fetch_one(db)
            .await
            .unwrap()
            .get::<i64>("n")
            .unwrap();
        assert_eq!(audited, 3);
    }
}

#[tokio::test]
async fn a_payment_for_an_expired_link_is_recorded_and_raised() {
    for app in apps(&[]).await {
        let db = app.db();
        let (employer, case_id) = seeded(&app).await;
        app.post_signed_http(&tap("wamid.E1", &format!("PAY_LINK:{case_id}")))
            .await;
        let reference = links(db, case_id).await[0].0.clone();
        let expired = json!({"external_id": reference, "status": "EXPIRED"});
        assert_eq!(app.callback_http(&expired).await, 200);
        assert_eq!(links(db, case_id).await[0].1, "expired");
        assert_eq!(app.callback_http(&paid(&reference, 3_000_000)).await, 200);
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM payments WHERE employer_id = $1",
                employer
            )
            .await,
            2,
            "the money arrived: it is recorded"
        );
        assert_eq!(exceptions(db).await, [(reference, "expired_link".into())]);
    }
}

#[tokio::test]
async fn a_smile_payment_for_a_bill_the_gateway_settled_is_raised_and_thanks_are_not_repeated() {
    for app in apps(&[]).await {
        let db = app.db();
        let (employer, case_id) = seeded(&app).await;
        app.post_signed_http(&tap("wamid.D1", &format!("PAY_LINK:{case_id}")))
            .await;
        let reference = links(db, case_id).await[0].0.clone();
        assert_eq!(app.callback_http(&paid(&reference, 3_000_000)).await, 200);
        assert_eq!(case_status(db, case_id).await, "resolved");
        // SMILE later reports the same money under its own reference.
        let mut tx = db.begin().await.unwrap();
        wa_smile::ledger::record_payments(
            &mut tx,
            &[wa_smile::ledger::NewPayment {
                employer_id: employer,
                period: wa_smile::domain::Period::parse("2025-01").unwrap(),
                amount: wa_smile::domain::Money::from_minor(150_000_000),
                paid_at: Utc::now(),
                reference: "SMILE-2025-01".into(),
            }],
            "import",
            "import:test",
            Utc::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            exceptions(db).await,
            [("SMILE-2025-01".to_owned(), "bill_already_settled".into())]
        );
        let thanks = count(
            db,
            "SELECT COUNT(*) AS n FROM outbox WHERE employer_id = $1 AND message = 'payment_thanks'",
            employer,
        )
        .await;
        assert_eq!(thanks, 1);
    }
}

#[tokio::test]
async fn a_new_xendit_invoice_expires_the_old_one_over_http() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    for n in 1..=2 {
        Mock::given(method("POST"))
            .and(path("/v2/invoices"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": format!("inv-{n}"),
                "invoice_url": format!("https://checkout.xendit.co/web/inv-{n}"),
                "expiry_date": (Utc::now() + Duration::hours(24)).to_rfc3339(),
            })))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/invoices/inv-1/expire!"))
        // base64("xnd_test_key:")
        .and(header("authorization", "Basic eG5kX3Rlc3Rfa2V5Og=="))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "inv-1", "status": "EXPIRED"})),
        )
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
    let db = app.db();
    let (_, case_id) = seeded(&app).await;
    app.post_signed_http(&tap("wamid.XS1", &format!("PAY_LINK:{case_id}")))
        .await;
    add_bill(&app, "2025-03", 100_000_000, 2).await;
    app.post_signed_http(&tap("wamid.XS2", &format!("PAY_LINK:{case_id}")))
        .await;
    let l = links(db, case_id).await;
    assert_eq!(
        l.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["superseded", "pending"]
    );
    assert_eq!(l[1].2, "https://checkout.xendit.co/web/inv-2");
    server.verify().await;
}

#[tokio::test]
async fn eight_payment_claims_get_one_acknowledgement_and_the_rest_say_why_not() {
    for app in apps(&[]).await {
        let db = app.db();
        let (employer, case_id) = seeded(&app).await;
        for i in 0..8 {
            assert_eq!(
                app.post_signed_http(&text(&format!("wamid.P{i}"), "sudah bayar kemarin"))
                    .await,
                200
            );
        }
        assert_eq!(
            queued_replies(db, employer).await,
            ["payment_claim_ack"],
            "{}",
            app.t.name
        );
        let withheld = db
            .query(
                "SELECT last_error FROM outbox WHERE employer_id = $1 AND message = 'payment_claim_ack' \
                 AND state = 'skipped'",
            )
            .bind(employer)
            .fetch_all(db)
            .await
            .unwrap();
        assert_eq!(withheld.len(), 7);
        for r in withheld {
            assert_eq!(
                r.get::<Option<String>>("last_error").unwrap().as_deref(),
                Some("reply_already_sent")
            );
        }
        let ev = events(db, case_id).await;
        assert_eq!(
            ev.iter()
                .filter(|e| e.0 == "message_skipped"
                    && e.1["message"] == "payment_claim_ack"
                    && e.1["reason"] == "reply_already_sent")
                .count(),
            7
        );
    }
}

#[tokio::test]
async fn automated_replies_to_one_employer_stop_at_the_daily_cap() {
    for app in apps(&[("WA_SMILE__POLICY__REPLIES_PER_DAY", "2")]).await {
        let db = app.db();
        let (employer, case_id) = seeded(&app).await;
        for (wamid, payload) in [
            ("wamid.C1", "PAY_LINK"),
            ("wamid.C2", "PAID"),
            ("wamid.C3", "OFFICER"),
        ] {
            assert_eq!(
                app.post_signed_http(&tap(wamid, &format!("{payload}:{case_id}")))
                    .await,
                200
            );
        }
        assert_eq!(
            queued_replies(db, employer).await,
            ["payment_link", "payment_claim_ack"],
            "{}",
            app.t.name
        );
        let ev = events(db, case_id).await;
        assert!(ev.iter().any(|e| e.0 == "message_skipped"
            && e.1["message"] == "officer_will_contact"
            && e.1["reason"] == "daily_reply_cap"));
    }
}

#[test]
fn a_payments_import_refuses_a_reference_of_another_employer_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let run = |args: &[&str], path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .args(args)
            .arg(path)
            .env("WA_SMILE__DATABASE__URL", &db)
            .output()
            .unwrap()
    };
    let employers = file(
        "e.csv",
        "npp,name,branch,wa_phone,contact_name\n11111111,PT Satu,JAKARTA,,x\n22222222,PT Dua,PEKANBARU,,y\n",
    );
    assert_eq!(
        run(&["import", "employers"], &employers).status.code(),
        Some(0)
    );
    let bills = file(
        "b.csv",
        "npp,period,amount\n11111111,2025-01,1000000\n22222222,2025-01,1000000\n",
    );
    assert_eq!(run(&["import", "bills"], &bills).status.code(), Some(0));
    let first = file(
        "p1.csv",
        "npp,period,amount,paid_at,reference\n11111111,2025-01,1000000,2025-02-10T10:00:00+07:00,JKTPAY-1\n",
    );
    assert_eq!(run(&["import", "payments"], &first).status.code(), Some(0));
    let moved = file(
        "p2.csv",
        "npp,period,amount,paid_at,reference\n\
         22222222,2025-01,1000000,2025-02-11T10:00:00+07:00,PKUPAY-9\n\
         22222222,2025-01,1,2025-02-11T10:00:00+07:00,JKTPAY-1\n",
    );
    // A dry run says the same as the import would, with exit 2.
    let dry = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["import", "payments", "--dry-run"])
        .arg(&moved)
        .env("WA_SMILE__DATABASE__URL", &db)
        .output()
        .unwrap();
    assert_eq!(
        dry.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(String::from_utf8_lossy(&dry.stderr).contains("line 3, column reference: "));
    let out = run(&["import", "payments"], &moved);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("line 3, column reference: ")),
        "{stderr}"
    );
    // Nothing of the file was written, and the payment stayed where it was.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = Db::connect(&db, 1).await.unwrap();
        let rows = db
            .query(
                "SELECT p.reference, e.npp FROM payments p JOIN employers e ON e.id = p.employer_id ORDER BY p.reference",
            )
            .fetch_all(&db)
            .await
            .unwrap();
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.get("reference").unwrap(), r.get("npp").unwrap()))
            .collect();
        assert_eq!(got, [("JKTPAY-1".to_owned(), "11111111".to_owned())]);
    });
}

/// The callback's outcome, by name (`recorded`, `duplicate`…).
async fn callback_outcome(app: &TestApp, body: &Value) -> String {
    let answer: Value = app
        .http
        .post(format!("{}/webhooks/payments", app.url))
        .header("x-callback-token", crate::support::CALLBACK)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match &answer["outcome"] {
        Value::String(s) => s.clone(),
        Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
        other => panic!("no outcome in {other}"),
    }
}

/// PAID and SETTLED for one invoice, both past the "already paid?" look
/// before either commits: the link's own row lets exactly one through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_and_settled_racing_for_one_invoice_record_it_once() {
    for app in apps(&[]).await {
        let db = app.db();
        let (employer, case_id) = seeded(&app).await;
        app.post_signed(tap("wamid.R1", &format!("PAY_LINK:{case_id}")).as_bytes())
            .await;
        let reference = links(db, case_id).await[0].0.clone();
        let paid_body = paid(&reference, 3_000_000);
        let mut settled_body = paid_body.clone();
        settled_body["status"] = json!("SETTLED");

        // On PostgreSQL the link's row is held until both callbacks wait
        // for it, so both have read the link as unpaid. (SQLite runs one
        // writer at a time: the second always sees the first's commit.)
        let holder = if app.t.name == "postgres" {
            let mut tx = db.begin().await.unwrap();
            tx.query("SELECT id FROM payment_links WHERE reference = $1 FOR UPDATE")
                .bind(reference.clone())
                .execute(&mut tx)
                .await
                .unwrap();
            Some(tx)
        } else {
            None
        };
        let both = futures::future::join(
            callback_outcome(&app, &paid_body),
            callback_outcome(&app, &settled_body),
        );
        let release = async {
            if let Some(tx) = holder {
                loop {
                    let waiting: i64 = db
                        .query(
                            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                             AND query LIKE 'UPDATE payment_links SET status = ''paid''%'",
                        )
                        .fetch_scalar(db)
                        .await
                        .unwrap();
                    if waiting >= 2 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                tx.commit().await.unwrap();
            }
        };
        let ((a, b), ()) = futures::future::join(both, release).await;
        let mut outcomes = [a, b];
        outcomes.sort();
        assert_eq!(outcomes, ["duplicate", "recorded"], "{}", app.t.name);
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM payments WHERE employer_id = $1",
                employer
            )
            .await,
            2,
            "{}: one payment per bill",
            app.t.name
        );
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM outbox WHERE employer_id = $1 AND message = 'payment_thanks'",
                employer,
            )
            .await,
            1,
            "{}",
            app.t.name
        );
        assert_eq!(case_status(db, case_id).await, "resolved");
    }
}
