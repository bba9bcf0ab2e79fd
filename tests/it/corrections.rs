//! Officers correct how the bot read a reply (issue 14, item 4): the wrong
//! reading's effects are undone, the right one's applied without a word to
//! the employer, the case log says so; a form sent twice acts once; another
//! branch cannot; the corrections export as a labelled file that
//! `classify --eval` scores; the dashboard shows the rate per week.

use crate::conversation::{at, overdue_case, PHONE};
use crate::support::*;
use axum::http::StatusCode;
use chrono::{Duration, NaiveDate};
use serde_json::json;
use wa_smile::accounts::{self, Role};

const WAMID: &str = "wamid.PAIDWRONG";

/// The reply the bot takes as a payment claim: it pauses the case.
async fn paid_reply(app: &TestApp) {
    let reply_at = at() + Duration::minutes(10);
    app.clock.set(reply_at);
    let reply = message(
        WAMID,
        PHONE,
        reply_at,
        json!({"type": "text", "text": {"body": "sudah transfer kemarin"}}),
    );
    assert_eq!(app.post_json(&reply).await, StatusCode::OK);
    app.clock.set(reply_at + Duration::minutes(30));
}

async fn case(app: &TestApp, id: i64) -> wa_smile::cases::CaseView {
    wa_smile::cases::load(app.db(), &app.config.policy(), id, app.now())
        .await
        .unwrap()
        .unwrap()
}

async fn kinds(app: &TestApp, id: i64) -> Vec<(String, String)> {
    wa_smile::case_log::for_case(app.db(), id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor))
        .collect()
}

fn count(k: &[(String, String)], kind: &str) -> usize {
    k.iter().filter(|(n, _)| n == kind).count()
}

fn correction<'a>(csrf: &'a str, intent: &'a str, date: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("wamid", WAMID),
        ("intent", intent),
        ("date", date),
    ]
}

#[tokio::test]
async fn a_wrong_payment_claim_corrected_to_a_promise_lifts_the_pause_and_records_the_promise_once()
{
    for app in TestApp::builder().clock_at(at()).all().await {
        let id = overdue_case(&app).await;
        paid_reply(&app).await;
        let before = case(&app, id).await;
        assert!(
            before.paused_until.is_some() && before.payment_claimed_at.is_some(),
            "{}: the bot read a payment claim and paused",
            app.name()
        );
        let queued_before = count(&kinds(&app, id).await, "message_queued");

        let mut c = app.browser();
        let csrf = c.login_ok("petugas").await;
        let page = c.get(&format!("/cases/{id}")).await.body;
        assert!(page.contains("Koreksi pembacaan bot"), "{}", app.name());
        assert!(
            page.contains(&format!("value=\"{WAMID}\"")),
            "{}",
            app.name()
        );
        assert!(page.contains(">Janji bayar</option>"), "{}", app.name());

        let form = correction(&csrf, "promise_to_pay", "2026-03-10");
        let uri = format!("/cases/{id}/actions/correct");
        let r = c.post_form(&uri, &form).await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            app.name(),
            r.body
        );

        let after = case(&app, id).await;
        assert_eq!(after.paused_until, None, "{}: pause lifted", app.name());
        assert_eq!(after.payment_claimed_at, None, "{}", app.name());
        assert_eq!(after.status, "promised", "{}", app.name());
        assert_eq!(
            after.promised_date,
            Some(NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()),
            "{}",
            app.name()
        );
        let events = wa_smile::case_log::for_case(app.db(), id).await.unwrap();
        let fix = events
            .iter()
            .find(|e| e.kind == "intent_corrected")
            .expect("an intent_corrected event");
        assert_eq!(fix.actor, "officer:petugas");
        assert_eq!(fix.data["old_intent"], "already_paid", "{}", app.name());
        assert_eq!(fix.data["new_intent"], "promise_to_pay");
        assert_eq!(fix.data["new_promised_date"], "2026-03-10");
        assert_eq!(fix.data["officer"], "petugas");
        assert_eq!(fix.data["wamid"], WAMID);
        assert_eq!(
            fix.data["undone"],
            json!(["pause_lifted"]),
            "{}",
            app.name()
        );
        assert_eq!(fix.data["withheld"], json!(["promise_confirmed"]));
        let promise = events
            .iter()
            .find(|e| e.kind == "promise_to_pay")
            .expect("the right promise is recorded");
        assert_eq!(promise.actor, "officer:petugas");
        assert_eq!(promise.data["promised_date"], "2026-03-10");
        assert_eq!(promise.data["correction"], true);
        // Nothing automated goes to the employer from a correction.
        let k = kinds(&app, id).await;
        assert_eq!(count(&k, "message_queued"), queued_before, "{}", app.name());
        let audited: i64 = app
            .db()
            .query("SELECT COUNT(*) FROM audit_log WHERE action = 'case.intent_corrected'")
            .fetch_scalar(app.db())
            .await
            .unwrap();
        assert_eq!(audited, 1, "{}", app.name());

        // The page says what the officer did, in Indonesian.
        let page = c.get(&format!("/cases/{id}")).await.body;
        assert!(
            page.contains(
                "Pembacaan balasan dikoreksi: Sudah bayar → Janji bayar (Selasa, 10 Maret 2026)"
            ),
            "{}: {page}",
            app.name()
        );
        assert!(page.contains("Dikoreksi petugas: Janji bayar, Selasa, 10 Maret 2026"));
        assert!(page.contains("dicabut"), "{}", app.name());

        // The same form again (a double click, a resubmitted page): no change.
        let r = c.post_form(&uri, &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", app.name());
        let again = kinds(&app, id).await;
        assert_eq!(again, k, "{}: a second submit changes nothing", app.name());
        assert_eq!(count(&again, "intent_corrected"), 1);
        assert_eq!(count(&again, "promise_to_pay"), 1);

        // A form without its CSRF token is refused.
        let r = c
            .post_form(&uri, &correction("x", "acknowledgement", ""))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", app.name());
    }
}

