//! The officer's worklist and safe case actions over HTTP, on both
//! backends: awaiting reply, search by PIC and WhatsApp number, sorting
//! both ways, "my work today", resuming a held case, resolving with
//! arrears, reopening, a double-submitted template, and the thank-you a
//! CSV payment sends.

use crate::support;

use axum::http::StatusCode;
use std::collections::HashMap;
use support::*;

fn kinds_by(events: &[wa_smile::case_log::Event], actor: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.actor == actor)
        .map(|e| e.kind.clone())
        .collect()
}

#[tokio::test]
async fn awaiting_reply_search_and_sorting_both_ways() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        t.db.query("UPDATE employers SET contact_name = 'Ibu Rahmawati' WHERE npp = '10000002'")
            .execute(&t.db)
            .await
            .unwrap();
        let mut c = app.browser();
        c.login_ok("officer_a").await;
        // The seeded employer of case a wrote last; a2's did not write.
        let r = c.get("/cases?awaiting_reply=true").await;
        assert_eq!(r.status, StatusCode::OK, "{}", t.name);
        assert!(r.body.contains("10000001"), "{}", t.name);
        assert!(!r.body.contains("10000002"), "{}", t.name);
        assert!(r.body.contains("menunggu baru saja") || r.body.contains("menunggu 1 menit"));
        // Answering it (an officer's message) ends the wait.
        let r = c.get("/cases?sort=awaiting").await;
        assert!(r.body.contains("10000001") && !r.body.contains("10000002"));
        // Search by PIC name and by WhatsApp number as officers type it.
        let r = c.get("/cases?q=rahma").await;
        assert!(
            r.body.contains("10000002") && !r.body.contains("10000001"),
            "{}",
            t.name
        );
        let r = c.get("/cases?q=0812-3456-7002").await;
        assert!(
            r.body.contains("10000002") && !r.body.contains("10000001"),
            "{}",
            t.name
        );
        let r = c.get("/cases?q=%2B62%20812%203456%207001").await;
        assert!(
            r.body.contains("10000001") && !r.body.contains("10000002"),
            "{}",
            t.name
        );
        // Column headers sort both ways.
        let desc = c.get("/cases?sort=arrears&dir=desc").await.body;
        let asc = c.get("/cases?sort=arrears&dir=asc").await.body;
        let pos = |b: &str, n: &str| b.find(&format!(">{n}</a>")).unwrap();
        assert!(
            pos(&desc, "10000001") < pos(&desc, "10000002"),
            "{}",
            t.name
        );
        assert!(pos(&asc, "10000002") < pos(&asc, "10000001"), "{}", t.name);
        assert!(
            desc.contains("dir=asc"),
            "the active header links the other way"
        );
        let _ = s;
    }
}

