//! The case page as the conversation it was (issue 12): the exact texts
//! in true order with their ticks, inbound media fetched from the Cloud
//! API and kept with its hash, pages of bounded size, and the live poll.

use crate::support::*;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sha2::Digest;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wa_smile::accounts::{self, Role};
use wa_smile::config::Config;
use wa_smile::delivery::{deliver_due, Deliverer};
use wa_smile::messages::Catalog;
use wa_smile::whatsapp::WhatsappClient;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

/// Tuesday 3 March 2026, 10.00 WIB: inside the sending window.
pub const AT: &str = "2026-03-03T03:00:00Z";
const NPP: &str = "30000001";
pub const PHONE: &str = "6281234567800";
const BRANCH: &str = "PEKANBARU";

pub fn at() -> DateTime<Utc> {
    AT.parse().unwrap()
}

/// Answers like Meta, with a fresh wamid per request.
pub struct Accept(pub AtomicUsize);

impl Respond for Accept {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": PHONE}],
            "messages": [{"id": format!("wamid.OUT{n}")}],
        }))
    }
}

pub fn deliverer(config: &Config) -> Deliverer {
    let client = WhatsappClient::new(&config.whatsapp, std::time::Duration::from_secs(5)).unwrap();
    Deliverer::new(config, Arc::new(Catalog::load().unwrap()), client).unwrap()
}

/// An overdue employer of `BRANCH`, scanned at AT (its reminder queued),
/// and an officer of the branch. Returns the case id.
pub async fn overdue_case(app: &TestApp) -> i64 {
    let f = app.fixtures().at(at());
    f.employer(NPP)
        .name("PT Sawit Makmur")
        .branch(BRANCH)
        .wa(PHONE)
        .contact("Bapak Agus")
        .tz("Asia/Jakarta")
        .create()
        .await;
    f.bill(NPP, "2026-01", 123_456_700)
        .due_on("2026-02-16")
        .payment_code("12345678901")
        .create()
        .await;
    f.scan(at()).await;
    accounts::add_user(app.db(), "petugas", PASSWORD, Role::Officer, Some(BRANCH))
        .await
        .unwrap();
    f.case_of(NPP).await
}

fn status(wamid: &str, s: &str, t: DateTime<Utc>) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "PNID"},
        "statuses": [{"id": wamid, "status": s, "timestamp": t.timestamp().to_string(),
                      "recipient_id": PHONE}],
    }))
}

/// The case's messages, in the order they were queued: (name, text).
async fn messages_of(app: &TestApp, case_id: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in wa_smile::case_log::for_case(app.db(), case_id)
        .await
        .unwrap()
    {
        if e.kind != "message_queued" {
            continue;
        }
        let id = e.data["outbox_id"].as_i64().unwrap();
        let m = wa_smile::outbox::get(app.db(), id).await.unwrap().unwrap();
        out.push((m.message, m.text.expect("a sent message keeps its text")));
    }
    out
}

/// Where `needle` is in `page` (after `from`), or a failure naming it.
fn pos(page: &str, needle: &str, from: usize) -> usize {
    from + page[from..]
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not on the page after {from}:\n{page}"))
}

fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

#[tokio::test]
async fn reminder_read_reply_and_confirmation_show_their_texts_in_order_with_ticks() {
    for app in TestApp::builder().cloud_api().clock_at(at()).all().await {
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(Accept(AtomicUsize::new(0)))
            .mount(app.cloud())
            .await;
        let case_id = overdue_case(&app).await;
        let d = deliverer(&app.config);
        assert_eq!(deliver_due(app.db(), &d, at()).await.unwrap().sent, 1);
        // The employer reads the reminder, then answers ten minutes later.
        let read_at = at() + Duration::minutes(5);
        assert_eq!(
            app.post_json(&status("wamid.OUT1", "read", read_at)).await,
            StatusCode::OK
        );
        let reply_at = at() + Duration::minutes(10);
        app.clock.set(reply_at);
        let reply = message(
            "wamid.IN1",
            PHONE,
            reply_at,
            json!({"type": "text", "text": {"body": "besok kami bayar"},
                   "context": {"from": "6281100000000", "id": "wamid.OUT1"}}),
        );
        assert_eq!(app.post_json(&reply).await, StatusCode::OK);
        let sent = deliver_due(app.db(), &d, reply_at).await.unwrap().sent;
        assert_eq!(sent, 1, "{}: the confirmation goes out", app.name());

        let sent = messages_of(&app, case_id).await;
        let names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["reminder_3", "promise_confirmed"], "{}", app.name());
        let (reminder, confirmation) = ([&sent[0].1], [&sent[1].1]);

        let mut c = app.browser();
        c.login_ok("petugas").await;
        let page = c.get(&format!("/cases/{case_id}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", app.name());
        let body = page.body;
        // The four steps in the order they happened, each with its tick.
        let p1 = pos(&body, &escaped(reminder[0]), 0);
        let t1 = pos(&body, "✓✓ dibaca", p1);
        let p2 = pos(&body, "besok kami bayar", t1);
        let p3 = pos(&body, &escaped(confirmation[0]), p2);
        let t3 = pos(&body, "✓ terkirim", p3);
        assert!(p1 < t1 && t1 < p2 && p2 < p3 && p3 < t3);
        // The reminder's buttons, human labels, the day and the zone named.
        for want in [
            "Pengingat 3",
            "Konfirmasi janji bayar",
            "Selasa, 3 Maret 2026",
            "10.00 WIB",
            "10.10 WIB",
            "Sudah bayar",
        ] {
            assert!(body.contains(want), "{}: `{want}` missing", app.name());
        }
        for raw in ["promise_confirmed", "reminder_3", "amount_breakdown"] {
            assert!(
                !body.contains(&format!(">{raw}")) && !body.contains(&format!("{raw}<")),
                "{}: raw key `{raw}` shown",
                app.name()
            );
        }
    }
}

