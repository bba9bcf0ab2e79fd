//! `wa-smile demo` as a newcomer runs it: the real binary in the background,
//! its printed tour, and the employer's side through `/simulator`, whose
//! replies and taps reach the case through the real signed webhook.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The demo process; killed however the test ends.
pub struct Demo {
    child: Child,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub password: String,
    /// Every line the demo printed up to "ready".
    pub lines: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line of the tour: (NPP, wa_id) of the employer it names.
pub fn tour_employer(line: &str) -> (String, String) {
    let npp = line
        .split("(NPP ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("tour line names an NPP")
        .to_owned();
    let wa_id = line
        .split("/simulator/")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .expect("tour line links a chat")
        .to_owned();
    (npp, wa_id)
}

impl Demo {
    /// Starts the demo (at `at`, RFC 3339) and waits for its tour.
    pub fn start(at: Option<&str>) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wa-smile"));
        cmd.arg("demo")
            .arg("--data")
            .arg(dir.path())
            .env("WA_SMILE__SERVER__BIND", "127.0.0.1:0")
            .env("WA_SMILE__LOG__LEVEL", "warn")
            .env_remove("WA_SMILE_CONFIG")
            .env_remove("RUST_LOG")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(at) = at {
            cmd.args(["--at", at]);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.starts_with("ready") => break,
                Ok(l) => lines.push(l),
                Err(_) => panic!(
                    "the demo did not get ready; it printed:\n{}",
                    lines.join("\n")
                ),
            }
        }
        let admin = lines
            .iter()
            .find(|l| l.trim_start().starts_with("admin UI:"))
            .expect("the tour prints the admin URL");
        let base = admin
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .trim_end_matches("/cases")
            .to_owned();
        let password = admin.split_whitespace().last().unwrap().to_owned();
        Demo {
            child,
            dir,
            base,
            password,
            lines,
        }
    }

    /// The tour's numbered suggestion `n` ("1.", "2.", "3.").
    pub fn suggestion(&self, n: u32) -> String {
        let prefix = format!("{n}. ");
        self.lines
            .iter()
            .find(|l| l.trim_start().starts_with(&prefix))
            .unwrap_or_else(|| panic!("no suggestion {n} in:\n{}", self.lines.join("\n")))
            .clone()
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .args(args)
            .env(
                "WA_SMILE__DATABASE__URL",
                format!(
                    "sqlite://{}",
                    self.dir.path().join("wa-smile-demo.db").display()
                ),
            )
            .env_remove("WA_SMILE_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    pub fn case(&self, npp: &str) -> serde_json::Value {
        let out = self.cli(&["case", "show", npp, "--json"]);
        assert!(
            out.status.success(),
            "case show {npp}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls the employer's case until `done` holds (or 15 s pass).
    pub fn case_until(
        &self,
        npp: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let case = self.case(npp);
            if done(&case) || Instant::now() > deadline {
                return case;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

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
    let t = wa_smile::testing::sqlite().await.unwrap();
    for (enabled, expect) in [("false", 404), ("true", 503)] {
        let config = wa_smile::config::Config::from_sources(
            None,
            vec![(
                "WA_SMILE__SIMULATOR__ENABLED".to_owned(),
                enabled.to_owned(),
            )],
        )
        .unwrap();
        let app = wa_smile::http::router(wa_smile::http::AppState {
            db: t.db.clone(),
            config: std::sync::Arc::new(config),
        });
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
