//! Several `serve` instances on one PostgreSQL database, one WhatsApp
//! number: the send rate is one budget for all of them, a killed instance's
//! messages are sent by the other exactly once, and the scheduled scan of a
//! tick runs on one instance.

use crate::support::{app, fixtures};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wa_smile::outbox::{self, NewMessage};
use wa_smile::scan::{self, ScanContext};
use wa_smile::testing;
use wa_smile::whatsapp::{MessageContent, TemplateLanguage, TemplateMessage};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const MESSAGES: usize = 5_000;
const RATE: usize = 100;

/// One request the mock Cloud API accepted.
#[derive(Debug, Clone)]
struct Accepted {
    at: Instant,
    outbox_id: i64,
    wamid: String,
    to: String,
}

/// The Cloud API: accepts every send and records when it arrived and which
/// outbox row it carried (`biz_opaque_callback_data`).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Accepted>>>);

impl Respond for Recorder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let at = Instant::now();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let outbox_id = body["biz_opaque_callback_data"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let mut all = self.0.lock().unwrap();
        let wamid = format!("wamid.IT{}", all.len() + 1);
        all.push(Accepted {
            at,
            outbox_id,
            wamid: wamid.clone(),
            to: to.clone(),
        });
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }))
    }
}

impl Recorder {
    fn snapshot(&self) -> Vec<Accepted> {
        self.0.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// An outbox body that delivery sends as queued: a template message that
/// needs no case to render from.
fn template_body() -> String {
    let template = TemplateMessage {
        name: "pengingat_iuran".into(),
        language: TemplateLanguage::new("id"),
        components: Vec::new(),
    };
    json!({"content": MessageContent::template(template)}).to_string()
}

/// A `wa-smile serve` process; killed however the test ends.
struct Instance {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    fn start(config: &std::path::Path, dir: &std::path::Path, db_url: &str) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .arg("serve")
            .env("WA_SMILE_CONFIG", config)
            .env("WA_SMILE__DATABASE__URL", db_url)
            .env("WA_SMILE__LOG__FORMAT", "json")
            .env("RUST_LOG", "info")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        {
            let log = log.clone();
            // Read to the end, or the process blocks on a full pipe.
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v["fields"]["message"] == "listening" {
                            let _ = tx.send(v["fields"]["addr"].as_str().unwrap().to_owned());
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "serve did not start listening:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        Instance {
            child,
            url: format!("http://{addr}"),
            log,
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(30)..].join("\n")
    }
}

/// The most sends that arrived within any one second.
fn most_in_one_second(accepted: &[Accepted]) -> usize {
    let mut t: Vec<Instant> = accepted.iter().map(|a| a.at).collect();
    t.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..t.len() {
        while t[hi] - t[lo] >= Duration::from_secs(1) {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Meta's `sent` status for each accepted message, as Meta posts them: the
/// status carries the outbox id back, so a message the killed instance had
/// sent but not yet recorded is settled instead of being sent again.
async fn post_statuses(url: &str, accepted: &[Accepted]) -> u16 {
    let statuses: Vec<Value> = accepted
        .iter()
        .map(|a| {
            json!({
                "id": a.wamid,
                "status": "sent",
                "timestamp": Utc::now().timestamp().to_string(),
                "recipient_id": a.to,
                "biz_opaque_callback_data": a.outbox_id.to_string(),
            })
        })
        .collect();
    let body = app::envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100000000", "phone_number_id": app::PHONE_NUMBER_ID},
        "statuses": statuses,
    }))
    .to_string();
    reqwest::Client::new()
        .post(format!("{url}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", app::signature(body.as_bytes()))
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[derive(sqlx::FromRow)]
struct StateCount {
    state: String,
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_rate_and_a_killed_ones_messages_go_out_exactly_once() {
    let Some(t) = testing::postgres().await.unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cloud = MockServer::start().await;
    let recorder = Recorder::default();
    Mock::given(method("POST"))
        .and(path(app::MESSAGES_PATH))
        .respond_with(recorder.clone())
        .mount(&cloud)
        .await;

    // One employer, 5,000 template messages to 5,000 numbers, all due now.
    let config = app::config_with(&[]);
    let employer = fixtures::Fixtures::new(&t.db, &config)
        .employer("00000001")
        .wa("081200000001")
        .create()
        .await;
    let now = Utc::now();
    let body = template_body();
    let messages: Vec<NewMessage> = (0..MESSAGES)
        .map(|i| {
            NewMessage::new(
                employer,
                format!("it:instances:{i}"),
                "pengingat_iuran",
                "template",
                body.clone(),
                now,
            )
            .to(Some(format!("62813{i:08}")))
        })
        .collect();
    let mut tx = t.db.begin().await.unwrap();
    let queued = outbox::enqueue_many(&mut tx, &messages, now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(queued.len(), MESSAGES);

    // Open every hour of every day, no holidays: the test runs whenever CI
    // does. A dead peer is noticed after 3 s of silence, and a message whose
    // send may have happened waits 3 s for its status.
    let holidays = dir.path().join("holidays.toml");
    std::fs::write(&holidays, "").unwrap();
    let config_file = dir.path().join("wa-smile.toml");
    std::fs::write(
        &config_file,
        format!(
            r#"
[server]
bind = "127.0.0.1:0"
[whatsapp]
api_base = "{api}"
phone_number_id = "{pnid}"
access_token = "{token}"
app_secret = "{secret}"
verify_token = "{verify}"
messages_per_second = {RATE}
daily_unique_recipients = 100000
unknown_outcome_grace_secs = 3
worker_heartbeat_timeout_secs = 3
[schedule]
window_start = "00:00"
window_end = "23:59"
window_days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
[calendar]
holidays_file = "{holidays}"
[payments]
callback_token = "{callback}"
"#,
            api = cloud.uri(),
            pnid = app::PHONE_NUMBER_ID,
            token = app::TOKEN,
            secret = app::SECRET,
            verify = app::VERIFY,
            holidays = holidays.display(),
            callback = app::CALLBACK,
        ),
    )
    .unwrap();

    let mut doomed = Some(Instance::start(&config_file, dir.path(), &t.url));
    let survivor = Instance::start(&config_file, dir.path(), &t.url);
    let started = Instant::now();

    // Meta's statuses, posted to the survivor as the sends arrive.
    let statuses = {
        let (recorder, url) = (recorder.clone(), survivor.url.clone());
        tokio::spawn(async move {
            let mut posted = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let all = recorder.snapshot();
                if all.len() > posted {
                    let status = post_statuses(&url, &all[posted..]).await;
                    assert_eq!(status, 200, "the status webhook was refused");
                    posted = all.len();
                }
            }
        })
    };

    // Midway, one instance dies without a word.
    while recorder.len() < MESSAGES * 2 / 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} sends in a minute; survivor:\n{}",
            recorder.len(),
            survivor.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut killed = doomed.take().unwrap();
    killed.child.kill().unwrap(); // SIGKILL
    killed.child.wait().unwrap();
    let at_kill = recorder.len();

    // The survivor sends the rest, the dead one's claims included.
    let deadline = Instant::now() + Duration::from_secs(90);
    let states = loop {
        let states: Vec<StateCount> =
            t.db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
                .fetch_all_as(&t.db)
                .await
                .unwrap();
        let states: HashMap<String, i64> = states.into_iter().map(|s| (s.state, s.n)).collect();
        if states.get("sent").copied().unwrap_or(0) == MESSAGES as i64 {
            break states;
        }
        assert!(
            Instant::now() < deadline,
            "not all sent: {states:?}, {} requests; survivor:\n{}",
            recorder.len(),
            survivor.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    statuses.abort();
    let accepted = recorder.snapshot();

    let mut per_row: HashMap<i64, usize> = HashMap::new();
    for a in &accepted {
        *per_row.entry(a.outbox_id).or_default() += 1;
    }
    let twice: Vec<_> = per_row.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let mut ids: Vec<i64> = per_row.keys().copied().collect();
    ids.sort();
    let mut expected: Vec<i64> = queued.iter().map(|q| q.id).collect();
    expected.sort();
    assert_eq!(ids, expected, "every message accepted: {states:?}");
    assert!(
        at_kill < MESSAGES && accepted.len() > at_kill,
        "the kill was midway: {at_kill} of {MESSAGES}"
    );
    let most = most_in_one_second(&accepted);
    assert!(
        most <= RATE,
        "{most} sends arrived within one second; the limit is {RATE} for both instances"
    );
    let (resent,): (i64,) =
        t.db.query("SELECT CAST(COALESCE(SUM(resent_unknown), 0) AS BIGINT) AS n FROM outbox")
            .fetch_one_as(&t.db)
            .await
            .unwrap();
    eprintln!(
        "two instances: {MESSAGES} sent in {:.1} s, {at_kill} before the kill, at most {most} in one second, \
         {resent} of the killed instance's handed-over rows sent again after the grace",
        started.elapsed().as_secs_f64()
    );
}

fn ctx() -> ScanContext {
    ScanContext::from_config(&crate::support::config()).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Instances on PostgreSQL that reach the same cron tick together: one
/// scans, the other waits for the scan lock and then skips the tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_of_one_tick_runs_on_one_instance() {
    let Some(t) = testing::postgres().await.unwrap() else {
        return;
    };
    let other = t.connect_again().await.unwrap();
    let f =
        fixtures::Fixtures::new(&t.db, &crate::support::config()).at(at("2026-01-01T00:00:00Z"));
    f.employer("00000001").wa("081200000001").create().await;
    f.bill("00000001", "2026-01", 150_000_000).create().await;
    let tick = at("2026-03-03T00:00:00Z");
    let now = at("2026-03-03T00:00:01Z");
    let (c1, c2) = (ctx(), ctx());
    let (a, b) = tokio::join!(
        scan::run_tick(&t.db, &c1, tick, now),
        scan::run_tick(&other, &c2, tick, now),
    );
    let ran: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(ran.len(), 1, "one instance scanned the tick: {ran:?}");
    assert_eq!(ran[0].cases_opened, 1);
    // The next tick is scanned again, once.
    let next = at("2026-03-04T00:00:00Z");
    let later = at("2026-03-04T00:00:01Z");
    assert!(scan::run_tick(&other, &c2, next, later)
        .await
        .unwrap()
        .is_some());
    assert!(scan::run_tick(&t.db, &c1, next, later)
        .await
        .unwrap()
        .is_none());
}

/// On SQLite (one instance) a restarted scheduler does not scan a tick
/// already scanned either; an unscheduled scan (`wa-smile scan`) always runs.
#[tokio::test]
async fn a_tick_already_scanned_is_skipped_and_a_manual_scan_still_runs() {
    for t in testing::all().await.unwrap() {
        let tick = at("2026-03-03T00:00:00Z");
        let now = at("2026-03-03T00:00:01Z");
        assert!(scan::run_tick(&t.db, &ctx(), tick, now)
            .await
            .unwrap()
            .is_some());
        assert!(
            scan::run_tick(&t.db, &ctx(), tick, now)
                .await
                .unwrap()
                .is_none(),
            "{}",
            t.name
        );
        scan::run(&t.db, &ctx(), now).await.unwrap();
    }
}

/// SIGTERM: the claims waiting for a send slot go back to the queue at
/// once (for the other instances), even while the HTTP server is still
/// draining a slow client; the send in flight is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_puts_claims_back_at_once_while_http_drains() {
    use std::io::Write;
    for t in testing::all().await.unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let cloud = MockServer::start().await;
        let recorder = Recorder::default();
        Mock::given(method("POST"))
            .and(path(app::MESSAGES_PATH))
            .respond_with(recorder.clone())
            .mount(&cloud)
            .await;
        let config = app::config_with(&[]);
        let employer = fixtures::Fixtures::new(&t.db, &config)
            .employer("00000001")
            .wa("081200000001")
            .create()
            .await;
        let now = Utc::now();
        let body = template_body();
        let messages: Vec<NewMessage> = (0..6)
            .map(|i| {
                NewMessage::new(
                    employer,
                    format!("it:sigterm:{i}"),
                    "pengingat_iuran",
                    "template",
                    body.clone(),
                    now,
                )
                .to(Some(format!("62813{i:08}")))
            })
            .collect();
        let mut tx = t.db.begin().await.unwrap();
        outbox::enqueue_many(&mut tx, &messages, now).await.unwrap();
        tx.commit().await.unwrap();
        let holidays = dir.path().join("holidays.toml");
        std::fs::write(&holidays, "").unwrap();
        let config_file = dir.path().join("wa-smile.toml");
        std::fs::write(
            &config_file,
            format!(
                r#"
[server]
bind = "127.0.0.1:0"
header_read_timeout_secs = 60
[whatsapp]
api_base = "{api}"
phone_number_id = "{pnid}"
access_token = "{token}"
app_secret = "{secret}"
verify_token = "{verify}"
messages_per_second = 1
[schedule]
window_start = "00:00"
window_end = "23:59"
window_days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
[calendar]
holidays_file = "{holidays}"
"#,
                api = cloud.uri(),
                pnid = app::PHONE_NUMBER_ID,
                token = app::TOKEN,
                secret = app::SECRET,
                verify = app::VERIFY,
                holidays = holidays.display(),
            ),
        )
        .unwrap();
        let mut serve = Instance::start(&config_file, dir.path(), &t.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        while recorder.len() == 0 {
            assert!(
                Instant::now() < deadline,
                "{}: nothing sent:\n{}",
                t.name,
                serve.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A client in the middle of its request headers keeps the HTTP
        // server draining for up to the header timeout.
        let addr = serve.url.trim_start_matches("http://").to_owned();
        let mut slow = std::net::TcpStream::connect(&addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let term = Command::new("kill")
            .args(["-TERM", &serve.child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        let states = loop {
            let states: Vec<StateCount> =
                t.db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
                    .fetch_all_as(&t.db)
                    .await
                    .unwrap();
            let states: HashMap<String, i64> = states.into_iter().map(|s| (s.state, s.n)).collect();
            if !states.contains_key("sending") {
                break states;
            }
            assert!(
                Instant::now() < deadline,
                "{}: claims still held 5 s after SIGTERM: {states:?}\n{}",
                t.name,
                serve.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let sent = recorder.len() as i64;
        assert_eq!(
            states.get("sent").copied().unwrap_or(0),
            sent,
            "{}: every send recorded: {states:?}",
            t.name
        );
        assert_eq!(
            states.get("queued").copied().unwrap_or(0),
            6 - sent,
            "{}: the rest queued again: {states:?}",
            t.name
        );
        drop(slow);
        let deadline = Instant::now() + Duration::from_secs(10);
        while serve.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{}: serve did not stop", t.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
