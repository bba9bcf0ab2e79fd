//! A real browser against the real server: headless Chromium driven through
//! WebDriver logs in, filters the case list, opens a case, adds a note and
//! sees it in the timeline. Screenshots of the pages land in `artifacts/`.
//! Skipped with a notice when `chromedriver` is not installed.

use crate::support;
use crate::support::demo_process;

use fantoccini::{ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Kills chromedriver (and with it the browser) however the test ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The text of `css` once `done` holds (or after 10 s); htmx swaps the
/// page under us, so a stale element just means "look again".
async fn poll_text(b: &fantoccini::Client, css: &str, done: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(el) = b.find(Locator::Css(css)).await {
            if let Ok(t) = el.text().await {
                if done(&t) {
                    return t;
                }
                last = t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test]
async fn an_officer_logs_in_filters_opens_a_case_and_adds_a_note() {
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!("notice: {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver); skipping the browser test");
        return;
    }
    let app = TestApp::builder()
        .on(wa_smile::testing::sqlite().await.unwrap())
        .await;
    let s = seed(app.db()).await;
    // More cases so the list looks like a branch's, not a fixture's.
    seed_more(app.db(), 40).await;
    let base = app.url.clone();

    let port = free_port();
    let _driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile::tempdir().unwrap();
    let caps: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1366,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }))
        .unwrap();
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&webdriver)
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let b = client.expect("chromedriver answers");
    let wait = Duration::from_secs(10);

    let result: Result<(), fantoccini::error::CmdError> = async {
        b.goto(&format!("{base}/cases")).await?;
        // Not logged in: the login form.
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("input[name=username]"))
            .await?;
        b.find(Locator::Css("input[name=username]"))
            .await?
            .send_keys("officer_a")
            .await?;
        b.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        b.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("table.list"))
            .await?;
        let body = b.find(Locator::Css("body")).await?.text().await?;
        assert!(
            body.contains("10000001") && !body.contains("20000001"),
            "{body}"
        );
        // The XSS name is shown as text, no script ran (no alert open).
        assert!(body.contains("<script>alert('name')</script>"));
        assert!(b.get_alert_text().await.is_err());
        let list_png = b.screenshot().await?;
        std::fs::write(artifacts().join("case-list.png"), list_png).unwrap();

        // Filter: search by name.
        let q = b.find(Locator::Css("input[name=q]")).await?;
        q.send_keys("Sinar").await?;
        b.find(Locator::Css("#filters button[type=submit]"))
            .await?
            .click()
            .await?;
        let text = poll_text(&b, "table.list tbody", |t| {
            t.contains("10000002") && !t.contains("10000001")
        })
        .await;
        assert!(
            text.contains("10000002") && !text.contains("10000001"),
            "{text}"
        );
        std::fs::write(
            artifacts().join("case-list-filtered.png"),
            b.screenshot().await?,
        )
        .unwrap();

        // Open the XSS-named case directly, add a note.
        b.goto(&format!("{base}/cases/{}", s.case_a)).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("#note-text"))
            .await?;
        b.find(Locator::Css("#note-text"))
            .await?
            .send_keys("Sudah ditelepon; PIC janji transfer Jumat <b>ini</b>")
            .await?;
        b.find(Locator::Css("#note-form button"))
            .await?
            .click()
            .await?;
        let tl = poll_text(&b, "ol.timeline", |t| {
            t.contains("PIC janji transfer Jumat <b>ini</b>")
        })
        .await;
        assert!(
            tl.contains("PIC janji transfer Jumat <b>ini</b>"),
            "the note appears in the timeline, as text: {tl}"
        );
        assert!(b.get_alert_text().await.is_err());
        std::fs::write(artifacts().join("case-page.png"), b.screenshot().await?).unwrap();

        // The officer has the list open on "menunggu balasan"; the employer
        // of case a2 (in WITA) writes, and the row appears on the open page
        // with the message's words and its time in the employer's zone —
        // no reload.
        app.db()
            .query("UPDATE cases SET assignee = 'officer_a' WHERE id IN ($1, $2)")
            .bind(s.case_a)
            .bind(s.case_a2)
            .execute(app.db())
            .await
            .unwrap();
        app.db()
            .query("UPDATE employers SET timezone = 'Asia/Makassar' WHERE npp = '10000002'")
            .execute(app.db())
            .await
            .unwrap();
        b.goto(&format!("{base}/cases")).await?;
        // A click during the page's first layout can miss; tick until ticked.
        for _ in 0..20 {
            b.find(Locator::Css("input[name=awaiting_reply]"))
                .await?
                .click()
                .await?;
            let on = b
                .execute(
                    "return document.querySelector('input[name=awaiting_reply]').checked;",
                    vec![],
                )
                .await?;
            if on == serde_json::json!(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.find(Locator::Css("#filters button[type=submit]"))
            .await?
            .click()
            .await?;
        let before = poll_text(&b, "#case-rows tbody", |t| t.contains("10000001")).await;
        assert!(
            before.contains("10000001") && !before.contains("10000002"),
            "{before}"
        );
        b.execute("window.__stillOpen = 'ya'; return true;", vec![])
            .await?;
        let reply = message(
            "wamid.BROWSER1",
            "6281234567002",
            wa_smile::time::now(),
            serde_json::json!({"type": "text", "text": {"body": "ok pak, terima kasih infonya"}}),
        );
        assert_eq!(app.post_signed_http(&reply.to_string()).await, 200);
        let found = poll_text(&b, "#case-rows tbody", |t| t.contains("10000002")).await;
        assert!(found.contains("10000002"), "{found}");
        assert!(found.contains("terima kasih infonya"), "{found}");
        assert!(
            found.contains("WITA"),
            "the employer's zone is named: {found}"
        );
        // The counts above the table and the navigation's agree with it.
        let counts = poll_text(&b, "#case-counts", |t| t.contains("Aktif 2")).await;
        assert!(counts.contains("Aktif 2"), "{counts}");
        let unread = poll_text(&b, "#nav-unread", |t| t.trim() == "2").await;
        assert_eq!(unread.trim(), "2", "officer_a's two waiting cases");
        let marker = b
            .execute("return window.__stillOpen || 'reloaded';", vec![])
            .await?;
        assert_eq!(marker, serde_json::json!("ya"), "the list was not reloaded");
        let checked = b
            .execute(
                "return document.querySelector('input[name=awaiting_reply]').checked;",
                vec![],
            )
            .await?;
        assert_eq!(checked, serde_json::json!(true), "the filter stays on");
        std::fs::write(
            artifacts().join("case-list-awaiting.png"),
            b.screenshot().await?,
        )
        .unwrap();
        b.goto(&format!("{base}/my-work")).await?;
        let work = b.find(Locator::Css("main")).await?.text().await?;
        assert!(work.contains("Pekerjaan saya hari ini") && work.contains("Menunggu balasan"));
        std::fs::write(artifacts().join("my-work.png"), b.screenshot().await?).unwrap();
        Ok(())
    }
    .await;
    let _ = b.close().await;
    result.unwrap();
}

