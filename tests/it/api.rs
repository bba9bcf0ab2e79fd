//! The JSON API on both backends: bearer tokens, role and branch rules,
//! 401/403/404/422 with JSON bodies, the CSV-row imports and the OpenAPI
//! document matching the routes.

use crate::support;

use axum::http::StatusCode;
use serde_json::Value;
use support::*;
use wa_smile::accounts::{self, Role};
use wa_smile::testing;

struct Tokens {
    admin: String,
    super_a: String,
}

async fn tokens(db: &wa_smile::store::Db) -> Tokens {
    Tokens {
        admin: accounts::create_token(db, "smile", Role::Admin, None)
            .await
            .unwrap(),
        super_a: accounts::create_token(db, "cabang-a", Role::Supervisor, Some(BRANCH_A))
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn no_or_bad_token_is_401_with_a_json_error() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        let mut c = app.browser();
        for token in [None, Some("wsk_nope"), Some("")] {
            let r = c.send(api("/api/v1/cases", "GET", token, None)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", t.name);
            assert_eq!(r.json()["error"]["code"], "unauthorized");
        }
        // A session cookie is not an API credential.
        c.login_ok("admin").await;
        let r = c.send(api("/api/v1/cases", "GET", None, None)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_branch_token_reads_its_branch_and_gets_403_elsewhere() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let k = tokens(&t.db).await;
        let mut c = app.browser();
        let r = c
            .send(api("/api/v1/cases", "GET", Some(&k.super_a), None))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", t.name);
        let list = r.json();
        let npps: Vec<&str> = list["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["npp"].as_str().unwrap())
            .collect();
        assert_eq!(npps.len(), 2);
        assert!(!npps.contains(&"20000001"));
        assert_eq!(
            list["counts"]["open"].as_i64().unwrap()
                + list["counts"]["needs_officer"].as_i64().unwrap(),
            2
        );
        let forbidden = [
            format!("/api/v1/cases?branch={BRANCH_B}"),
            format!("/api/v1/cases/{}", s.case_b),
            format!("/api/v1/employers/{}/case", s.npp_b),
        ];
        for uri in &forbidden {
            let r = c.send(api(uri, "GET", Some(&k.super_a), None)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
            assert_eq!(r.json()["error"]["code"], "forbidden");
        }
        // Writing another branch's bills is refused, and nothing is written.
        let body = r#"[{"npp": "20000001", "period": "2026-03", "amount": "100000"}]"#;
        let r = c
            .send(api("/api/v1/bills", "POST", Some(&k.super_a), Some(body)))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        for uri in [
            "/api/v1/cases/99999",
            "/api/v1/cases/x",
            "/api/v1/employers/99999999/case",
        ] {
            let r = c.send(api(uri, "GET", Some(&k.admin), None)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(r.json()["error"]["code"], "not_found");
        }
    }
}

#[tokio::test]
async fn the_case_is_the_case_view_with_events_oldest_first() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let k = tokens(&t.db).await;
        let mut c = app.browser();
        let r = c
            .send(api(
                &format!("/api/v1/cases/{}", s.case_a),
                "GET",
                Some(&k.super_a),
                None,
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", t.name);
        let v = r.json();
        let expected = wa_smile::cases::load(&t.db, &config().policy(), s.case_a, now())
            .await
            .unwrap()
            .unwrap();
        let mut expected = serde_json::to_value(expected).unwrap();
        let mut got = v.clone();
        // Late-fee estimates depend on the day; everything else is exact.
        for x in [&mut expected, &mut got] {
            x.as_object_mut().unwrap().remove("totals");
            for b in x["bills"].as_array_mut().unwrap() {
                b.as_object_mut().unwrap().remove("late_fee");
            }
        }
        assert_eq!(got, expected);
        assert_eq!(v["employer"]["npp"], s.npp_a);
        let ids: Vec<i64> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(v["bills"][0]["late_fee_estimated"].as_bool().unwrap());
        let r = c
            .send(api(
                &format!("/api/v1/employers/{}/case", s.npp_a),
                "GET",
                Some(&k.super_a),
                None,
            ))
            .await;
        assert_eq!(r.json()["id"], s.case_a);
    }
}

#[tokio::test]
async fn bills_and_payments_are_validated_like_the_csv_import() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let k = tokens(&t.db).await;
        let mut c = app.browser();
        let count = |db: wa_smile::store::Db| async move {
            db.query("SELECT COUNT(*) AS n FROM bills")
                .fetch_one(&db)
                .await
                .unwrap()
                .get::<i64>("n")
                .unwrap()
        };
        let before = count(t.db.clone()).await;
        let bad = r#"[
            {"npp": "10000001", "period": "2026-03", "amount": "100000"},
            {"npp": "10000001", "period": "2026-13", "amount": "1.234"},
            {"npp": "99999999", "period": "2026-03", "amount": 5000}
        ]"#;
        let r = c
            .send(api("/api/v1/bills", "POST", Some(&k.super_a), Some(bad)))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            t.name,
            r.body
        );
        let e = r.json();
        assert_eq!(e["error"]["code"], "invalid");
        let details = e["error"]["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["row"] == 2 && d["column"] == "period"),
            "{details:?}"
        );
        assert!(details
            .iter()
            .any(|d| d["row"] == 2 && d["column"] == "amount"));
        assert!(details
            .iter()
            .any(|d| d["row"] == 3 && d["column"] == "npp"));
        assert_eq!(count(t.db.clone()).await, before, "nothing written");
        for (body, status) in [
            ("not json", StatusCode::BAD_REQUEST),
            ("{}", StatusCode::BAD_REQUEST),
            ("[1]", StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            let r = c
                .send(api("/api/v1/bills", "POST", Some(&k.admin), Some(body)))
                .await;
            assert_eq!(r.status, status, "{body}");
        }

        let good = r#"[{"npp": "10000001", "period": "2026-03", "amount": "100000", "payment_code": "12345678901"}]"#;
        let r = c
            .send(api("/api/v1/bills", "POST", Some(&k.super_a), Some(good)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.json(),
            serde_json::json!({"inserted": 1, "updated": 0, "unchanged": 0})
        );
        assert_eq!(count(t.db.clone()).await, before + 1);

        let paid_at = now().to_rfc3339();
        let pay = format!(
            r#"[{{"npp": "10000002", "period": "2026-02", "amount": 500000, "paid_at": "{paid_at}", "reference": "API-1"}}]"#
        );
        let r = c
            .send(api(
                "/api/v1/payments",
                "POST",
                Some(&k.super_a),
                Some(&pay),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["inserted"], 1);
        let again = c
            .send(api(
                "/api/v1/payments",
                "POST",
                Some(&k.super_a),
                Some(&pay),
            ))
            .await;
        assert_eq!(again.json()["unchanged"], 1);
        let bad_pay = r#"[{"npp": "10000002", "period": "2026-02", "amount": "x", "paid_at": "kemarin", "reference": ""}]"#;
        let r = c
            .send(api(
                "/api/v1/payments",
                "POST",
                Some(&k.super_a),
                Some(bad_pay),
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let _ = s;
    }
}

#[tokio::test]
async fn scan_runs_for_supervisors_and_returns_its_summary() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        let k = tokens(&t.db).await;
        let mut c = app.browser();
        let r = c
            .send(api("/api/v1/scan", "POST", Some(&k.super_a), None))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", t.name, r.body);
        let v = r.json();
        for key in [
            "cases_opened",
            "cases_updated",
            "cases_resolved",
            "messages_queued",
        ] {
            assert!(v[key].is_u64(), "{key}");
        }
        assert_eq!(
            c.send(api("/api/v1/scan", "POST", None, None)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn officers_cannot_hold_api_tokens() {
    let app = TestApp::builder()
        .on(testing::sqlite().await.unwrap())
        .await;
    let t = &app.t;
    assert!(
        accounts::create_token(&t.db, "x", Role::Officer, Some(BRANCH_A))
            .await
            .is_err()
    );
    assert!(
        accounts::create_token(&t.db, "x", Role::Supervisor, None)
            .await
            .is_err(),
        "a supervisor token needs a branch"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes() {
    let app = TestApp::builder()
        .on(testing::sqlite().await.unwrap())
        .await;
    let mut c = app.browser();
    let r = c.get("/api/v1/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc: Value = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut paths: Vec<(String, String)> = Vec::new();
    for (p, ops) in doc["paths"].as_object().unwrap() {
        for m in ops.as_object().unwrap().keys() {
            paths.push((m.to_uppercase(), p.clone()));
        }
    }
    paths.sort();
    let mut expected: Vec<(String, String)> = [
        ("GET", "/api/v1/cases"),
        ("GET", "/api/v1/cases/{id}"),
        ("GET", "/api/v1/employers/{npp}/case"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/bills"),
        ("POST", "/api/v1/payments"),
        ("POST", "/api/v1/scan"),
        ("GET", "/api/v1/audit"),
        ("POST", "/api/v1/exports"),
        ("GET", "/api/v1/exports/{id}"),
        ("GET", "/api/v1/exports/{id}/file"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    expected.sort();
    assert_eq!(paths, expected);
    // Each documented route answers (401 without a token, not 404/405).
    for (m, p) in &expected {
        let uri = p.replace("{id}", "1").replace("{npp}", "10000001");
        let r = c.send(api(&uri, m, None, None)).await;
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{m} {uri}");
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
    }
}

async fn post_payment(
    c: &mut Client,
    token: &str,
    npp: &str,
    reference: &str,
    amount: &str,
) -> Resp {
    let body = serde_json::json!([{"npp": npp, "period": "2026-02", "amount": amount,
                                   "paid_at": "2026-03-20T10:00:00+07:00", "reference": reference}]);
    c.send(api(
        "/api/v1/payments",
        "POST",
        Some(token),
        Some(&body.to_string()),
    ))
    .await
}

async fn payment_owner(db: &wa_smile::store::Db, reference: &str) -> (String, i64) {
    let r = db
        .query(
            "SELECT e.npp, p.amount_minor FROM payments p JOIN employers e ON e.id = p.employer_id \
             WHERE p.reference = $1",
        )
        .bind(reference.to_owned())
        .fetch_one(db)
        .await
        .unwrap();
    (r.get("npp").unwrap(), r.get("amount_minor").unwrap())
}

#[tokio::test]
async fn a_payment_reference_is_never_moved_to_another_employer() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let k = tokens(&t.db).await;
        let mut c = app.browser();
        // Branch B's payment settles its bill.
        let r = post_payment(&mut c, &k.admin, &s.npp_b, "JKTPAY-1", "900000").await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", t.name, r.body);
        let settled = |db: wa_smile::store::Db| async move {
            db.query(
                "SELECT b.settled_at FROM bills b JOIN employers e ON e.id = b.employer_id \
                 WHERE e.npp = '20000001'",
            )
            .fetch_one(&db)
            .await
            .unwrap()
            .get::<Option<chrono::DateTime<chrono::Utc>>>("settled_at")
            .unwrap()
            .is_some()
        };
        assert!(settled(t.db.clone()).await);

        // A branch-A token re-using it for a branch-A employer: refused.
        let r = post_payment(&mut c, &k.super_a, &s.npp_a, "JKTPAY-1", "1").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert_eq!(
            payment_owner(&t.db, "JKTPAY-1").await,
            (s.npp_b.clone(), 90_000_000)
        );
        assert!(settled(t.db.clone()).await, "branch B's bill stays paid");

        // Within one branch, a reference of another employer is an input error.
        let r = post_payment(&mut c, &k.super_a, "10000002", "PKUPAY-1", "500000").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = post_payment(&mut c, &k.super_a, &s.npp_a, "PKUPAY-1", "500000").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let details = r.json()["error"]["details"].clone();
        assert_eq!(details[0]["row"], 1);
        assert_eq!(details[0]["column"], "reference");
        // So it is for an admin, who may write every branch.
        let r = post_payment(&mut c, &k.admin, &s.npp_a, "JKTPAY-1", "1").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(payment_owner(&t.db, "PKUPAY-1").await.0, "10000002");

        // The same employer's reference with another amount is a correction:
        // applied, audited with before and after, and on the case log.
        let r = post_payment(&mut c, &k.super_a, "10000002", "PKUPAY-1", "400000").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["updated"], 1);
        assert_eq!(payment_owner(&t.db, "PKUPAY-1").await.1, 40_000_000);
        let audit =
            t.db.query(
                "SELECT before, after FROM audit_log WHERE action = 'payment.correct' \
                 AND entity = 'payment:PKUPAY-1'",
            )
            .fetch_all(&t.db)
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);
        let before: Value =
            serde_json::from_str(&audit[0].get::<String>("before").unwrap()).unwrap();
        assert_eq!(before["amount"], "500000");
        let case_a2 = s.case_a2;
        let ev = wa_smile::case_log::for_case(&t.db, case_a2).await.unwrap();
        let corrected = ev
            .iter()
            .find(|e| e.kind == "payment_corrected")
            .expect("a payment_corrected event");
        assert_eq!(corrected.data["reference"], "PKUPAY-1");
        assert_eq!(corrected.data["before"]["amount"], "500000");
        assert_eq!(corrected.data["after"]["amount"], "400000");
    }
}

/// Issue 12 item 6: a payment posted through the API that settles a case
/// thanks the employer with the same message a gateway callback or a CSV
/// import sends, and a re-posted identical payment does not thank again.
/// The transfer was made the day before the scan opened the case (the
/// bank's data arrives later): the thank-you still names what was paid.
#[tokio::test]
async fn an_api_payment_that_settles_a_case_thanks_the_employer_once() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let k = tokens(&t.db).await;
        let mut c = app.browser();
        let paid_at = now() - chrono::Duration::days(1);
        let body = serde_json::json!([{"npp": s.npp_b, "period": "2026-02", "amount": "900000",
                                       "paid_at": paid_at.to_rfc3339(), "reference": "API-LUNAS-1"}]);
        for round in 0..2 {
            let r = c
                .send(api(
                    "/api/v1/payments",
                    "POST",
                    Some(&k.admin),
                    Some(&body.to_string()),
                ))
                .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{} round {round}: {}",
                t.name,
                r.body
            );
        }
        let resolution: Option<String> =
            t.db.query("SELECT resolution FROM cases WHERE id = $1")
                .bind(s.case_b)
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        assert_eq!(resolution.as_deref(), Some("paid"), "{}", t.name);
        let thanks: Vec<(String, String, Option<String>)> = t
            .db
            .query(
                "SELECT state, kind, text FROM outbox WHERE case_id = $1 AND message = 'payment_thanks'",
            )
            .bind(s.case_b)
            .fetch_all_as(&t.db)
            .await
            .unwrap();
        assert_eq!(thanks.len(), 1, "{}: thanked once", t.name);
        let (state, kind, text) = &thanks[0];
        // No reply in the last 24 hours: the approved template.
        assert_eq!((state.as_str(), kind.as_str()), ("queued", "template"));
        let text = text.as_deref().unwrap_or_default();
        assert!(
            text.contains("Kami telah menerima pembayaran")
                && text.contains("periode Februari 2026 sebesar Rp900.000"),
            "{}: {text}",
            t.name
        );
    }
}