#[tokio::test]
async fn an_officer_of_another_branch_cannot_correct_and_bad_input_is_refused() {
    for app in TestApp::builder().clock_at(at()).all().await {
        let id = overdue_case(&app).await;
        paid_reply(&app).await;
        app.fixtures()
            .at(at())
            .employer("99990001")
            .branch("DUMAI")
            .create()
            .await;
        accounts::add_user(app.db(), "lain", PASSWORD, Role::Officer, Some("DUMAI"))
            .await
            .unwrap();
        let mut other = app.browser();
        let csrf = other.login_ok("lain").await;
        let uri = format!("/cases/{id}/actions/correct");
        let r = other
            .post_form(&uri, &correction(&csrf, "promise_to_pay", "2026-03-10"))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", app.name());
        let state = case(&app, id).await;
        assert!(state.paused_until.is_some(), "{}: untouched", app.name());
        assert_eq!(count(&kinds(&app, id).await, "intent_corrected"), 0);

        let mut c = app.browser();
        let csrf = c.login_ok("petugas").await;
        // A promise dated before the reply itself.
        let r = c
            .post_form(&uri, &correction(&csrf, "promise_to_pay", "2026-03-01"))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", app.name());
        assert!(r.body.contains("tidak boleh sebelum tanggal balasan"));
        // An intent that is not in the list.
        let r = c.post_form(&uri, &correction(&csrf, "lunas", "")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", app.name());
        // A reply that is not this case's.
        let mut form = correction(&csrf, "acknowledgement", "");
        form[1] = ("wamid", "wamid.NOT-HERE");
        assert_eq!(c.post_form(&uri, &form).await.status, StatusCode::NOT_FOUND);
        assert!(case(&app, id).await.paused_until.is_some());
    }
}

#[tokio::test]
async fn a_wrong_promise_is_withdrawn_when_the_reply_meant_something_else() {
    for app in TestApp::builder().clock_at(at()).all().await {
        let id = overdue_case(&app).await;
        let reply_at = at() + Duration::minutes(10);
        app.clock.set(reply_at);
        let reply = message(
            WAMID,
            PHONE,
            reply_at,
            json!({"type": "text", "text": {"body": "besok kami bayar"}}),
        );
        assert_eq!(app.post_json(&reply).await, StatusCode::OK);
        let promised = case(&app, id).await;
        assert_eq!(promised.status, "promised", "{}", app.name());
        assert!(promised.promised_date.is_some());

        let mut c = app.browser();
        let csrf = c.login_ok("petugas").await;
        let r = c
            .post_form(
                &format!("/cases/{id}/actions/correct"),
                &correction(&csrf, "acknowledgement", "2026-03-20"),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            app.name(),
            r.body
        );
        let after = case(&app, id).await;
        assert_eq!(after.status, "open", "{}", app.name());
        assert_eq!(after.promised_date, None, "{}", app.name());
        let events = wa_smile::case_log::for_case(app.db(), id).await.unwrap();
        let fix = events
            .iter()
            .find(|e| e.kind == "intent_corrected")
            .unwrap();
        assert_eq!(fix.data["undone"], json!(["promise_withdrawn"]));
        // The date left in the form means nothing for a thank-you.
        assert_eq!(fix.data["new_promised_date"], serde_json::Value::Null);
    }
}

#[tokio::test]
async fn corrections_export_as_a_labelled_file_that_classify_eval_scores_and_the_dashboard_counts_them(
) {
    for app in TestApp::builder().clock_at(at()).all().await {
        let id = overdue_case(&app).await;
        paid_reply(&app).await;
        // A second reply the bot read right: classified, not corrected.
        let later = app.now();
        let ok = message(
            "wamid.THANKS",
            PHONE,
            later,
            json!({"type": "text", "text": {"body": "baik terima kasih"}}),
        );
        assert_eq!(app.post_json(&ok).await, StatusCode::OK);
        let mut c = app.browser();
        let csrf = c.login_ok("petugas").await;
        let r = c
            .post_form(
                &format!("/cases/{id}/actions/correct"),
                &correction(&csrf, "promise_to_pay", "2026-03-10"),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            app.name(),
            r.body
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("corrections.csv");
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
                .args(args)
                .env("WA_SMILE__DATABASE__URL", &app.t.url)
                .env("WA_SMILE__LOG__LEVEL", "error")
                .env_remove("WA_SMILE_CONFIG")
                .current_dir(dir.path())
                .output()
                .unwrap()
        };
        let file_arg = file.display().to_string();
        let o = run(&["export", "corrections", "--out", &file_arg]);
        assert!(
            o.status.success(),
            "{}: {}",
            app.name(),
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "text,intent,promised_date,received_at\n\
             sudah transfer kemarin,promise_to_pay,2026-03-10,2026-03-03T10:10:00+07:00\n",
            "{}",
            app.name()
        );
        // A period without corrections exports the header only.
        let o = run(&[
            "export",
            "corrections",
            "--from",
            "2026-03-04",
            "--to",
            "2026-03-31",
            "--out",
            &file_arg,
        ]);
        assert!(o.status.success());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap().lines().count(),
            1,
            "{}",
            app.name()
        );
        let o = run(&[
            "export",
            "corrections",
            "--from",
            "2026-03-03",
            "--to",
            "2026-03-03",
            "--out",
            &file_arg,
        ]);
        assert!(o.status.success());

        // `classify --eval` reads it as it is: the bot's miss is the miss.
        let o = run(&["classify", "--eval", &file_arg, "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["total"], 1, "{}", app.name());
        assert_eq!(report["correct"], 0);
        assert_eq!(report["misses"][0]["got"], "already_paid");
        assert_eq!(report["misses"][0]["expected"], json!(["promise_to_pay"]));
        assert_eq!(
            report["confusion"],
            json!({"promise_to_pay": {"already_paid": 1}})
        );
        // The other kinds still need their period and format.
        let o = run(&["export", "audit", "--out", "a.csv"]);
        assert_eq!(o.status.code(), Some(2), "{}", app.name());

        // The supervisor's dashboard: 1 of the week's 2 typed replies.
        accounts::add_user(
            app.db(),
            "kepala",
            PASSWORD,
            Role::Supervisor,
            Some("PEKANBARU"),
        )
        .await
        .unwrap();
        let mut s = app.browser();
        s.login_ok("kepala").await;
        let page = s.get("/dashboard").await;
        assert_eq!(page.status, StatusCode::OK, "{}", app.name());
        let body = page.body;
        assert!(body.contains("Koreksi petugas atas pembacaan bot, per minggu"));
        assert!(
            body.contains("2 Maret 2026 – 8 Maret 2026</td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">50,0%</td>"),
            "{}: {body}",
            app.name()
        );
        let table = &body[body.find("id=\"correction-rate\"").unwrap()..];
        let table = &table[..table.find("</table>").unwrap()];
        assert_eq!(
            table.matches("<tr><td>").count(),
            8,
            "{}: eight weeks",
            app.name()
        );
    }
}

#[tokio::test]
async fn a_hold_for_an_officer_is_released_when_the_reply_was_a_dated_promise() {
    for app in TestApp::builder().clock_at(at()).all().await {
        let id = overdue_case(&app).await;
        let reply_at = at() + Duration::minutes(10);
        app.clock.set(reply_at);
        let reply = message(
            WAMID,
            PHONE,
            reply_at,
            json!({"type": "text", "text": {"body": "saya mau bicara dengan petugas"}}),
        );
        assert_eq!(app.post_json(&reply).await, StatusCode::OK);
        let held = case(&app, id).await;
        assert_eq!(held.officer_hold.as_deref(), Some("officer_requested"));
        assert_eq!(held.status, "needs_officer", "{}", app.name());

        let mut c = app.browser();
        let csrf = c.login_ok("petugas").await;
        let r = c
            .post_form(
                &format!("/cases/{id}/actions/correct"),
                &correction(&csrf, "promise_to_pay", "2026-03-12"),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            app.name(),
            r.body
        );
        let after = case(&app, id).await;
        assert_eq!(after.officer_hold, None, "{}", app.name());
        assert_eq!(after.status, "promised", "{}", app.name());
        assert_eq!(
            after.promised_date,
            Some(NaiveDate::from_ymd_opt(2026, 3, 12).unwrap())
        );
        let events = wa_smile::case_log::for_case(app.db(), id).await.unwrap();
        let fix = events
            .iter()
            .find(|e| e.kind == "intent_corrected")
            .unwrap();
        assert_eq!(fix.data["old_intent"], "officer_request");
        assert_eq!(fix.data["undone"], json!(["hold_released"]));
        assert_eq!(
            fix.data["applied"],
            json!(["promise_to_pay"]),
            "{}",
            app.name()
        );
    }
}