/// chromedriver plus a headless Chromium session.
async fn browser() -> (Driver, fantoccini::Client, tempfile::TempDir) {
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile::tempdir().unwrap();
    let caps: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1366,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }))
        .unwrap();
    let webdriver = format!("http://127.0.0.1:{port}");
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(c) = ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&webdriver)
            .await
        {
            return (driver, c, profile);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver does not answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_employer_taps_janji_bayar_on_the_phone_and_the_officer_sees_the_promise() {
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!("notice: {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver); skipping the browser test");
        return;
    }
    let demo = demo_process::Demo::start(None);
    let (_npp, wa_id) = demo_process::tour_employer(&demo.suggestion(2));
    let base = demo.base.clone();
    let (_driver, b, _profile) = browser().await;
    let wait = Duration::from_secs(10);
    let shot = |name: &'static str, png: Vec<u8>| {
        std::fs::write(artifacts().join(name), png).unwrap();
    };

    let result: Result<(), fantoccini::error::CmdError> = async {
        b.goto(&format!("{base}/simulator")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css(".chat-row"))
            .await?;
        shot("simulator-list.png", b.screenshot().await?);

        b.goto(&format!("{base}/simulator/{wa_id}")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("button.quick"))
            .await?;
        let chat = b.find(Locator::Css("#chat")).await?.text().await?;
        assert!(chat.contains("BPJS Ketenagakerjaan"), "{chat}");
        assert!(
            chat.contains(" WIB") || chat.contains(" WITA") || chat.contains(" WIT"),
            "times carry the employer's zone: {chat}"
        );
        shot("simulator-reminder.png", b.screenshot().await?);
        // The latest message's "Janji bayar".
        let taps = b
            .find_all(Locator::Css("button.quick[data-payload^=PROMISE]"))
            .await?;
        taps.last()
            .expect("a Janji bayar button")
            .clone()
            .click()
            .await?;
        let chat = poll_text(&b, "#chat", |t| {
            t.contains("mohon informasikan tanggal rencana pembayaran")
        })
        .await;
        assert!(
            chat.contains("mohon informasikan tanggal rencana pembayaran"),
            "the bot asks for the date: {chat}"
        );
        b.find(Locator::Css("#reply-text"))
            .await?
            .send_keys("lusa kami transfer")
            .await?;
        b.find(Locator::Css("form.composer button"))
            .await?
            .click()
            .await?;
        let chat = poll_text(&b, "#chat", |t| {
            t.contains("Kami telah mencatat rencana pembayaran")
        })
        .await;
        assert!(
            chat.contains("Kami telah mencatat rencana pembayaran"),
            "the bot confirms the promise: {chat}"
        );
        shot("simulator-promise.png", b.screenshot().await?);
        let case_href = b
            .find(Locator::Css("a.primary[href^='/cases/']"))
            .await?
            .attr("href")
            .await?
            .expect("the phone page links the officer's case");

        // The officer's side.
        b.goto(&format!("{base}{case_href}")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("input[name=username]"))
            .await?;
        b.find(Locator::Css("input[name=username]"))
            .await?
            .send_keys("admin")
            .await?;
        b.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(&demo.password)
            .await?;
        b.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("table.list"))
            .await?;
        shot("admin-cases.png", b.screenshot().await?);
        b.goto(&format!("{base}{case_href}")).await?;
        let page = poll_text(&b, "body", |t| t.contains("lusa kami transfer")).await;
        assert!(
            page.contains("lusa kami transfer"),
            "the reply is on the case: {page}"
        );
        assert!(
            page.contains("Janji bayar") || page.contains("janji bayar"),
            "the promise is on the case: {page}"
        );
        shot("admin-case-promise.png", b.screenshot().await?);
        b.goto(&format!("{base}/dashboard")).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        shot("admin-dashboard.png", b.screenshot().await?);
        Ok(())
    }
    .await;
    let _ = b.close().await;
    result.unwrap();
}