#[tokio::test]
async fn a_failed_message_says_why_in_indonesian() {
    for app in TestApp::builder().cloud_api().clock_at(at()).all().await {
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(Accept(AtomicUsize::new(0)))
            .mount(app.cloud())
            .await;
        let case_id = overdue_case(&app).await;
        deliver_due(app.db(), &deliverer(&app.config), at())
            .await
            .unwrap();
        let failed = envelope(json!({
            "messaging_product": "whatsapp",
            "metadata": {"phone_number_id": "PNID"},
            "statuses": [{"id": "wamid.OUT1", "status": "failed",
                          "timestamp": (at() + Duration::minutes(1)).timestamp().to_string(),
                          "recipient_id": PHONE,
                          "errors": [{"code": 131026, "title": "Message undeliverable"}]}],
        }));
        assert_eq!(app.post_json(&failed).await, StatusCode::OK);
        let mut c = app.browser();
        c.login_ok("petugas").await;
        let body = c.get(&format!("/cases/{case_id}")).await.body;
        assert!(body.contains("✕ gagal"), "{}", app.name());
        assert!(
            body.contains("tidak dapat diterima: nomor tidak terdaftar di WhatsApp"),
            "{}: {body}",
            app.name()
        );
        assert!(body.contains("(kode 131026)"), "{}", app.name());
    }
}

/// A receipt photo: a PNG's signature, then bytes.
pub fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..2000u32).map(|i| (i % 251) as u8));
    b
}

#[tokio::test]
async fn an_inbound_image_is_fetched_from_the_cloud_api_on_first_view_kept_with_its_hash_and_shown()
{
    for app in TestApp::builder().cloud_api().clock_at(at()).all().await {
        let case_id = overdue_case(&app).await;
        let server = app.cloud();
        let bytes = png();
        Mock::given(method("GET"))
            .and(path("/v25.0/4490709327384033"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp",
                "url": format!("{}/download/4490709327384033", server.uri()),
                "mime_type": "image/png",
                "file_size": bytes.len(),
                "id": "4490709327384033",
            })))
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/download/4490709327384033"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_raw(bytes.clone(), "image/png"))
            .expect(1)
            .mount(server)
            .await;
        let photo = message(
            "wamid.IMG1",
            PHONE,
            at(),
            json!({"type": "image", "image": {"id": "4490709327384033", "mime_type": "image/png",
                   "caption": "bukti transfer"}}),
        );
        // The webhook only notes the file: no request to the Cloud API yet.
        assert_eq!(app.post_json(&photo).await, StatusCode::OK);
        assert_eq!(server.received_requests().await.unwrap().len(), 0);

        let mut c = app.browser();
        c.login_ok("petugas").await;
        let body = c.get(&format!("/cases/{case_id}")).await.body;
        let src = format!("/cases/{case_id}/media/");
        let at_src = pos(&body, &format!("<img class=\"thumb\" src=\"{src}"), 0);
        assert!(body.contains("bukti transfer"), "{}", app.name());
        let rest = &body[at_src + "<img class=\"thumb\" src=\"".len()..];
        let url = &rest[..rest.find('"').unwrap()];
        let media_id: i64 = url.rsplit('/').next().unwrap().parse().unwrap();

        for _ in 0..2 {
            let r = c.get(url).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", app.name(), r.body);
            assert_eq!(r.bytes, bytes, "{}", app.name());
            assert_eq!(r.headers["content-type"], "image/png");
            assert_eq!(r.headers["x-content-type-options"], "nosniff");
        }
        let info = wa_smile::media::get(app.db(), media_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.state, wa_smile::media::MediaState::Stored);
        assert_eq!(
            info.sha256.as_deref(),
            Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()),
            "{}",
            app.name()
        );
        assert_eq!(info.size, Some(bytes.len() as i64));

        // Another branch's officer cannot see it (a branch is known once an
        // employer of it is).
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
        other.login_ok("lain").await;
        assert_eq!(other.get(url).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_file_that_is_not_what_it_claims_is_refused_and_other_kinds_say_what_they_were() {
    for app in TestApp::builder().cloud_api().clock_at(at()).all().await {
        let case_id = overdue_case(&app).await;
        let server = app.cloud();
        Mock::given(method("GET"))
            .and(path("/v25.0/777"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "url": format!("{}/download/777", server.uri()), "mime_type": "application/pdf",
            })))
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/download/777"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw("<html><script>x</script>", "text/html"),
            )
            .mount(server)
            .await;
        let doc = message(
            "wamid.DOC1",
            PHONE,
            at(),
            json!({"type": "document", "document": {"id": "777", "mime_type": "application/pdf",
                   "filename": "bukti.pdf"}}),
        );
        assert_eq!(app.post_json(&doc).await, StatusCode::OK);
        app.clock.set(at() + Duration::minutes(1));
        let voice = message(
            "wamid.AUD1",
            PHONE,
            at() + Duration::minutes(1),
            json!({"type": "audio", "audio": {"id": "778", "mime_type": "audio/ogg"}}),
        );
        assert_eq!(app.post_json(&voice).await, StatusCode::OK);

        let mut c = app.browser();
        c.login_ok("petugas").await;
        let body = c.get(&format!("/cases/{case_id}")).await.body;
        assert!(body.contains("bukti.pdf"), "{}: {body}", app.name());
        assert!(body.contains("Pesan suara"), "{}", app.name());
        let href = format!("/cases/{case_id}/media/");
        let start = pos(&body, &format!("href=\"{href}"), 0) + "href=\"".len();
        let url = &body[start..start + body[start..].find('"').unwrap()];
        let r = c.get(url).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", app.name());
        assert!(r.body.contains("jenis berkas tidak diterima"), "{}", r.body);
        let again = c.get(&format!("/cases/{case_id}")).await.body;
        assert!(
            again.contains("Dokumen tidak dapat ditampilkan"),
            "{}",
            app.name()
        );
    }
}