#[tokio::test]
async fn my_work_today_lists_what_waits_for_the_officer() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let r = c
            .post_form(
                &format!("/cases/{}/actions/assign", s.case_a),
                &[("csrf", &csrf), ("assignee", "officer_a")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let r = c.get("/my-work").await;
        assert_eq!(r.status, StatusCode::OK, "{}", t.name);
        assert!(r.body.contains("Pekerjaan saya hari ini"));
        assert!(r.body.contains("Menunggu balasan"));
        assert!(
            r.body.contains(&format!("/cases/{}", s.case_a)),
            "{}",
            r.body
        );
        // The navigation counts the officer's waiting cases.
        assert!(r.body.contains(r#"class="badge unread""#), "{}", t.name);
    }
}

#[tokio::test]
async fn a_held_case_is_resumed_from_the_page() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        t.db.query(
            "UPDATE cases SET status = 'needs_officer', quiet_reason = 'awaiting_officer', \
             officer_hold = 'installment_request' WHERE id = $1",
        )
        .bind(s.case_a2)
        .execute(&t.db)
        .await
        .unwrap();
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let page = c.get(&format!("/cases/{}", s.case_a2)).await;
        assert!(page.body.contains("ditahan untuk petugas"), "{}", t.name);
        assert!(
            page.body
                .contains(&format!("/cases/{}/actions/resume", s.case_a2)),
            "{}",
            t.name
        );
        let r = c
            .post_form(
                &format!("/cases/{}/actions/resume", s.case_a2),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let (hold, status): (Option<String>, String) =
            t.db.query("SELECT officer_hold, status FROM cases WHERE id = $1")
                .bind(s.case_a2)
                .fetch_one_as(&t.db)
                .await
                .unwrap();
        assert_eq!((hold, status.as_str()), (None, "open"), "{}", t.name);
        let events = wa_smile::case_log::for_case(&t.db, s.case_a2)
            .await
            .unwrap();
        assert_eq!(kinds_by(&events, "officer:officer_a"), ["resumed"]);
        // Nothing more to resume: refused in Indonesian.
        let r = c
            .post_form(
                &format!("/cases/{}/actions/resume", s.case_a2),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("tidak sedang dijeda"));
    }
}

#[tokio::test]
async fn resolving_with_arrears_needs_confirmation_and_a_listed_reason_and_reopens() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let act = |a: &str| format!("/cases/{}/actions/{a}", s.case_a);
        let page = c.get(&format!("/cases/{}", s.case_a)).await;
        assert!(page.body.contains("masih memiliki tunggakan"), "{}", t.name);
        // No confirmation: refused, whatever the browser did.
        let r = c
            .post_form(
                &act("resolve"),
                &[("csrf", &csrf), ("reason", "paid_outside")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", t.name);
        assert!(r.body.contains("masih memiliki tunggakan Rp"), "{}", r.body);
        // A reason outside the list: refused too.
        let r = c
            .post_form(
                &act("resolve"),
                &[("csrf", &csrf), ("reason", "bosan"), ("confirm", "true")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("Pilih alasan"));
        let resolved: Option<chrono::DateTime<chrono::Utc>> =
            t.db.query("SELECT resolved_at FROM cases WHERE id = $1")
                .bind(s.case_a)
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        assert!(resolved.is_none(), "{}", t.name);
        let r = c
            .post_form(
                &act("resolve"),
                &[
                    ("csrf", &csrf),
                    ("reason", "employer_closed"),
                    ("confirm", "true"),
                    ("note", "Pabrik tutup sejak Januari"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = c.get(&format!("/cases/{}", s.case_a)).await;
        assert!(page.body.contains("Perusahaan tutup atau tidak aktif"));
        assert!(page.body.contains("/actions/reopen"));
        // Reopened: open again, with the event and its audit entry.
        let r = c
            .post_form(
                &act("reopen"),
                &[("csrf", &csrf), ("reason", "Ternyata masih beroperasi")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let status: String =
            t.db.query("SELECT status FROM cases WHERE id = $1 AND resolved_at IS NULL")
                .bind(s.case_a)
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        assert_eq!(status, "open");
        let events = wa_smile::case_log::for_case(&t.db, s.case_a).await.unwrap();
        assert_eq!(
            kinds_by(&events, "officer:officer_a"),
            ["case_resolved", "case_reopened"],
            "{}",
            t.name
        );
        let audited: i64 = t
            .db
            .query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'case.case_reopened' AND actor = 'officer:officer_a'")
            .fetch_scalar(&t.db)
            .await
            .unwrap();
        assert_eq!(audited, 1);
    }
}

#[tokio::test]
async fn a_double_submitted_template_is_sent_once_and_only_offered_ones_go() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let page = c.get(&format!("/cases/{}", s.case_a2)).await;
        // The picker shows the exact text before sending, in Indonesian.
        assert!(page.body.contains("Rincian tagihan"), "{}", t.name);
        assert!(
            page.body.contains("Rincian tagihan"),
            "{}: {}",
            t.name,
            &page.body[page.body.find("Kirim template").unwrap_or(0)..]
        );
        assert!(!page.body.contains(">amount_breakdown<"));
        let key = "0123456789abcdef0123456789abcdef";
        let act = format!("/cases/{}/actions/template", s.case_a2);
        for _ in 0..2 {
            let r = c
                .post_form(
                    &act,
                    &[
                        ("csrf", &csrf),
                        ("message", "amount_breakdown"),
                        ("key", key),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", t.name, r.body);
        }
        let n: i64 = t
            .db
            .query("SELECT COUNT(*) AS n FROM outbox WHERE case_id = $1 AND message = 'amount_breakdown'")
            .bind(s.case_a2)
            .fetch_scalar(&t.db)
            .await
            .unwrap();
        assert_eq!(n, 1, "{}", t.name);
        let events = wa_smile::case_log::for_case(&t.db, s.case_a2)
            .await
            .unwrap();
        assert_eq!(kinds_by(&events, "officer:officer_a"), ["message_queued"]);
        // The scan queued today's reminder: a second one is refused.
        let stage: String =
            t.db.query("SELECT stage FROM cases WHERE id = $1")
                .bind(s.case_a2)
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        let r = c
            .post_form(
                &act,
                &[
                    ("csrf", &csrf),
                    ("message", &stage),
                    ("key", &key.replace('0', "1")),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", t.name);
        assert!(
            r.body.contains("sudah menerima pengingat hari ini"),
            "{}",
            r.body
        );
        // A template the case's state does not call for is refused.
        let r = c
            .post_form(
                &act,
                &[
                    ("csrf", &csrf),
                    ("message", "opt_out_confirmed"),
                    ("key", &key.replace('0', "2")),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("tidak tersedia"));
    }
}

#[tokio::test]
async fn a_csv_payment_that_settles_a_case_queues_the_thank_you_once() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let config = std::sync::Arc::new(config());
        let ctx = wa_smile::import::ImportContext {
            calendar: config.calendar(),
            default_tz: chrono_tz::Asia::Jakarta,
            actor: "import:payments.csv".into(),
            thanks: Some(config.clone()),
        };
        let row: HashMap<String, String> = [
            ("npp", "10000002"),
            ("period", "2026-02"),
            ("amount", "500000"),
            ("paid_at", "2026-03-01T10:00:00+07:00"),
            ("reference", "BANK-77"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for _ in 0..2 {
            wa_smile::import::import_rows(
                &t.db,
                &ctx,
                wa_smile::import::Kind::Payments,
                std::slice::from_ref(&row),
                false,
            )
            .await
            .unwrap();
        }
        let resolution: Option<String> =
            t.db.query("SELECT resolution FROM cases WHERE id = $1")
                .bind(s.case_a2)
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        assert_eq!(resolution.as_deref(), Some("paid"), "{}", t.name);
        let thanks: i64 = t
            .db
            .query("SELECT COUNT(*) AS n FROM outbox WHERE case_id = $1 AND message = 'payment_thanks' AND state = 'queued'")
            .bind(s.case_a2)
            .fetch_scalar(&t.db)
            .await
            .unwrap();
        assert_eq!(thanks, 1, "{}", t.name);
    }
}

/// The outbox rows an officer's free text queued on a case: (kind, text).
async fn free_texts(db: &wa_smile::store::Db, case_id: i64) -> Vec<(String, Option<String>)> {
    db.query(
        "SELECT kind, text FROM outbox WHERE case_id = $1 AND message = 'free_text' ORDER BY id",
    )
    .bind(case_id)
    .fetch_all_as(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_officer_writes_a_canned_reply_and_sends_it_only_inside_the_window() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let start = wa_smile::time::now();
        app.clock.set(start);
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        // Created, then edited by the officer; a blank one is refused in
        // Indonesian and nothing is saved.
        let r = c
            .post_form(
                "/canned",
                &[
                    ("csrf", &csrf),
                    ("op", "save"),
                    ("title", "Rincian dikirim"),
                    ("body", "Baik, rinciannya kami kirim hari ini."),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", t.name, r.body);
        let id: i64 =
            t.db.query("SELECT id FROM canned_replies WHERE title = 'Rincian dikirim'")
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        let r = c
            .post_form(
                "/canned",
                &[
                    ("csrf", &csrf),
                    ("op", "save"),
                    ("id", &id.to_string()),
                    ("title", "Rincian dikirim"),
                    ("body", "Baik Bapak/Ibu, rinciannya kami kirim siang ini."),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let r = c
            .post_form(
                "/canned",
                &[
                    ("csrf", &csrf),
                    ("op", "save"),
                    ("title", " "),
                    ("body", "x"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", t.name);
        assert!(r.body.contains("wajib diisi"), "{}", r.body);
        let page = c.get("/canned").await;
        assert!(page.body.contains("rinciannya kami kirim siang ini"));
        assert!(!page.body.contains("rinciannya kami kirim hari ini"));
        assert!(page.body.contains("officer_a"), "who changed it is shown");
        let saved: i64 =
            t.db.query("SELECT COUNT(*) AS n FROM canned_replies")
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        assert_eq!(saved, 1, "{}: an edit is not a new reply", t.name);

        // Case a2's employer wrote two hours ago: the page offers it, and
        // sending queues exactly its words as free text.
        let page = c.get(&format!("/cases/{}", s.case_a2)).await;
        assert!(page.body.contains("Balasan cepat"), "{}", t.name);
        assert!(page.body.contains("rinciannya kami kirim siang ini"));
        let send = format!("/cases/{}/actions/canned", s.case_a2);
        let r = c
            .post_form(&send, &[("csrf", &csrf), ("canned_id", &id.to_string())])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", t.name, r.body);
        assert_eq!(
            free_texts(&t.db, s.case_a2).await,
            [(
                "text".to_owned(),
                Some("Baik Bapak/Ibu, rinciannya kami kirim siang ini.".to_owned())
            )],
            "{}",
            t.name
        );
        let events = wa_smile::case_log::for_case(&t.db, s.case_a2)
            .await
            .unwrap();
        assert_eq!(kinds_by(&events, "officer:officer_a"), ["message_queued"]);

        // A day later the window has closed: no canned replies on the page,
        // and a posted one is refused in Indonesian, nothing queued.
        app.clock.set(start + chrono::Duration::hours(23));
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let page = c.get(&format!("/cases/{}", s.case_a2)).await;
        assert!(!page.body.contains("Balasan cepat (jendela terbuka)"));
        let r = c
            .post_form(&send, &[("csrf", &csrf), ("canned_id", &id.to_string())])
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", t.name);
        assert!(
            r.body.contains("Jendela 24 jam sudah tertutup"),
            "{}",
            r.body
        );
        assert_eq!(free_texts(&t.db, s.case_a2).await.len(), 1, "{}", t.name);
        // An unknown canned reply says so.
        let r = c
            .post_form(&send, &[("csrf", &csrf), ("canned_id", "999999")])
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("Balasan cepat tidak ditemukan"));
    }
}

#[tokio::test]
async fn labels_are_added_and_removed_and_filter_the_list() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let act = format!("/cases/{}/actions/label", s.case_a);
        // Twice, in another case: one label, one event.
        for label in ["Tunggu Transfer", "tunggu transfer "] {
            let r = c
                .post_form(&act, &[("csrf", &csrf), ("label", label)])
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", t.name, r.body);
        }
        let page = c.get(&format!("/cases/{}", s.case_a)).await;
        assert!(
            page.body.contains(r#"href="/cases?label=tunggu+transfer""#),
            "{}",
            t.name
        );
        // The link as written on the page (query-encoded) filters the list.
        let list = c.get("/cases?label=tunggu+transfer").await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(
            list.body.contains(">10000001</a>") && !list.body.contains(">10000002</a>"),
            "{}",
            t.name
        );
        // The unfiltered list shows the label on the row.
        let all = c.get("/cases").await;
        assert!(all.body.contains(">tunggu transfer</a>"), "{}", t.name);
        // A blank label is refused in Indonesian.
        let r = c.post_form(&act, &[("csrf", &csrf), ("label", "  ")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("Label wajib diisi"), "{}", r.body);
        // Removed: the filter finds nothing any more.
        let r = c
            .post_form(
                &act,
                &[
                    ("csrf", &csrf),
                    ("label", "tunggu transfer"),
                    ("remove", "true"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let list = c.get("/cases?label=tunggu%20transfer").await;
        assert!(!list.body.contains(">10000001</a>"), "{}", t.name);
        assert!(list.body.contains("Tidak ada kasus yang cocok"));
        let events = wa_smile::case_log::for_case(&t.db, s.case_a).await.unwrap();
        assert_eq!(
            kinds_by(&events, "officer:officer_a"),
            ["label_added", "label_removed"],
            "{}",
            t.name
        );
        // Another branch's officer cannot label the case (it is not found).
        let mut b = app.browser();
        let csrf_b = b.login_ok("officer_b").await;
        let r = b
            .post_form(&act, &[("csrf", &csrf_b), ("label", "iseng")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", t.name);
    }
}

/// The open list's poll address, as the page wrote it (HTML-unescaped).
fn rows_poll(body: &str) -> String {
    let from = body
        .find(r#"hx-get="/cases/rows?"#)
        .unwrap_or_else(|| panic!("no list poll: {body}"))
        + r#"hx-get=""#.len();
    let rest = &body[from..];
    rest[..rest.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
}

#[tokio::test]
async fn the_open_list_refreshes_only_when_something_it_may_show_changed() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        c.login_ok("officer_a").await;
        let page = c
            .get("/cases?awaiting_reply=true&sort=arrears&dir=asc")
            .await;
        assert!(!page.body.contains(">10000002</a>"), "{}", t.name);
        let poll = rows_poll(&page.body);
        assert!(
            poll.contains("awaiting_reply=true") && poll.contains("dir=asc"),
            "the poll keeps the filters and the sort: {poll}"
        );
        assert_eq!(
            c.get(&poll).await.status,
            StatusCode::NO_CONTENT,
            "{}",
            t.name
        );
        // Another branch's reply changes nothing this officer may see.
        let now = wa_smile::time::now();
        let other = message(
            "wamid.LIST-B",
            "6281234567003",
            now,
            serde_json::json!({"type": "text", "text": {"body": "kami cek dulu"}}),
        );
        assert_eq!(app.post_json(&other).await, StatusCode::OK);
        assert_eq!(
            c.get(&poll).await.status,
            StatusCode::NO_CONTENT,
            "{}",
            t.name
        );
        // Case a2's employer writes: the poll answers the fresh table, still
        // filtered and sorted, polling on from the new version.
        let reply = message(
            "wamid.LIST-A2",
            "6281234567002",
            now,
            serde_json::json!({"type": "text", "text": {"body": "ok pak, terima kasih infonya"}}),
        );
        assert_eq!(app.post_json(&reply).await, StatusCode::OK);
        let fresh = c.get(&poll).await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", t.name);
        assert!(fresh.body.contains(">10000002</a>"), "{}", fresh.body);
        assert!(fresh.body.contains("ok pak, terima kasih infonya"));
        assert!(fresh.body.contains(r#"id="case-rows""#));
        assert!(!fresh.body.contains("<html"), "only the table and pager");
        // The status counts come along, out of band, so they agree.
        assert!(
            fresh
                .body
                .contains(r#"id="case-counts" hx-swap-oob="true""#),
            "{}",
            t.name
        );
        assert!(fresh.body.contains("Aktif <b>2</b>"), "{}", fresh.body);
        let next = rows_poll(&fresh.body);
        assert_ne!(next, poll);
        assert!(next.contains("awaiting_reply=true"));
        assert_eq!(c.get(&next).await.status, StatusCode::NO_CONTENT);
        // Another officer's action shows too.
        let mut sup = app.browser();
        let csrf = sup.login_ok("super_a").await;
        let r = sup
            .post_form(
                &format!("/cases/{}/actions/assign", s.case_a2),
                &[("csrf", &csrf), ("assignee", "officer_a")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let fresh = c.get(&next).await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", t.name);
        assert!(fresh.body.contains("<td>officer_a</td>"), "{}", fresh.body);
    }
}

#[tokio::test]
async fn a_pause_reads_as_a_date_in_the_employers_zone() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        t.db.query("UPDATE employers SET timezone = 'Asia/Jayapura' WHERE npp = '10000002'")
            .execute(&t.db)
            .await
            .unwrap();
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let until = (wa_smile::time::now() + chrono::Duration::days(5)).date_naive();
        let r = c
            .post_form(
                &format!("/cases/{}/actions/pause", s.case_a2),
                &[("csrf", &csrf), ("until", &until.to_string())],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", t.name, r.body);
        let page = c.get(&format!("/cases/{}", s.case_a2)).await.body;
        let day = wa_smile::messages::filters::format_tanggal(until);
        // The log line names the day, not `2026-…`; the strip the instant,
        // at the employer's midnight, zone named.
        assert!(page.contains(&format!("Dijeda sampai {day}")), "{page}");
        assert!(!page.contains(&until.to_string()), "no raw date: {page}");
        assert!(
            page.contains(&format!("dijeda sampai {day} 00.00 WIT")),
            "{page}"
        );
        // The list names the employer's zone too.
        let list = c.get("/cases").await.body;
        assert!(list.contains(" WIT</td>"), "{}", t.name);
    }
}