async fn log_in(
    b: &fantoccini::Client,
    base: &str,
    username: &str,
) -> Result<(), fantoccini::error::CmdError> {
    b.delete_all_cookies().await?;
    b.goto(&format!("{base}/login")).await?;
    b.find(Locator::Css("input[name=username]"))
        .await?
        .send_keys(username)
        .await?;
    b.find(Locator::Css("input[name=password]"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    b.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("table.list"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_supervisor_exports_xlsx_and_an_admin_disables_a_user() {
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!("notice: {CHROMEDRIVER} is missing; skipping the browser test");
        return;
    }
    let t = wa_smile::testing::sqlite().await.unwrap();
    let s = seed(&t.db).await;
    seed_more(&t.db, 40).await;
    // An exception of each kind, so the queue has something to show.
    let at = wa_smile::time::now();
    t.db.query(
        "INSERT INTO inbound_messages (wamid, wa_id, kind, body, received_at, created_at) \
         VALUES ('wamid.b1', '6289999000111', 'text', 'Selamat siang, ini dari CV Sinar Maju, iuran sudah kami transfer', $1, $1)",
    )
    .bind(at)
    .execute(&t.db)
    .await
    .unwrap();
    let mut tx = t.db.begin().await.unwrap();
    wa_smile::ledger::raise_exception(
        &mut tx,
        &wa_smile::ledger::PaymentException {
            reference: "INV-2026-000981",
            reason: "overpaid",
            case_id: Some(s.case_a2),
            employer_id: None,
            expected_minor: Some(50_000_000),
            paid_minor: Some(55_000_000),
            payload: &serde_json::json!({}),
        },
        "system",
        at,
        false,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.exports.dir = dir.path().to_path_buf();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = wa_smile::http::router(wa_smile::http::AppState {
        db: t.db.clone(),
        config: std::sync::Arc::new(config),
        workers: Default::default(),
    });
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let wait = Duration::from_secs(20);
    let (_driver, b, _profile) = browser().await;

    let result: Result<(), fantoccini::error::CmdError> = async {
        log_in(&b, &base, "super_a").await?;
        b.goto(&format!("{base}/exports")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("#export-form"))
            .await?;
        b.find(Locator::Css("#kind option[value=summary]"))
            .await?
            .click()
            .await?;
        b.find(Locator::Css("#format option[value=xlsx]"))
            .await?
            .click()
            .await?;
        b.find(Locator::Css("#start-export")).await?.click().await?;
        // The row polls itself until the job is finished.
        let state = poll_text(&b, "#jobs tbody tr:first-child .state", |t| {
            t.contains("Selesai")
        })
        .await;
        assert!(state.contains("Selesai"), "the export finishes: {state}");
        let row = b
            .find(Locator::Css("#jobs tbody tr:first-child"))
            .await?
            .text()
            .await?;
        assert!(
            row.contains("officer:super_a") && row.contains("WIB") && row.contains(BRANCH_A),
            "{row}"
        );
        std::fs::write(artifacts().join("exports.png"), b.screenshot().await?).unwrap();
        // Download it with the browser's session.
        let href = b
            .find(Locator::Css("#jobs tbody tr:first-child a.download"))
            .await?
            .attr("href")
            .await?
            .expect("a download link");
        let cookies = b.get_all_cookies().await?;
        let cookie = cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ");
        let file = reqwest::Client::new()
            .get(format!("{base}{href}"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(file.status().as_u16(), 200);
        let bytes = file.bytes().await.unwrap();
        assert!(bytes.starts_with(b"PK\x03\x04"), "an XLSX file");
        let out = dir.path().join("downloaded.xlsx");
        std::fs::write(&out, &bytes).unwrap();
        let policy = support::config().policy();
        let v = wa_smile::export::verify_export(&t.db, &out, None, &policy)
            .await
            .unwrap();
        assert!(v.ok(), "{:?}", v.problems);

        b.goto(&format!("{base}/exceptions")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("#payment-exceptions"))
            .await?;
        let count = poll_text(&b, "#exceptions-count", |t| !t.is_empty()).await;
        assert_eq!(count, "2");
        std::fs::write(artifacts().join("exceptions.png"), b.screenshot().await?).unwrap();

        log_in(&b, &base, "admin").await?;
        b.goto(&format!("{base}/admin/users")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("#users"))
            .await?;
        b.find(Locator::Css("#user-officer_b button.disable"))
            .await?
            .click()
            .await?;
        let st = poll_text(&b, "#user-officer_b", |t| t.contains("Nonaktif")).await;
        assert!(st.contains("Nonaktif"), "{st}");
        std::fs::write(artifacts().join("admin-users.png"), b.screenshot().await?).unwrap();
        Ok(())
    }
    .await;
    let _ = b.close().await;
    result.unwrap();
}

/// Issue 12: an officer has a case open; the employer answers on WhatsApp
/// (a text, then a photo of the transfer) and both appear on the open page
/// without a reload — the image fetched from the mock Cloud API.
#[tokio::test(flavor = "multi_thread")]
async fn a_reply_appears_on_the_open_case_page_without_a_reload() {
    use crate::conversation::{at, deliverer, overdue_case, Accept, PHONE};
    use chrono::Duration as Span;
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!("notice: {CHROMEDRIVER} is missing; skipping the browser test");
        return;
    }
    let app = TestApp::builder()
        .cloud_api()
        .clock_at(at())
        .on(wa_smile::testing::sqlite().await.unwrap())
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(Accept(AtomicUsize::new(0)))
        .mount(app.cloud())
        .await;
    let receipt = png_receipt();
    Mock::given(method("GET"))
        .and(path("/v25.0/5550001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/download/5550001", app.cloud().uri()),
            "mime_type": "image/png", "file_size": receipt.len(),
        })))
        .mount(app.cloud())
        .await;
    Mock::given(method("GET"))
        .and(path("/download/5550001"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(receipt, "image/png"))
        .mount(app.cloud())
        .await;
    let case_id = overdue_case(&app).await;
    wa_smile::delivery::deliver_due(app.db(), &deliverer(&app.config), at())
        .await
        .unwrap();
    let read = envelope(json!({
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "PNID"},
        "statuses": [{"id": "wamid.OUT1", "status": "read", "recipient_id": PHONE,
                      "timestamp": (at() + Span::minutes(3)).timestamp().to_string()}],
    }));
    assert_eq!(app.post_signed_http(&read.to_string()).await, 200);
    let base = app.url.clone();
    let (_driver, b, _profile) = browser().await;
    let wait = Duration::from_secs(10);
    let result: Result<(), fantoccini::error::CmdError> = async {
        b.goto(&format!("{base}/cases/{case_id}")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("input[name=username]"))
            .await?;
        b.find(Locator::Css("input[name=username]"))
            .await?
            .send_keys("petugas")
            .await?;
        b.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        b.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("table.list"))
            .await?;
        b.goto(&format!("{base}/cases/{case_id}")).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("#conversation"))
            .await?;
        // A marker a reload would wipe.
        b.execute("window.__stillOpen = 'ya'; return true;", vec![])
            .await?;

        app.clock.set(at() + Span::minutes(10));
        let reply = message(
            "wamid.BROWSER1",
            PHONE,
            at() + Span::minutes(10),
            json!({"type": "text", "text": {"body": "besok kami bayar, Pak"}}),
        );
        assert_eq!(app.post_signed_http(&reply.to_string()).await, 200);
        app.clock.set(at() + Span::minutes(12));
        let photo = message(
            "wamid.BROWSER2",
            PHONE,
            at() + Span::minutes(12),
            json!({"type": "image", "image": {"id": "5550001", "mime_type": "image/png",
                   "caption": "bukti transfer"}}),
        );
        assert_eq!(app.post_signed_http(&photo.to_string()).await, 200);
        let text = poll_text(&b, "#conversation", |t| {
            t.contains("besok kami bayar, Pak") && t.contains("bukti transfer")
        })
        .await;
        assert!(
            text.contains("besok kami bayar, Pak") && text.contains("bukti transfer"),
            "the replies appear on the open page: {text}"
        );
        let marker = b
            .execute("return window.__stillOpen || 'reloaded';", vec![])
            .await?;
        assert_eq!(marker, serde_json::json!("ya"), "the page was not reloaded");
        // The thumbnail loads (fetched from the mock Cloud API on first view).
        let mut loaded = serde_json::Value::Null;
        for _ in 0..50 {
            loaded = b
                .execute(
                    "const i = document.querySelector('img.thumb'); return i && i.complete && i.naturalWidth;",
                    vec![],
                )
                .await?;
            if loaded.as_u64().unwrap_or(0) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(loaded.as_u64().unwrap_or(0) > 0, "the thumbnail shows: {loaded}");
        b.execute(
            "document.getElementById('timeline').scrollIntoView(); return true;",
            vec![],
        )
        .await?;
        std::fs::write(
            artifacts().join("case-conversation.png"),
            b.screenshot().await?,
        )
        .unwrap();
        b.execute(
            "document.querySelector('img.thumb').scrollIntoView({block: 'center'}); return true;",
            vec![],
        )
        .await?;
        std::fs::write(
            artifacts().join("case-conversation-latest.png"),
            b.screenshot().await?,
        )
        .unwrap();
        Ok(())
    }
    .await;
    let _ = b.close().await;
    result.unwrap();
}

/// A transfer receipt that looks like one (a real PNG), for the screenshot.
fn png_receipt() -> Vec<u8> {
    wa_smile::simulator::receipt_png()
}
