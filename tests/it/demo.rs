//! `wa-smile demo` as a newcomer runs it: the real binary in the background,
//! its printed tour, and the employer's side through `/simulator`, whose
//! replies and taps reach the case through the real signed webhook.

use crate::support::demo_process;

use demo_process::{tour_employer, Demo};
use std::time::{Duration, Instant};

/// A form POST as the phone page's forms send it: (status, body).
async fn post(url: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

async fn get(url: &str) -> (u16, String) {
    let res = reqwest::get(url).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn kinds(case: &serde_json::Value) -> Vec<String> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn promise_events(case: &serde_json::Value) -> Vec<serde_json::Value> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "promise_to_pay")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_and_a_tap_on_the_phone_page_become_promises_on_the_case() {
    let demo = Demo::start(None);

    // Suggestion 1: type *besok kami bayar*.
    let (npp, wa_id) = tour_employer(&demo.suggestion(1));
    assert!(promise_events(&demo.case(&npp)).is_empty());
    let (status, body) = post(
        &format!("{}/simulator/{wa_id}/reply", demo.base),
        &[("text", "besok kami bayar")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let case = demo.case_until(&npp, |c| !promise_events(c).is_empty());
    let promises = promise_events(&case);
    assert_eq!(promises.len(), 1, "{:?}", kinds(&case));
    assert!(promises[0]["data"]["promised_date"].is_string());
    assert_eq!(case["status"], "promised");
    let reply = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "reply_received")
        .unwrap();
    assert_eq!(reply["data"]["intent"], "promise_to_pay");
    assert_eq!(reply["actor"], "employer");

    // Suggestion 2: tap *Janji bayar*, then give the date.
    let (npp, wa_id) = tour_employer(&demo.suggestion(2));
    let (status, body) = post(
        &format!("{}/simulator/{wa_id}/tap", demo.base),
        &[("payload", "PROMISE")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    // The bot asks for the date; the chat shows the question once it is sent.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = get(&format!("{}/simulator/{wa_id}/messages", demo.base)).await;
        if page.contains("mohon informasikan tanggal rencana pembayaran") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bot's question never reached the phone:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, _) = post(
        &format!("{}/simulator/{wa_id}/reply", demo.base),
        &[("text", "lusa")],
    )
    .await;
    assert_eq!(status, 303);
    let case = demo.case_until(&npp, |c| !promise_events(c).is_empty());
    assert_eq!(promise_events(&case).len(), 1, "{:?}", kinds(&case));
    assert_eq!(case["status"], "promised");
    let tap = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "reply_received")
        .unwrap();
    assert_eq!(tap["data"]["intent"], "promise_to_pay");

    // A button the chat does not have is refused, nothing sent.
    let (status, _) = post(
        &format!("{}/simulator/{wa_id}/tap", demo.base),
        &[("payload", "NOPE")],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn started_at_eleven_at_night_the_demo_has_a_morning_of_reminders_and_replies() {
    let demo = Demo::start(Some("2026-12-01T23:00:00+07:00"));
    let clock = demo
        .lines
        .iter()
        .find(|l| l.trim_start().starts_with("clock:"))
        .unwrap();
    assert!(
        clock.contains("Rabu, 2 Desember 2026 09.00 WIB"),
        "the demo's own clock is the next working morning: {clock}"
    );

    // The CLI hint names an employer that has a case: the one who promised
    // this morning, after reading the reminder.
    let hint = demo
        .lines
        .iter()
        .find(|l| l.contains("wa-smile case show"))
        .unwrap();
    let npp = hint.split_whitespace().last().unwrap();
    let case = demo.case_until(npp, |c| kinds(c).contains(&"message_read".to_owned()));
    assert_eq!(case["employer"]["npp"], npp);
    let k = kinds(&case);
    for kind in [
        "case_opened",
        "message_sent",
        "message_delivered",
        "message_read",
        "reply_received",
        "promise_to_pay",
    ] {
        assert!(k.contains(&kind.to_owned()), "{kind} missing: {k:?}");
    }
    assert_eq!(case["status"], "promised");

    // Replies are in, and there are cases in every state.
    let replies = demo
        .lines
        .iter()
        .find(|l| l.trim_start().starts_with("replies:"))
        .unwrap();
    assert!(replies.contains("4 already in"), "{replies}");
    let cases = demo
        .lines
        .iter()
        .find(|l| l.trim_start().starts_with("cases:"))
        .unwrap();
    for status in ["open", "promised", "needs_officer", "escalated", "resolved"] {
        let n: i64 = cases
            .split(&format!("{status} "))
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count for {status}: {cases}"));
        assert!(n > 0, "no {status} case: {cases}");
    }

    // The phone page lists the chats; times are in each employer's zone.
    let (status, html) = get(&format!("{}/simulator", demo.base)).await;
    assert_eq!(status, 200);
    assert!(html.matches("class=\"chat-row\"").count() >= 10, "{html}");
    for zone in ["WIB", "WITA", "WIT"] {
        assert!(
            html.contains(&format!(" {zone}</time>")),
            "no {zone} chat: {html}"
        );
    }
}

#[tokio::test]
async fn the_phone_page_is_not_there_unless_the_simulator_is_enabled() {
    use tower::ServiceExt;
    for (enabled, expect) in [("false", 404), ("true", 503)] {
        let test_app = crate::support::TestApp::builder()
            .env("WA_SMILE__SIMULATOR__ENABLED", enabled)
            .on(wa_smile::testing::sqlite().await.unwrap())
            .await;
        let app = test_app.router.clone();
        for uri in ["/simulator", "/simulator/6281234567890"] {
            let res = app
                .clone()
                .oneshot(
                    axum::http::Request::get(uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            // Enabled but with no simulator in this process: it says so.
            assert_eq!(res.status().as_u16(), expect, "{uri} enabled={enabled}");
        }
        let res = app
            .clone()
            .oneshot(
                axum::http::Request::post("/simulator/6281234567890/reply")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(axum::body::Body::from("text=besok"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), expect);
    }
}
