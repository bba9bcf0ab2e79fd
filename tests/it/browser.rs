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

        // The employer of case a2 writes; the "awaiting reply" filter finds
        // it, with the message's words.
        app.db()
            .query("UPDATE cases SET assignee = 'officer_a' WHERE id IN ($1, $2)")
            .bind(s.case_a)
            .bind(s.case_a2)
            .execute(app.db())
            .await
            .unwrap();
        let reply = message(
            "wamid.BROWSER1",
            "6281234567002",
            wa_smile::time::now(),
            serde_json::json!({"type": "text", "text": {"body": "ok pak, terima kasih infonya"}}),
        );
        assert!(app.post_json(&reply).await.is_success());
        let mut found = String::new();
        for _ in 0..50 {
            b.goto(&format!("{base}/cases?awaiting_reply=true")).await?;
            found = b
                .find(Locator::Css("table.list tbody"))
                .await?
                .text()
                .await?;
            if found.contains("10000002") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(found.contains("10000002"), "{found}");
        assert!(found.contains("terima kasih infonya"), "{found}");
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