#[tokio::test]
async fn long_conversations_come_a_page_at_a_time_and_the_poll_answers_only_changes() {
    for app in TestApp::builder().clock_at(at()).all().await {
        let case_id = overdue_case(&app).await;
        let mut tx = app.db().begin().await.unwrap();
        let notes: Vec<_> = (0..130)
            .map(|i| {
                wa_smile::case_log::NewEvent::new(
                    case_id,
                    at() + Duration::minutes(i),
                    wa_smile::case_log::EventKind::NoteAdded,
                    wa_smile::case_log::Actor::Officer("petugas".into()),
                    json!({"text": format!("catatan nomor {i:03}")}),
                )
            })
            .collect();
        wa_smile::case_log::record(&mut tx, &notes).await.unwrap();
        tx.commit().await.unwrap();

        let mut c = app.browser();
        c.login_ok("petugas").await;
        let first = c.get(&format!("/cases/{case_id}")).await.body;
        let shown = |b: &str| b.matches("catatan nomor").count();
        assert_eq!(shown(&first), 50, "{}", app.name());
        assert!(first.contains("catatan nomor 129") && !first.contains("catatan nomor 079"));
        assert!(first.contains("Sebelumnya"));
        // Follow "older" twice: every page bounded, none repeated, all seen.
        let mut seen = shown(&first);
        let mut page = first;
        while let Some(i) = page.find("?before=") {
            let rest = &page[i + "?before=".len()..];
            let before = &rest[..rest.find(|ch: char| !ch.is_ascii_digit()).unwrap()];
            page = c
                .get(&format!("/cases/{case_id}?before={before}"))
                .await
                .body;
            assert!(shown(&page) <= 50);
            seen += shown(&page);
        }
        assert_eq!(seen, 130, "{}", app.name());

        // The poll: unchanged → 204; a new event → the fresh timeline.
        let v = wa_smile::case_log::version(app.db(), case_id)
            .await
            .unwrap();
        let poll = format!("/cases/{case_id}/timeline?v={v}");
        assert_eq!(c.get(&poll).await.status, StatusCode::NO_CONTENT);
        let list = c.get(&format!("/cases/version?v={v}")).await;
        assert_eq!(list.status, StatusCode::NO_CONTENT, "{}", app.name());
        // Later than every note: the newest line of the page.
        app.clock.set(at() + Duration::minutes(200));
        let reply = message(
            "wamid.LIVE1",
            PHONE,
            at() + Duration::minutes(200),
            json!({"type": "text", "text": {"body": "kami transfer siang ini"}}),
        );
        assert_eq!(app.post_json(&reply).await, StatusCode::OK);
        let fresh = c.get(&poll).await;
        assert_eq!(fresh.status, StatusCode::OK);
        assert!(fresh.body.contains("kami transfer siang ini"));
        assert!(fresh.body.contains("id=\"conversation\""));
        let list = c.get(&format!("/cases/version?v={v}")).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.json()["version"].as_i64().unwrap() > v);
    }
}
